"""
How a long wait logs: at INFO only when something changes, a heartbeat at most hourly, DEBUG else.

A sensor may wait 14 days for a referral. One INFO line per check is 1,440 lines a day at a 60 s
interval, and the line that matters (a count that moved, a failed check) drowns in them.
:class:`QuietWaitLog` decides the level of each check's line:

* INFO for the first check (it says what the wait looks for and how it will log);
* INFO when the check's state changes (the count of matching referrals, the watermark);
* WARNING for a failed check that will be retried, INFO for the first good check after failures;
* INFO for a heartbeat when no INFO line was written for ``heartbeat`` seconds (one hour):
  how many checks since when, and the state;
* DEBUG for every other check.

It is pure (a logger and a clock in, lines out): the sensor (poke mode), the deferrable sensor's
trigger and the ``AssetWatcher`` event trigger share it, and tests drive it with a fake clock.
DAG files import it through the sensor: it imports nothing heavy (``extract/window``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from airflow_provider_partner.extract.window import duration

__all__ = ["DEFAULT_HEARTBEAT", "QuietWaitLog", "duration"]

#: Seconds without an INFO line after which a check writes a summary at INFO.
DEFAULT_HEARTBEAT = 3600.0

_UNKNOWN = object()


class WaitLogger(Protocol):
    """What a wait logs to: a standard library logger, or Airflow's structlog logger."""

    def debug(self, event: str, /) -> Any:
        """Write a DEBUG line."""

    def info(self, event: str, /) -> Any:
        """Write an INFO line."""

    def warning(self, event: str, /) -> Any:
        """Write a WARNING line."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next(next_check: float | None) -> str:
    return "" if next_check is None else f"; next check in {next_check:.0f} s"


class QuietWaitLog:
    """
    The log of one wait: a line per check, at INFO only when a person needs it.

    :param logger: where the lines go (the trigger's or the task's logger).
    :param heartbeat: seconds without an INFO line before a check writes a summary at INFO.
    :param clock: returns the current UTC time (tests pass a fake one).
    :param since: when the wait began (default: now). A rescheduled sensor passes its first
        poke's time through :meth:`resume`.
    """

    def __init__(
        self,
        logger: WaitLogger,
        *,
        heartbeat: float = DEFAULT_HEARTBEAT,
        clock: Callable[[], dt.datetime] = _utcnow,
        since: dt.datetime | None = None,
    ) -> None:
        self.logger = logger
        self.heartbeat = heartbeat
        self.clock = clock
        self.since = since if since is not None else clock()
        #: Checks made by this process (failed ones included); ``None`` when unknown (resumed).
        self.checks: int | None = 0
        #: Failed checks since the last good one.
        self.failures = 0
        self._state: Any = _UNKNOWN
        self._last_info = self.since
        self._resumed = False

    @classmethod
    def resume(
        cls,
        logger: WaitLogger,
        *,
        since: dt.datetime,
        interval: float,
        heartbeat: float = DEFAULT_HEARTBEAT,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> QuietWaitLog:
        """
        The log of a wait that began in an earlier process (a sensor in ``reschedule`` mode).

        Each poke is a process of its own, so nothing is remembered between checks: the first
        check is not announced, changes of state are not told apart (the sensor's own lines say
        when it is done), and the check that is the first after each multiple of ``heartbeat``
        since ``since`` writes the heartbeat.

        :param since: when the first poke ran.
        :param interval: seconds between pokes (the previous poke ran about this long ago).
        """
        wait = cls(logger, heartbeat=heartbeat, clock=clock, since=since)
        wait.checks = None
        wait._resumed = True
        elapsed = (clock() - since).total_seconds()
        boundary = since + dt.timedelta(seconds=(elapsed // heartbeat) * heartbeat)
        crossed = elapsed >= heartbeat and (clock() - boundary).total_seconds() < interval
        # The heartbeat is due now if this is the first poke past a boundary, else at the next one.
        wait._last_info = boundary - dt.timedelta(seconds=heartbeat) if crossed else boundary
        return wait

    @property
    def fresh(self) -> bool:
        """Whether no check was logged yet in a wait that began in this process."""
        return self.checks == 0 and not self._resumed

    def check(self, state: str, key: Hashable, next_check: float | None = None) -> None:
        """
        Log one good check.

        :param state: what the check saw, e.g. ``"0 of 1 referral(s) so far"``.
        :param key: the part of the state whose change is news (a count, a watermark).
        :param next_check: seconds until the next check (``None``: not said).
        """
        now = self.clock()
        if self.checks is not None:
            self.checks += 1
        after = _next(next_check)
        previous, self._state = self._state, key
        if self.failures:
            self._info(now, "Checks work again after %d failed check(s): %s%s", self.failures, state, after)
            self.failures = 0
        elif previous is _UNKNOWN and not self._resumed:
            self._info(
                now,
                "%s%s (INFO again when this changes, after a failed check, and every %s)",
                state,
                after,
                duration(self.heartbeat),
            )
        elif previous is not _UNKNOWN and previous != key:
            self._info(now, "%s (changed)%s", state, after)
        elif (now - self._last_info).total_seconds() >= self.heartbeat:
            self._info(now, "Still waiting (%s): %s%s", self._summary(now), state, after)
        else:
            self.logger.debug(f"{state}{after}")

    def failed(self, message: str, *args: Any) -> None:
        """
        Log a failed check that will be retried (WARNING).

        :param message: the ``%``-format of the line, then its arguments.
        """
        if self.checks is not None:
            self.checks += 1
        self.failures += 1
        self.logger.warning(message % args if args else message)
        self._last_info = self.clock()

    def event(self, message: str, *args: Any, key: Any = _UNKNOWN) -> None:
        """
        Log news the caller has (an event fired) at INFO; the heartbeat counts from it.

        :param message: the ``%``-format of the line, then its arguments.
        :param key: the state after the news (the next check logs no change for it).
        """
        if key is not _UNKNOWN:
            self._state = key
        self._info(self.clock(), message, *args)

    def _info(self, now: dt.datetime, message: str, *args: Any) -> None:
        # Formatted here: structlog (the triggerer's and the task's loggers) and the standard
        # library then write the same text, and tests capture it whole.
        self.logger.info(message % args if args else message)
        self._last_info = now

    def _summary(self, now: dt.datetime) -> str:
        waited = duration((now - self.since).total_seconds())
        if self.checks is None:
            return f"since {_instant(self.since)}, {waited}"
        return f"{self.checks} checks since {_instant(self.since)}, {waited}"
