"""
Time for the emulator: 100 ns ticks and the API's 7-digit ISO-8601 UTC text.

Every date-time the emulator stores is text in one fixed format
(``2026-11-01T12:00:00.1234567Z``), so comparing two of them as strings compares them as
instants: ``$filter`` comparisons and ``$orderby`` sorts need no parsing per record.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from datetime import datetime, timezone

TICKS_PER_SECOND = 10_000_000
DAY_TICKS = 86_400 * TICKS_PER_SECOND

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?$"
)


_DAY_PREFIXES: dict[int, str] = {}
_TIMES_OF_DAY: list[str] = []


def format_ticks(ticks: int) -> str:
    """Format 100 ns ticks since the Unix epoch as ``YYYY-MM-DDTHH:MM:SS.fffffffZ``."""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    day, second = divmod(seconds, 86_400)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        # Formatting the date is the slow part: do it once per day (generation makes 200k stamps).
        prefix = _DAY_PREFIXES[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    if not _TIMES_OF_DAY:
        _TIMES_OF_DAY.extend(
            f"{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)
        )
    return f"{prefix}{_TIMES_OF_DAY[second]}{fraction:07d}Z"


def parse_to_ticks(text: str) -> int:
    """
    Parse an ISO-8601 date or date-time (``Z`` or an offset; a date alone is midnight UTC).

    :param text: the literal, e.g. ``2026-11-01T00:00:00Z`` or ``2026-11-01T12:00:00.1234567+02:00``.
    :raises ValueError: when it is no such date-time or has more than 7 fractional digits.
    """
    match = _ISO.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an ISO-8601 date-time such as 2026-11-01T00:00:00Z")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is not None and zone is None:
        raise ValueError(f"{text!r} has no time zone: end it with Z (UTC) or an offset such as +01:00")
    if fraction is not None and len(fraction) > 7:
        raise ValueError(f"{text!r} has more than 7 fractional second digits")
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid date-time: {err}") from None
    seconds = calendar.timegm(moment.timetuple())
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * TICKS_PER_SECOND + int((fraction or "0").ljust(7, "0"))


def datetime_to_ticks(moment: datetime) -> int:
    """Convert an aware (or naive UTC) datetime to ticks."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = calendar.timegm(moment.utctimetuple())
    return seconds * TICKS_PER_SECOND + moment.microsecond * 10


class Clock:
    """
    The emulator's "now": a fixed start (or the real time) that then runs with the real clock.

    ``tick()`` never returns the same value twice, so records created "now" are distinct and
    ordered even when created in the same microsecond.

    :param start: the emulator's notion of now at construction (``None``: the real time).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._origin = datetime_to_ticks(start) if start is not None else time.time_ns() // 100
        self._started = time.monotonic_ns()
        self._last = 0
        self._lock = threading.Lock()

    @property
    def origin(self) -> int:
        """The clock's start in ticks."""
        return self._origin

    def advance_past(self, ticks: int) -> None:
        """Make :meth:`tick` return values after ``ticks`` (stamps replayed from a journal)."""
        with self._lock:
            self._last = max(self._last, ticks)

    def now(self) -> int:
        """The current time in ticks (may repeat; use :meth:`tick` for record stamps)."""
        return self._origin + (time.monotonic_ns() - self._started) // 100

    def tick(self) -> int:
        """A strictly increasing "now" in ticks."""
        with self._lock:
            self._last = max(self.now(), self._last + 1)
            return self._last
