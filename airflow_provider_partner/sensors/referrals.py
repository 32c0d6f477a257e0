"""
Sensor that waits for new incoming Partner Center referrals and hands them to downstream tasks.

DAG files import this module at parse time: it imports no HTTP or MSAL code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from airflow_provider_partner.compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralTimeout,
    conf,
)
from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.extract.new_referrals import (
    DEFAULT_FIELDS,
    NewReferralsCheck,
    NewReferralsQuery,
    check_new_referrals,
)
from airflow_provider_partner.extract.window import resolve_window, user_filter
from airflow_provider_partner.links import NewestReferralLink, ReferralsWorkspaceLink
from airflow_provider_partner.links import newest_referral_id as find_newest_referral_id
from airflow_provider_partner.triggers.wait_log import QuietWaitLog

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = ["PartnerCenterNewReferralsSensor"]


#: How the log names where the window came from.
_WINDOW_SOURCES = {
    "operator": "created_after/created_before",
    "data_interval": "the data interval",
    "logical_date": "the run's logical date (no data interval)",
}


class PartnerCenterNewReferralsSensor(BaseSensorOperator):
    """
    Wait until new referrals arrive in Partner Center, then return them (oldest first).

    By default it waits for unanswered incoming referrals (``direction eq 'Incoming' and status eq
    'New'``) created in the run's window on ``createdDateTime``, which is half-open
    (``created_after <= createdDateTime < created_before``):

    * ``created_after`` / ``created_before`` when given (templated; ISO-8601, UTC if no offset);
    * else the run's data interval, when it is a real one (``CronDataIntervalTimetable``):
      consecutive runs cover time with no gap and no overlap;
    * else (manual runs, ``"@daily"``-style trigger timetables) from the run's logical date (or, with
      none, the time it was triggered) with no upper bound: referrals arriving after the run began.

    Each poke is one request (newest first, small ``$select`` and ``$top``). The return value
    (XCom ``return_value``) is the list of matching referrals with the ``select`` fields, at most
    ``max_referrals`` of them: map a follow-up task over it with ``.expand()``. If more match, the
    oldest ``max_referrals`` are returned (they expire first) and a warning says how to see all.

    .. seealso::
        ``docs/sensor.md`` for modes, watermark semantics and the AssetWatcher alternative.

    :param partner_center_conn_id: the Airflow connection id.
    :param created_after: inclusive lower bound of the window (templated).
    :param created_before: exclusive upper bound of the window (templated).
    :param direction: ``Incoming`` (default) or ``Outgoing``; ``None`` for both.
    :param status: ``New`` (default: not answered yet); ``None`` for any status.
    :param filter: an extra OData ``$filter`` ANDed with the rest, e.g. ``type eq 'Shared'`` (templated);
        run-time values go in through ``:name`` placeholders and ``filter_params``.
    :param filter_params: values of the filter's ``:name`` placeholders (templated), each quoted
        as an OData literal.
    :param min_count: how many referrals must match before the wait is over.
    :param max_referrals: most referrals returned (1-1000; they travel through XCom).
    :param select: fields returned (default: id, name, times, status, substatus, type,
        qualification, direction, eTag); ``None`` returns whole referrals.
    :param expiring_within: instead of new arrivals, wait for unanswered referrals whose 14-day
        deadline (``expirationDateTime``) is closer than this; the window is not applied.
    :param deferrable: hand the wait to the triggerer and free the worker slot (default: the
        ``[operators] default_deferrable`` setting).
    :param max_consecutive_errors: (deferrable) transient API failures in a row, each already
        retried by the hook, before the task fails.
    """

    template_fields: Sequence[str] = ("created_after", "created_before", "filter", "filter_params")
    ui_color = "#d6eaf8"
    operator_extra_links = (ReferralsWorkspaceLink(), NewestReferralLink())
    #: The ``id`` of the newest referral this run returned (its "Newest referral" link).
    newest_referral_id: str | None = None

    def __init__(
        self,
        *,
        partner_center_conn_id: str = "partner_center_default",
        created_after: str | dt.datetime | None = None,
        created_before: str | dt.datetime | None = None,
        direction: str | None = "Incoming",
        status: str | None = "New",
        filter: str | None = None,
        filter_params: dict[str, Any] | None = None,
        min_count: int = 1,
        max_referrals: int = 100,
        select: Iterable[str] | None = DEFAULT_FIELDS,
        expiring_within: dt.timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_errors: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.partner_center_conn_id = partner_center_conn_id
        self.created_after = created_after
        self.created_before = created_before
        self.direction = direction
        self.status = status
        self.filter = filter
        self.filter_params = filter_params
        self.min_count = min_count
        self.max_referrals = max_referrals
        self.select = tuple(select) if select is not None else None
        if expiring_within is not None and not isinstance(expiring_within, dt.timedelta):
            raise PartnerCenterConfigError(
                f"expiring_within must be a timedelta, got {type(expiring_within).__name__}."
            )
        self.expiring_within = expiring_within
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors
        # Fail at DAG parse time, not at 3 a.m.: everything but the templated bounds is known now.
        self._build_query(None, None, rendered=False)

    # -- what to wait for ------------------------------------------------------------------------
    def _build_query(self, created_after: Any, created_before: Any, *, rendered: bool) -> NewReferralsQuery:
        # Before rendering, a templated filter is checked only once it is rendered.
        templated = (
            not rendered and isinstance(self.filter, str) and ("{{" in self.filter or "{%" in self.filter)
        )
        return NewReferralsQuery(
            created_after=created_after,
            created_before=created_before,
            direction=self.direction,
            status=self.status,
            filter=None if templated else user_filter(self.filter, self.filter_params if rendered else None),
            expiring_within_seconds=(
                self.expiring_within.total_seconds() if self.expiring_within is not None else None
            ),
            select=self.select,
            min_count=self.min_count,
            max_referrals=self.max_referrals,
        )

    def query_for(self, context: Mapping[str, Any], *, announce: bool = True) -> NewReferralsQuery:
        """
        Return the query of this run (the window resolved from the context).

        :param context: the task context.
        :param announce: log the window at INFO (else DEBUG: a poke after the first).
        """
        if self.expiring_within is not None:
            return self._build_query(None, None, rendered=True)
        window = resolve_window(
            context, start=self.created_after, end=self.created_before, open_end=True, task_id=self.task_id
        )
        query = self._build_query(window.start, window.end, rendered=True)
        (self.log.info if announce else self.log.debug)(
            "Window on createdDateTime from %s: [%s, %s)",
            _WINDOW_SOURCES[window.source],
            query.created_after,
            query.created_before or "open",
        )
        return query

    @property
    def hook(self) -> PartnerCenterHook:
        """The hook (built on first use, so that DAG parsing stays light)."""
        hook: PartnerCenterHook | None = getattr(self, "_hook", None)
        if hook is None:
            from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

            hook = PartnerCenterHook(self.partner_center_conn_id)
            self._hook = hook
        return hook

    # -- poke and reschedule ---------------------------------------------------------------------
    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check once; done when at least ``min_count`` referrals match."""
        wait = self._wait_log(context)
        query = self.query_for(context, announce=wait.fresh)
        result = check_new_referrals(self.hook, query)
        if result.satisfies(query):
            return PokeReturnValue(is_done=True, xcom_value=self._report(result))
        found = len(result.referrals)
        state = f"{found} of {query.min_count} referral(s) so far"
        if wait.fresh:
            state += f" matching {result.filter}"
        # With exponential_backoff Airflow picks (and logs) each interval itself.
        wait.check(state, found, None if self.exponential_backoff else self.poke_interval)
        return False

    def _wait_log(self, context: Context) -> QuietWaitLog:
        """The log of this wait: the pokes of one process share it (``docs/sensor.md``)."""
        wait: QuietWaitLog | None = getattr(self, "_wait", None)
        if wait is None:
            # In reschedule mode each poke is a process of its own; the first ran at this time.
            since = context["ti"].get_first_reschedule_date(context) if self.reschedule else None
            if since is not None:
                wait = QuietWaitLog.resume(self.log, since=since, interval=self.poke_interval)
            else:
                wait = QuietWaitLog(self.log)
            self._wait = wait
        return wait

    def _report(self, result: NewReferralsCheck) -> list[dict[str, Any]]:
        self.newest_referral_id = find_newest_referral_id(result.referrals)
        self.log.info(
            "Found %d new referral(s) matching %s: %s",
            len(result.referrals),
            result.filter,
            ", ".join(str(referral.get("id")) for referral in result.referrals[:20])
            + (" ..." if len(result.referrals) > 20 else ""),
        )
        if result.more:
            self.log.warning(
                "More than %d referrals match; returning the oldest %d (they expire first). Raise "
                "max_referrals (up to 1000), schedule more often, or read them all with "
                "PartnerCenterReferralsOperator.",
                self.max_referrals,
                self.max_referrals,
            )
        return result.referrals

    # -- deferrable ------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) as usual; with ``deferrable=True`` check once, then defer."""
        if not self.deferrable:
            return super().execute(context)
        query = self.query_for(context)
        result = check_new_referrals(self.hook, query)
        if result.satisfies(query):
            return self._report(result)
        from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsTrigger

        self.log.info(
            "%d of %d referral(s) so far; deferring to the triggerer (check every %.0f s)",
            len(result.referrals),
            query.min_count,
            self.poke_interval,
        )
        timeout_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.timeout)
        self.defer(
            trigger=PartnerCenterNewReferralsTrigger(
                query=query.serialize(),
                partner_center_conn_id=self.partner_center_conn_id,
                poke_interval=self.poke_interval,
                exponential_backoff=self.exponential_backoff,
                max_wait=self.max_wait.total_seconds() if self.max_wait else None,
                timeout_at=timeout_at.isoformat(),
                max_consecutive_errors=self.max_consecutive_errors,
            ),
            method_name="execute_complete",
            # The trigger stops itself at timeout_at with a clear event; this is the backstop.
            timeout=dt.timedelta(seconds=self.timeout + 60),
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """
        Resume after the trigger fired: ``soft_fail`` skips on a timeout only, never on an error.

        Airflow's sensors turn any exception raised while resuming into a skip when ``soft_fail``
        is set, so an unreadable page or a revoked token would end the run "successfully", every
        task skipped, with the referrals left unanswered. Here an error fails the task with its
        cause (``never_fail`` still skips, as it promises to, with the cause logged).
        """
        try:
            return BaseOperator.resume_execution(self, next_method, next_kwargs, context)
        except TaskDeferralTimeout as err:
            self._timed_out(f"The deferred wait timed out ({err}).", err)
        except AirflowSkipException:
            raise
        except Exception as err:
            if self.never_fail:
                self.log.warning("Skipping (never_fail) after an error: %s", err)
                raise AirflowSkipException(f"Skipped (never_fail) after an error: {err}") from err
            raise

    def _timed_out(self, message: str, cause: BaseException | None = None) -> None:
        if self.soft_fail or self.never_fail:
            self.log.warning("Skipping (soft_fail): %s", message)
            raise AirflowSkipException(f"Sensor timed out (soft_fail): {message}") from cause
        self.log.error("Sensor timed out: %s", message)
        raise AirflowSensorTimeout(message) from cause

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the referrals the trigger found, or fail / skip with its message."""
        status = event.get("status")
        if status == "success":
            referrals: list[dict[str, Any]] = list(event.get("referrals") or [])
            return self._report(NewReferralsCheck(referrals, bool(event.get("more")), event.get("filter")))
        message = str(event.get("message") or event)
        if status == "timeout":
            self._timed_out(message)
        self.log.error("Waiting for new referrals failed: %s", message)
        raise AirflowException(f"Waiting for new referrals failed: {message}")
