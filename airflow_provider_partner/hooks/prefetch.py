"""
The next page's request sent ahead: one daemon thread per paging iteration.

Imports nothing heavy: :mod:`.paging` uses it, and DAG files import paging at parse time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Prefetcher"]

_Response = TypeVar("_Response")


class Prefetcher(Generic[_Response]):
    """
    One daemon thread per iteration that sends the next page's request while the caller parses.

    One thread for the whole iteration, not one per page: starting a thread costs about as much
    as parsing a tenth of a page. :meth:`close` lets it end after the request it is sending (a
    caller that stops early never waits for it).

    :param fetch: ``fetch(url, params)`` sends one request and returns its response.
    """

    def __init__(self, fetch: Callable[[str, Mapping[str, str] | None], _Response]) -> None:
        self._fetch = fetch
        self._inbox: queue.SimpleQueue[tuple[str, Mapping[str, str] | None] | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._taken = threading.Semaphore(0)

    def send(self, url: str, params: Mapping[str, str] | None) -> None:
        """Start the request for ``url`` (one at a time: :meth:`result` before the next send)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="partner-center-next-page", daemon=True)
            self._thread.start()
        self._inbox.put((url, params))
        # Back once the request is on its way, as a thread started for it would be.
        self._taken.acquire()

    def _run(self) -> None:
        while (request := self._inbox.get()) is not None:
            self._taken.release()
            self._outbox.put(self._send_one(*request))

    def _send_one(self, url: str, params: Mapping[str, str] | None) -> tuple[Any, BaseException | None]:
        try:
            return self._fetch(url, params), None
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            return None, err

    def result(self) -> _Response:
        """Wait for the response; raise what the request raised."""
        result, error = self._outbox.get()
        if error is not None:
            raise error
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        """Let the thread end once its current request (if any) is done."""
        if self._thread is not None:
            self._inbox.put(None)
