"""
A request's connection: whether its client is still there, waits that end when it goes, resets.

Latency, ``slow`` faults and long filters look here, so that neither a worker thread nor
``stop()`` waits out work nobody will read; the ``reset`` fault drops the connection from here.
"""

from __future__ import annotations

import _socket
import os
import select
import socket
import struct
import threading
import time
from typing import Any, NoReturn

from partner_center_emulator.faults import Stats

#: How often a waiting or filtering request looks whether its client is still there, seconds.
WATCH_INTERVAL = 0.05


class AbandonedError(Exception):
    """The client went away (or the emulator is stopping): drop the request without an answer."""


def client_gone(environ: dict[str, Any]) -> bool:
    """
    Whether the client of this request has closed its connection.

    While a request is being worked on, a keep-alive client sends nothing (``requests`` does not
    pipeline), so a readable socket means a FIN (or a reset): a peek at the raw TCP bytes,
    beneath TLS, tells which without consuming anything.
    """
    sock = environ.get("emulator.socket")
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        # _socket.socket.recv: the raw TCP stream, not SSLSocket.recv (which refuses flags).
        return _socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def pause(environ: dict[str, Any], seconds: float, stopping: threading.Event, counters: Stats) -> None:
    """
    Wait ``seconds`` (latency, slow faults), but no longer than the client or the server lives.

    A client that gave up, or ``stop()``, ends the wait: the request is abandoned, so neither
    a worker thread nor ``stop()`` waits out a delay nobody will read.

    :param environ: the request's WSGI environ (its socket).
    :param seconds: how long to wait.
    :param stopping: the emulator's stop event.
    :param counters: counts the request as abandoned when its client went away.
    :raises AbandonedError: the client went away, or the emulator is stopping.
    """
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stopping.wait(min(left, WATCH_INTERVAL)):
            raise AbandonedError
        if client_gone(environ):
            counters.abandon()
            raise AbandonedError


def reset_connection(connection: socket.socket | None) -> NoReturn:
    """
    Drop the connection with a TCP RST (the ``reset`` fault), then raise ``ConnectionResetError``.

    SO_LINGER 0 and a real close of the connection: the kernel sends a TCP RST, so the client sees
    "connection reset" (shutdown() would send a clean FIN). The close is a dup2() of an
    unconnected socket over the descriptor: the server still owns a valid descriptor, and its own
    close later fails harmlessly with ENOTCONN instead of EBADF (which would kill the worker thread).
    """
    if connection is not None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with socket.socket(connection.family, socket.SOCK_STREAM) as placeholder:
            os.dup2(placeholder.fileno(), connection.fileno())
    raise ConnectionResetError("injected connection reset")
