"""
The API's instants: UTC date-times with up to 7 fractional digits, as Partner Center writes them.

The Referrals API stores ``createdDateTime``, ``updatedDateTime`` and the other ``*DateTime``
fields in UTC with 100-nanosecond precision (``2026-11-01T10:00:00.1234567Z``), one digit more
than Python's ``datetime``. Windows, de-duplication, watermarks and Parquet all depend on those
values, so they are parsed, compared, rendered and converted here, and only here:

- :class:`Instant` is one such value (an integer count of 100 ns ticks since 1970-01-01 UTC):
  exact, totally ordered, hashable;
- :func:`parse` reads what users and the API write: ISO-8601 with ``Z`` or an offset, 0 to 7
  fractional digits, a bare date (midnight UTC), a string without offset (UTC), a ``datetime``;
- :meth:`Instant.literal` renders the OData literal the API compares against, and
  :meth:`Instant.api_format` the API's own spelling (always 7 digits: what watermarks store);
- :func:`sort_key` is the cheap per-record key that sorts API values by the instant they denote;
- :func:`to_datetime` converts an API value for Parquet's microsecond timestamps.

Pure: no IO, nothing heavy to import (DAG files import this at parse time).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["TICKS_PER_SECOND", "Instant", "parse", "sort_key", "to_datetime"]

#: The API's resolution: 100 ns ticks per second.
TICKS_PER_SECOND = 10_000_000
_TICKS_PER_MICROSECOND = 10
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_MAX_DIGITS = 7

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


@dataclass(frozen=True, order=True)
class Instant:
    """
    One UTC instant at the API's 100 ns resolution.

    :param ticks: 100-nanosecond ticks since 1970-01-01T00:00:00Z (negative before it).
    """

    ticks: int

    @classmethod
    def from_datetime(cls, value: dt.datetime) -> Instant:
        """
        The instant of an aware ``datetime`` (``pendulum.DateTime`` too); naive means UTC.

        :param value: the datetime.
        """
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        # Through the offset, not datetime subtraction: pendulum's arithmetic returns its own
        # Interval, whose division by a stdlib timedelta fails.
        offset = value.utcoffset() or dt.timedelta(0)
        wall = dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
        )
        return cls(_microseconds(wall - _NAIVE_EPOCH - offset) * _TICKS_PER_MICROSECOND)

    def to_datetime(self) -> dt.datetime:
        """This instant as an aware UTC ``datetime`` (a 7th fractional digit is dropped)."""
        micros, _ = divmod(self.ticks, _TICKS_PER_MICROSECOND)
        return _EPOCH + dt.timedelta(microseconds=micros)

    def literal(self) -> str:
        """
        The OData literal of this instant, e.g. ``2026-11-01T10:00:00Z``.

        Whole seconds carry no fraction, an instant on a whole microsecond carries 6 digits (what
        a ``datetime`` holds), any other 7 digits: the literal always denotes exactly this instant.
        """
        seconds, fraction = divmod(self.ticks, TICKS_PER_SECOND)
        moment = _EPOCH + dt.timedelta(seconds=seconds)
        # Formatted by hand: strftime does not zero-pad years before 1000 on every platform.
        text = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )
        if fraction % _TICKS_PER_MICROSECOND == 0 and fraction:
            text += f".{fraction // _TICKS_PER_MICROSECOND:06d}"
        elif fraction:
            text += f".{fraction:07d}"
        return text + "Z"

    def api_format(self) -> str:
        """This instant as the API writes it: always 7 fractional digits, e.g. ``...:00.1234560Z``."""
        seconds, fraction = divmod(self.ticks, TICKS_PER_SECOND)
        moment = _EPOCH + dt.timedelta(seconds=seconds)
        return (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{fraction:07d}Z"
        )

    def __add__(self, other: dt.timedelta) -> Instant:
        if not isinstance(other, dt.timedelta):
            return NotImplemented
        return Instant(self.ticks + _microseconds(other) * _TICKS_PER_MICROSECOND)

    def __sub__(self, other: dt.timedelta) -> Instant:
        if not isinstance(other, dt.timedelta):
            return NotImplemented
        return self + (-other)

    def __str__(self) -> str:
        return self.literal()


def _microseconds(delta: dt.timedelta) -> int:
    # By its parts: pendulum's Duration (a timedelta) cannot be divided by a stdlib timedelta.
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_text(text: str, name: str) -> Instant:
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{name}={text!r} is not an ISO-8601 date-time; use e.g. '2026-11-01T00:00:00Z' or '2026-11-01'."
        )
    fraction = match["fraction"] or ""
    if len(fraction) > _MAX_DIGITS:
        raise ValueError(
            f"{name}={text!r} has {len(fraction)} fractional digits; the API keeps at most "
            f"{_MAX_DIGITS} (100 ns). Round it, e.g. '2026-11-01T10:00:00.1234567Z'."
        )
    try:
        day = dt.date.fromisoformat(match["date"])
        clock = dt.time(int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0))
        zone = _zone(match["zone"])
    except ValueError as err:
        raise ValueError(f"{name}={text!r} is not a valid date-time ({err}).") from None
    moment = dt.datetime.combine(day, clock, tzinfo=zone)
    whole = Instant.from_datetime(moment).ticks
    return Instant(whole + int(fraction.ljust(_MAX_DIGITS, "0") or 0))


def _zone(text: str | None) -> dt.tzinfo:
    if not text or text in "Zz":
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse(value: object, name: str = "value") -> Instant:
    """
    Read an instant from what a user or the API writes.

    A date (``2026-11-01``) means midnight UTC; a string or ``datetime`` without offset is taken
    as UTC (the API compares in UTC), so a value typed into the trigger form works as expected.

    :param value: an :class:`Instant`, a ``datetime`` (``pendulum.DateTime`` too), a ``date``, or
        an ISO-8601 string with 0 to 7 fractional digits.
    :param name: the name of the setting, for the error message.
    :raises ValueError: ``value`` is none of these; the message names ``name`` and what to pass.
    """
    if isinstance(value, Instant):
        return value
    if isinstance(value, dt.datetime):
        return Instant.from_datetime(value)
    if isinstance(value, dt.date):
        return Instant.from_datetime(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str) and value.strip():
        return _from_text(value, name)
    raise ValueError(
        f"{name} must be an ISO-8601 date-time string or a datetime, got {type(value).__name__} {value!r}."
    )


def sort_key(value: object) -> str:
    """
    A string that sorts like the instant an API value denotes; ``""`` for a missing or unusable one.

    Called once per referral, so the API's own shape (``YYYY-MM-DDTHH:MM:SS[.f{1,7}]Z``) takes a
    fast path. Raw strings cannot be compared directly: the number of fractional digits varies,
    and ``...:00Z`` would sort after ``...:00.5Z``. Keys are ``YYYY-MM-DDTHH:MM:SS.fffffffZ`` in UTC.

    :param value: a field value from a referral.
    """
    if type(value) is str and len(value) == 28 and value[10] == "T" and value[19] == "." and value[27] == "Z":
        return value  # already the API's own 7-digit spelling: the key itself
    if type(value) is str and len(value) >= 20 and value[-1] == "Z" and value[10] == "T":
        head, _, fraction = value[:-1].partition(".")
        if len(head) == 19 and (not fraction or fraction.isdigit()):
            return f"{head}.{fraction[:7]:0<7}Z"
    if not isinstance(value, str) or not value:
        return ""
    try:
        return _from_text(value, "value").api_format()
    except ValueError:
        return ""


def to_datetime(value: str) -> dt.datetime | None:
    """
    An API value as an aware UTC ``datetime`` (microseconds: a 7th digit is dropped), else ``None``.

    For Parquet's ``timestamp[us, UTC]`` columns, where a value that is no date-time is kept as
    text elsewhere rather than failing the file.

    :param value: a field value from a referral.
    """
    try:
        return _from_text(value, "value").to_datetime()
    except ValueError:
        return None
