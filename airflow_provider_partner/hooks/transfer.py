"""
Bounded transfers: no response is read past a size cap, and no attempt outlives its deadline.

``requests`` reads a whole body into memory (inflating gzip as it goes) and its ``timeout`` is
per socket operation, so a page of 100 MB, a 0.3 MB gzip body that inflates to 300 MB, or a
server that trickles one byte a second could each take a worker down or hold it for ever. Here:

- the body is streamed in 64 KiB reads, counting the bytes received and the bytes after
  decompression (urllib3 inflates at most what is asked for per read); past the cap the
  connection is dropped and :class:`~.errors.PartnerCenterResponseError` says so;
- every attempt has a wall-clock deadline; when it passes, a watchdog shuts the attempt's socket
  down, which ends whatever read or handshake is blocked on it, and the attempt fails with
  :class:`AttemptTimedOut` (a ``requests.Timeout``: retried like any timeout). The socket is the
  connection's, or the response's once ``http.client`` has handed it over (``Connection: close``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_partner.errors import PartnerCenterResponseError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AttemptDeadline", "AttemptTimedOut", "TrackingAdapter", "read_capped"]

_READ_SIZE = 1 << 16
_MB = 1_000_000
#: Armed deadlines held before the finished ones are dropped.
_PRUNE_AT = 256


class AttemptTimedOut(requests.Timeout):
    """One attempt passed its wall-clock deadline (``attempt_timeout`` or ``max_retry_time``)."""


class TrackingAdapter(HTTPAdapter):
    """
    An adapter that knows which connection and response its current request uses, so a watchdog
    can end it.

    One request at a time per adapter: the hook's HTTP client is used by one thread at a time.
    """

    def __init__(self, **kwargs: Any) -> None:
        #: The connection of the current request, from the pool.
        self.current: Any = None
        #: Its urllib3 response once the headers are in: it owns the socket of a response that
        #: ends the connection (``http.client`` then sets the connection's ``sock`` to ``None``).
        self.response: Any = None
        #: Set by :meth:`abort_current`: a response that arrives after it is shut down at once.
        self.aborted = False
        super().__init__(**kwargs)

    def _pool_classes(self) -> dict[str, type]:
        adapter = self

        def tracked(pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
            class Tracked(pool):  # type: ignore[valid-type,misc]  # a base chosen at run time
                def _get_conn(self, timeout: float | None = None) -> Any:
                    connection = super()._get_conn(timeout)
                    adapter.current = connection
                    return connection

            return Tracked

        return {"https": tracked(HTTPSConnectionPool), "http": tracked(HTTPConnectionPool)}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pool_classes()
        return manager

    def start(self) -> None:
        """Forget the previous request: a new attempt begins."""
        self.response = None
        self.aborted = False

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        """Keep the urllib3 response (see :attr:`response`); shut it if the deadline has passed."""
        self.response = resp
        if self.aborted:
            # The watchdog fired while the headers came in, with no socket left to shut.
            _shut_response(resp)
        return super().build_response(req, resp)

    def abort_current(self) -> None:
        """Shut the current request's socket down (from another thread): its blocked call ends."""
        self.aborted = True
        sock = getattr(self.current, "sock", None)
        if sock is not None:
            # Already closed: the attempt is over anyway.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        elif self.response is not None:
            _shut_response(self.response)


def _shut_response(response: Any) -> None:
    # urllib3's own way to end a read blocked in another thread, on the socket it kept when
    # http.client handed it to the response. It refuses (ValueError, RuntimeError) a response
    # without a socket or one whose connection went back to the pool: nothing to end then.
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        response.shutdown()


class _Watchdog:
    """
    The process's one watchdog thread: it calls each armed callback once its deadline passes.

    One thread for every attempt of every hook (a ``threading.Timer`` per attempt costs a thread
    start per page). Started on first use; it sleeps while nothing is armed.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed: list[tuple[float, int, AttemptDeadline]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: AttemptDeadline) -> None:
        with self._changed:
            if len(self._armed) > _PRUNE_AT:
                # Finished attempts wait in the heap until their deadline: drop them now and then.
                self._armed = [entry for entry in self._armed if not entry[2].over]
                heapq.heapify(self._armed)
            heapq.heappush(self._armed, (time.monotonic() + deadline.seconds, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="partner-center-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _due(self) -> list[AttemptDeadline]:
        """Wait until an armed deadline passes; return those that did (disarmed ones dropped)."""
        with self._changed:
            while True:
                while self._armed and self._armed[0][2].over:
                    heapq.heappop(self._armed)
                if not self._armed:
                    self._changed.wait()
                    continue
                left = self._armed[0][0] - time.monotonic()
                if left <= 0:
                    return [heapq.heappop(self._armed)[2]]
                self._changed.wait(left)

    def _run(self) -> None:
        while True:
            for deadline in self._due():
                deadline.expire()


_WATCHDOG = _Watchdog()


class AttemptDeadline:
    """
    Arms a watchdog for one attempt: past ``seconds``, the adapter's current socket is shut down.

    Use as a context manager around the whole attempt (send, headers, body).

    :param adapter: the adapter the attempt goes through.
    :param seconds: wall-clock time the attempt may take.
    """

    def __init__(self, adapter: TrackingAdapter, seconds: float) -> None:
        self.adapter = adapter
        self.seconds = max(0.0, seconds)
        self.expired = False
        #: Set when the attempt ended: the watchdog then drops it.
        self.over = False
        self._lock = threading.Lock()

    def expire(self) -> None:
        """Called by the watchdog past the deadline: end the attempt's socket, unless it is over."""
        with self._lock:
            if self.over:
                return
            self.expired = True
            self.adapter.abort_current()

    def __enter__(self) -> AttemptDeadline:
        self.adapter.start()
        _WATCHDOG.arm(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        with self._lock:
            # From here on the watchdog can no longer touch a connection that goes back to the pool.
            self.over = True


def read_capped(response: requests.Response, limit_mb: float, where: str) -> bytes:
    """
    Read a streamed response's body, at most ``limit_mb`` MB received and after decompression.

    On success the connection goes back to the pool (keep-alive); past the cap it is dropped.

    :param response: a response requested with ``stream=True``.
    :param limit_mb: the cap, in MB (10^6 bytes), applied to both counts.
    :param where: what was requested, for the message (a redacted URL with its request id).
    :raises PartnerCenterResponseError: the body is larger than the cap.
    """
    limit = int(limit_mb * _MB)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise _too_large(where, limit_mb, f"it declares Content-Length {int(declared):,}")
    raw = response.raw
    body = bytearray()
    # iter_content maps urllib3's errors (cut off, bad gzip) to requests' and inflates per read.
    for chunk in response.iter_content(_READ_SIZE):
        body += chunk
        if len(body) > limit or raw.tell() > limit:
            # tell() counts the compressed bytes of a sized body (0 when chunked).
            wire = raw.tell()
            raw.close()  # never reused: the rest of the body is still on the wire
            read = f"{len(body):,} bytes read"
            raise _too_large(
                where, limit_mb, f"{read} from {wire:,} compressed" if 0 < wire < len(body) else read
            )
    content = bytes(body)
    response._content = content
    response.close()  # only releases the connection to the pool: the body was read to its end
    return content


def _too_large(where: str, limit_mb: float, what: str) -> PartnerCenterResponseError:
    return PartnerCenterResponseError(
        f"The response to {where} is larger than max_response_mb={limit_mb:g} ({what}); stopped reading "
        "it. A page of 100 referrals is well under 1 MB: a proxy or server is misbehaving. If your "
        "referrals really are that large, raise the connection extra max_response_mb."
    )
