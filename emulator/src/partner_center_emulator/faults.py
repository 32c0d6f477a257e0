"""Fault injection (seeded random rate and a scripted queue) and the thread-safe statistics."""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

FAULT_KINDS = ("429", "500", "503", "reset", "slow", "truncated", "malformed", "html", "token_expired")


class Faults:
    """
    Decides which API request fails, and how.

    Scripted faults come first, one per API request, in order; then, if ``rate`` > 0, each
    request fails with that probability, with a kind drawn from ``kinds`` (both seeded).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ("429", "500", "503", "reset")
        self._rng = random.Random(0)

    def configure(
        self, rate: float | None = None, kinds: Iterable[str] | None = None, seed: int | None = None
    ) -> None:
        """Set the random fault rate, the kinds it draws from, and its seed."""
        with self._lock:
            if rate is not None:
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"fault_rate must be between 0 and 1, got {rate}")
                self.rate = float(rate)
            if kinds is not None:
                self.kinds = tuple(validate_kinds(kinds))
            if seed is not None:
                self._rng = random.Random(seed)

    def script(self, kinds: Iterable[str]) -> None:
        """Queue faults for the next API requests, in order."""
        checked = validate_kinds(kinds)
        with self._lock:
            self._queue.extend(checked)

    def pending(self) -> list[str]:
        """The scripted faults not served yet."""
        with self._lock:
            return list(self._queue)

    def next(self) -> str | None:
        """The fault for this request, or ``None``."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.rate and self.kinds and self._rng.random() < self.rate:
                return self._rng.choice(self.kinds)
            return None


def validate_kinds(kinds: Iterable[str]) -> list[str]:
    """Check fault kind names; ``ValueError`` names the bad ones and the valid ones."""
    if isinstance(kinds, str):
        raise ValueError("fault kinds must be a list of names, not one string")
    checked = [str(k) for k in kinds]
    unknown = [k for k in checked if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; valid: {', '.join(FAULT_KINDS)}")
    return checked


class Stats:
    """Thread-safe counters of what the emulator served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._grants: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._auth_headers: Counter[str] = Counter()
            self._pages = 0
            self._handshakes = 0
            self._abandoned = 0

    def request(self, endpoint: str) -> None:
        """Count one request to ``endpoint``."""
        with self._lock:
            self._requests[endpoint] += 1

    def grant(self, grant: str) -> None:
        """Count one token issued by ``grant``."""
        with self._lock:
            self._grants[grant] += 1

    def fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self._faults[kind] += 1

    def auth_header(self, host: str) -> None:
        """Count one ``Authorization`` header received with Host ``host``."""
        with self._lock:
            self._auth_headers[host] += 1

    def connection(self) -> None:
        """Count one TLS handshake: one new client connection (admin ones included)."""
        with self._lock:
            self._handshakes += 1

    def handshakes(self) -> int:
        """
        TLS handshakes since the last reset.

        Kept out of :meth:`snapshot`: a connection is counted before its first request says
        whether it is an admin request, and admin requests never move the snapshot's counters.
        """
        with self._lock:
            return self._handshakes

    def abandon(self) -> None:
        """Count one request whose work stopped because its client had disconnected."""
        with self._lock:
            self._abandoned += 1
            self._changed.notify_all()

    def abandoned(self) -> int:
        """Requests abandoned because their client disconnected (kept out of :meth:`snapshot` too)."""
        with self._lock:
            return self._abandoned

    def wait_for_abandoned(self, count: int, timeout: float) -> bool:
        """Block until ``count`` requests were abandoned; ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._abandoned >= count, timeout)

    def page(self) -> None:
        """Count one list page served in full."""
        with self._lock:
            self._pages += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain dicts (zero grants listed, so tests can index them)."""
        with self._lock:
            grants = {"refresh_token": 0, "password": 0, "device_code": 0}
            grants.update(self._grants)
            return {
                "requests": dict(self._requests),
                "token_grants": grants,
                "faults": dict(self._faults),
                "pages_served": self._pages,
                "auth_headers": dict(self._auth_headers),
            }
