"""
Closing a resource from ``on_kill`` without pulling it from under the step that uses it.

Airflow calls ``on_kill`` from the SIGTERM handler, which runs in the task's main thread between
two bytecodes of whatever that thread is doing, possibly in the middle of writing to the very
file ``on_kill`` wants to close. A :class:`CloseGuard` closes at once when nothing is in use, and
otherwise leaves the closing to the interrupted step, which does it as soon as it ends; every
step started afterwards raises instead of touching a closed file.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["CloseGuard"]


class CloseGuard:
    """
    Run ``release`` once: at :meth:`close`, or when the last :meth:`step` in progress ends.

    :param release: closes the resource (called at most once).
    :param error: raised by a :meth:`step` started after :meth:`close`.
    """

    def __init__(self, release: Callable[[], None], error: Callable[[], Exception]) -> None:
        self._release = release
        self._error = error
        self._users = 0
        self._closing = False
        self._released = threading.Lock()

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Use the resource; a :meth:`close` meanwhile waits for the end of the block."""
        # Counted before the flag is read, so a close() interrupting this step sees the user.
        self._users += 1
        try:
            if self._closing:
                raise self._error()
            yield
        finally:
            self._users -= 1
            if self._closing and not self._users:
                self._release_once()

    def close(self) -> None:
        """Release now if no step is in progress, else when the last one ends (safe to call twice)."""
        self._closing = True
        if not self._users:
            self._release_once()

    def _release_once(self) -> None:
        # Never released back: later calls are no-ops. Non-blocking, because a signal handler
        # must never wait for the thread it interrupted.
        if self._released.acquire(blocking=False):
            self._release()
