"""Helpers of the sensor and trigger tests (a uniquely named module: every test folder has a conftest)."""

from __future__ import annotations

import threading
from typing import Any


def list_requests(emulator: Any) -> int:
    """List requests the emulator has answered so far (each sensor poke is one)."""
    return int(emulator.stats()["requests"].get("list", 0))


class ArrivalsAfterPokes:
    """
    Release referrals once the client has made some list requests (the wait has begun).

    A background thread watches the emulator's request counter (a readiness condition, not a
    sleep): when ``after_requests`` more list requests have been answered, it releases ``n``
    incoming referrals. ``released`` holds them; ``done`` is set afterwards.
    """

    def __init__(self, emulator: Any, n: int, after_requests: int = 1, **overrides: Any) -> None:
        self.emulator = emulator
        self.n = n
        self.target = list_requests(emulator) + after_requests
        self.overrides = overrides
        self.released: list[dict[str, Any]] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="release-arrivals", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if list_requests(self.emulator) >= self.target:
                self.released = self.emulator.release_incoming(self.n, **self.overrides)
                self.done.set()
                return
            self._stop.wait(0.01)

    def __enter__(self) -> ArrivalsAfterPokes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def ids(self) -> list[str]:
        return [referral["id"] for referral in self.released]
