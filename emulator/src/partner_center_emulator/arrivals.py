"""Live arrivals: a thread that releases one new incoming referral every 1/rate seconds."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Arrivals:
    """
    The ``arrivals_per_second`` setting's thread, started on the first positive rate.

    :param release: releases one referral (``store.release_incoming(1)``).
    :param stopping: set when the emulator stops; the thread then ends.
    """

    def __init__(self, release: Callable[[], object], stopping: threading.Event) -> None:
        self._release = release
        self._stopping = stopping
        self._rate = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def set_rate(self, rate: float) -> None:
        """One referral every 1/``rate`` seconds from now on (0 pauses the arrivals)."""
        if rate < 0:
            raise ValueError("arrivals_per_second must be >= 0")
        self._rate = rate
        self._wake.set()
        if rate > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._arrive, name="partner-emulator-arrivals", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Wake the thread (the caller has set ``stopping``) and join it."""
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _arrive(self) -> None:
        # A rate change or stop() wakes the loop at once.
        while not self._stopping.is_set():
            rate = self._rate
            self._wake.clear()
            if rate <= 0:
                self._wake.wait()
                continue
            if not self._wake.wait(1.0 / rate):
                self._release()
