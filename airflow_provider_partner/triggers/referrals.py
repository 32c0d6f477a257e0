"""
Triggers that wait for new Partner Center referrals in the triggerer.

- :class:`PartnerCenterNewReferralsTrigger` is what the deferrable
  :class:`~airflow_provider_partner.sensors.referrals.PartnerCenterNewReferralsSensor` hands its
  wait to: it fires once, with the referrals or with the reason it gave up.
- :class:`PartnerCenterNewReferralsEventTrigger` drives an ``AssetWatcher``: it fires one event per
  batch of new referrals, forever, and keeps a durable watermark so that a referral fires once.

Both run the same one-request check as the sensor's poke
(:func:`~airflow_provider_partner.extract.new_referrals.check_new_referrals`). The hook is
synchronous (``requests``), so every check runs in a worker thread: the triggerer's event loop
never blocks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_partner.errors import (
    PartnerCenterError,
    PartnerCenterResponseError,
    is_transient,
)
from airflow_provider_partner.extract.new_referrals import (
    NewReferralsCheck,
    NewReferralsQuery,
    check_new_referrals,
)
from airflow_provider_partner.triggers.wait_log import QuietWaitLog, duration
from airflow_provider_partner.triggers.watermark import Watermark, open_watermark_store

__all__ = ["PartnerCenterNewReferralsEventTrigger", "PartnerCenterNewReferralsTrigger"]

#: Consecutive failed checks (each already retried by the hook) tolerated before giving up.
DEFAULT_MAX_CONSECUTIVE_ERRORS = 5


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _waiting_can_fix(error: PartnerCenterError) -> bool:
    # A page a proxy replaced with HTML, or one cut off in transit, fails this check only: the next
    # one is usually fine. A task reading pages fails on it (its retries start over cleanly); a
    # wait that lasts hours should not end on one bad page, so it counts as one failed check.
    return is_transient(error) or isinstance(error, PartnerCenterResponseError)


class _Checker:
    """Runs checks in a thread, with a hook built in the triggerer from the connection id."""

    def __init__(self, conn_id: str, max_consecutive_errors: int, wait_log: QuietWaitLog) -> None:
        self.conn_id = conn_id
        self.max_consecutive_errors = max_consecutive_errors
        self.wait_log = wait_log
        self.failures = 0
        self._hook: Any = None

    async def check(self, query: NewReferralsQuery) -> NewReferralsCheck | None:
        """
        Return the check's result, or ``None`` after a transient failure that is still tolerated.

        :raises PartnerCenterError: a failure that waiting cannot fix, or too many in a row.
        """
        if self._hook is None:
            from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

            self._hook = PartnerCenterHook(self.conn_id)
        try:
            result = await asyncio.to_thread(check_new_referrals, self._hook, query)
        except PartnerCenterError as err:
            if not _waiting_can_fix(err):
                raise
            self.failures += 1
            if self.failures >= self.max_consecutive_errors:
                raise PartnerCenterError(
                    f"Gave up after {self.failures} failed checks in a row; the last one: {err}"
                ) from None
            self.wait_log.failed(
                "Check for new referrals failed (%d of %d tolerated in a row), will try again: %s",
                self.failures,
                self.max_consecutive_errors - 1,
                err,
            )
            return None
        self.failures = 0
        return result


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow leaves it unannotated


def _next_interval(base: float, exponential: bool, attempt: int, max_wait: float | None) -> float:
    interval = base * (2 ** min(attempt, 30)) if exponential else base
    return min(interval, max_wait) if max_wait is not None else interval


class PartnerCenterNewReferralsTrigger(BaseTrigger):
    """
    Wait until enough new referrals match, then fire once with them.

    :param query: a serialised
        :class:`~airflow_provider_partner.extract.new_referrals.NewReferralsQuery`.
    :param partner_center_conn_id: the Airflow connection id.
    :param poke_interval: seconds between checks.
    :param exponential_backoff: double the interval after every unsuccessful check.
    :param max_wait: the longest interval with ``exponential_backoff`` (seconds).
    :param timeout_at: ISO-8601 UTC time at which to stop waiting and fire a ``timeout`` event.
    :param max_consecutive_errors: transient failures in a row tolerated before failing.
    """

    def __init__(
        self,
        *,
        query: dict[str, Any],
        partner_center_conn_id: str = "partner_center_default",
        poke_interval: float = 60.0,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        timeout_at: str | None = None,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.query = dict(query)
        self.partner_center_conn_id = partner_center_conn_id
        self.poke_interval = float(poke_interval)
        self.exponential_backoff = exponential_backoff
        self.max_wait = max_wait
        self.timeout_at = timeout_at
        self.max_consecutive_errors = max_consecutive_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain kwargs the triggerer rebuilds this trigger from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "query": self.query,
                "partner_center_conn_id": self.partner_center_conn_id,
                "poke_interval": self.poke_interval,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "timeout_at": self.timeout_at,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check, sleep, check again; fire ``success``, ``timeout`` or ``error`` exactly once."""
        try:
            query = NewReferralsQuery.deserialize(self.query)
        except PartnerCenterError as err:
            yield _event({"status": "error", "message": str(err)})
            return
        deadline = dt.datetime.fromisoformat(self.timeout_at) if self.timeout_at else None
        wait_log = QuietWaitLog(self.log)
        checker = _Checker(self.partner_center_conn_id, self.max_consecutive_errors, wait_log)
        attempt = 0
        while True:
            try:
                result = await checker.check(query)
            except PartnerCenterError as err:
                yield _event({"status": "error", "message": str(err)})
                return
            if result is not None and result.satisfies(query):
                yield _event(
                    {
                        "status": "success",
                        "referrals": result.referrals,
                        "more": result.more,
                        "filter": result.filter,
                    }
                )
                return
            delay = _next_interval(self.poke_interval, self.exponential_backoff, attempt, self.max_wait)
            if deadline is not None:
                left = (deadline - _utcnow()).total_seconds()
                if left <= 0:
                    yield _event(
                        {
                            "status": "timeout",
                            "message": f"No {query.min_count} new referral(s) by {self.timeout_at}.",
                        }
                    )
                    return
                delay = min(delay, left)
            if result is not None:
                found = len(result.referrals)
                wait_log.check(f"{found} of {query.min_count} referral(s) so far", found, delay)
            attempt += 1
            await asyncio.sleep(delay)


class PartnerCenterNewReferralsEventTrigger(BaseEventTrigger):
    """
    Fire one asset event per batch of new referrals (for ``AssetWatcher``), each referral once.

    The watermark is the newest ``createdDateTime`` already fired plus the ids fired at exactly
    that instant. It is saved *before* the event is yielded, so a triggerer restart resumes after
    the last batch instead of firing it again. The store is ``watermark_location``
    (``variable://<key>`` or an ``ObjectStoragePath`` URL) when set, else the watched asset's
    state store (Airflow 3.3). See ``docs/sensor.md``.

    :param partner_center_conn_id: the Airflow connection id.
    :param direction: ``Incoming`` by default; ``None`` for both.
    :param status: ``New`` by default; ``None`` for any.
    :param filter: an extra OData filter, e.g. ``type eq 'Shared'``.
    :param start_after: where the first watermark starts (ISO-8601 UTC); default: when the trigger
        first runs (only arrivals from then on fire).
    :param poke_interval: seconds between checks.
    :param batch_size: most referral ids per event (events stay small).
    :param watermark_location: where to keep the watermark when there is no asset state store.
    :param watermark_key: the key of the watermark in the store (one per watcher).
    :param max_consecutive_errors: transient failures in a row tolerated before failing.
    """

    def __init__(
        self,
        *,
        partner_center_conn_id: str = "partner_center_default",
        direction: str | None = "Incoming",
        status: str | None = "New",
        filter: str | None = None,
        start_after: str | None = None,
        poke_interval: float = 60.0,
        batch_size: int = 100,
        watermark_location: str | None = None,
        watermark_key: str = "partner_center_new_referrals",
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.partner_center_conn_id = partner_center_conn_id
        self.direction = direction
        self.status = status
        self.filter = filter
        self.start_after = start_after
        self.poke_interval = float(poke_interval)
        self.batch_size = batch_size
        self.watermark_location = watermark_location
        self.watermark_key = watermark_key
        self.max_consecutive_errors = max_consecutive_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain kwargs the triggerer rebuilds this trigger from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "partner_center_conn_id": self.partner_center_conn_id,
                "direction": self.direction,
                "status": self.status,
                "filter": self.filter,
                "start_after": self.start_after,
                "poke_interval": self.poke_interval,
                "batch_size": self.batch_size,
                "watermark_location": self.watermark_location,
                "watermark_key": self.watermark_key,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    def _query(self, mark: Watermark) -> NewReferralsQuery:
        return NewReferralsQuery(
            created_after=mark.created_after,
            direction=self.direction,
            status=self.status,
            filter=self.filter,
            select=("id", "createdDateTime"),
            max_referrals=self.batch_size,
            exclude_ids=mark.ids_at_mark,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; fire ``{"ids", "count", "created_from", "created_to"}`` per batch."""
        # Taken before the first await: referrals created while the store is read still fire.
        first = Watermark.start(self.start_after, _utcnow())
        store = open_watermark_store(
            self.watermark_key,
            location=self.watermark_location,
            asset_state_store=getattr(self, "asset_state_store", None),
        )
        mark = await store.load()
        if mark is None:
            mark = first
            await store.save(mark)
        wait_log = QuietWaitLog(self.log)
        wait_log.event(
            "Watching for referrals created from %s on (watermark in %s); a check every %.0f s "
            "(INFO for each event, after a failed check, and every %s)",
            mark.created_after,
            store.location,
            self.poke_interval,
            duration(wait_log.heartbeat),
            key=mark,
        )
        checker = _Checker(self.partner_center_conn_id, self.max_consecutive_errors, wait_log)
        while True:
            result = await checker.check(self._query(mark))
            if result is not None and result.referrals:
                batch = result.referrals
                mark = mark.advanced(batch)
                await store.save(mark)
                wait_log.event(
                    "Firing an event for %d new referral(s) created %s .. %s%s",
                    len(batch),
                    batch[0]["createdDateTime"],
                    batch[-1]["createdDateTime"],
                    "; more are waiting, next batch at once" if result.more else "",
                    key=mark,
                )
                yield _event(
                    {
                        "ids": [referral["id"] for referral in batch],
                        "count": len(batch),
                        "created_from": batch[0]["createdDateTime"],
                        "created_to": batch[-1]["createdDateTime"],
                    }
                )
                if result.more:
                    continue  # a backlog: next batch at once
            elif result is not None:
                wait_log.check(f"no new referral since {mark.created_after}", mark, self.poke_interval)
            await asyncio.sleep(self.poke_interval)
