"""
The https server under the emulator: cheroot on an in-memory TLS context, and its throwaway CA.

The server is cheroot (CherryPy's WSGI server), not werkzeug's development server: werkzeug
answers ``Connection: close`` to every request, so each request paid a TLS handshake, while the
real service (and cheroot) keep HTTP/1.1 connections alive. Werkzeug is still the WSGI toolkit
(requests, responses, routing) of the application.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme
from cheroot import wsgi
from cheroot.ssl import Adapter
from cheroot.ssl.builtin import BuiltinSSLAdapter

#: Worker threads per emulator. cheroot's pool does not grow on demand; idle keep-alive
#: connections wait in its selector, not in a worker, so this bounds concurrent requests only.
WORKER_THREADS = 16
#: The serving loop's select() timeout: how long stop() may wait for the loop to notice.
_LOOP_INTERVAL = 0.02
#: Seconds an idle keep-alive connection is kept before the server closes it.
IDLE_TIMEOUT = 10


class _TLSAdapter(BuiltinSSLAdapter):
    """
    cheroot's TLS adapter on an ``ssl.SSLContext`` made in memory, counting handshakes.

    cheroot's own constructor wants certificate files; the emulator's CA lives in memory.

    :param context: the server context (certificate loaded).
    :param on_handshake: called once per TLS handshake (one per client connection).
    """

    def __init__(self, context: ssl.SSLContext, on_handshake: Any) -> None:
        Adapter.__init__(self, "", "")
        self.context = context
        self._server_env: dict[str, str] = {}
        self._on_handshake = on_handshake

    def wrap(self, sock: socket.socket) -> Any:
        self._on_handshake()
        return super().wrap(sock)  # type: ignore[no-untyped-call]


class _Gateway(wsgi.Gateway_10):
    """The WSGI gateway, plus the connection's socket (the ``reset`` fault and disconnect checks)."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        environ["emulator.socket"] = self.req.conn.socket
        return environ

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # cheroot only copies a ``Connection: close`` the application answers; the connection is
        # closed after the response only if the request itself is marked so.
        if any(name.lower() == "connection" and value.lower() == "close" for name, value in headers):
            self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


def is_loopback(address: str) -> bool:
    """True for a loopback IP address (``127.0.0.0/8``, ``::1``); False for any other or a name."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def https_server(
    host: str, port: int, app: Callable[..., Any], ca: trustme.CA, on_handshake: Callable[[], None]
) -> wsgi.Server:
    """
    A cheroot server for ``app`` over https with a certificate of ``ca``, bound and listening.

    ``prepare()`` binds and listens (port 0 is resolved here) and starts the worker threads; the
    caller runs ``serve()`` in a thread of its own, and ``stop()`` when done.

    :param host: the address to bind.
    :param port: the port (0: any free port).
    :param app: the WSGI application.
    :param ca: the CA that signs the server certificate (``127.0.0.1``, ``localhost``, ``::1``).
    :param on_handshake: called once per TLS handshake.
    """
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = wsgi.Server(
        (host, port),
        app,
        numthreads=WORKER_THREADS,
        timeout=IDLE_TIMEOUT,
        shutdown_timeout=1,
    )
    server.gateway = _Gateway
    server.expiration_interval = _LOOP_INTERVAL
    server.ssl_adapter = _TLSAdapter(context, on_handshake)
    server.prepare()
    return server


def write_temporary_ca(ca: trustme.CA) -> Path:
    """Write the CA certificate to a new temporary file (the caller removes it); return its path."""
    handle, name = tempfile.mkstemp(prefix="partner-emulator-ca-", suffix=".pem")
    os.close(handle)
    ca.cert_pem.write_to_path(name)
    return Path(name)
