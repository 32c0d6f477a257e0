"""
Follow up on new incoming referrals: wait for them, accept each in Partner Center, record it.

A run waits (deferred: no worker slot is held) until new unanswered incoming referrals arrive,
then maps one ``accept_referral`` task over them: a JSON Patch to status ``Active`` / substatus
``Accepted`` sent with ``If-Match: <eTag>``. If someone changed a referral meanwhile (HTTP 412)
it is read again and accepted once more if it is still new, else skipped; see
``airflow_provider_partner.examples.followup``. ``record_outcomes`` writes every outcome to the
``referral_followups`` table of the warehouse ``referrals_warehouse_load`` fills: the connection
``partner_center_warehouse``, else the SQLite file ``$PARTNER_CENTER_DATA_DIR/warehouse.db``.

Schedule: none; trigger it when you want to wait for the next referrals. The run has no data
interval, so the sensor's window is ``[logical date, open)``: referrals created from the moment
the run was triggered on (the whole batch that arrives first, up to ``max_referrals``). Runs
therefore do not tile time: what arrives while no run waits is not seen here. For continuous,
gap-free follow-up use ``referrals_event_driven`` (an ``AssetWatcher`` with a durable
watermark). For periodic sweeps, schedule with ``CronDataIntervalTimetable``: each run then
covers its ``[start, end)`` interval exactly once, and ``soft_fail`` skips empty intervals.

``PARTNER_CENTER_POKE_INTERVAL`` (seconds, default 60) sets how often the triggerer checks; the
demo and the tests make it short.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor

DATA_DIR = os.environ.get("PARTNER_CENTER_DATA_DIR") or os.path.expanduser("~/partner_center_data")
WAREHOUSE_DB = os.path.join(DATA_DIR, "warehouse.db")
POKE_INTERVAL = float(os.environ.get("PARTNER_CENTER_POKE_INTERVAL", "60"))

# [START followup]
with DAG(
    dag_id="referrals_followup",
    schedule=None,  # triggered: waits for what arrives from then on (see the docstring)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two waiting runs would both see, and race to accept, the same referrals
    tags=["partner_center", "example"],
):
    wait = PartnerCenterNewReferralsSensor(
        task_id="wait_for_new_referrals",
        deferrable=True,  # the triggerer polls; no worker slot is held while waiting
        poke_interval=POKE_INTERVAL,
        timeout=dt.timedelta(hours=6),
        soft_fail=True,  # nothing arrived in 6 hours: skip, not fail
        max_referrals=50,  # one mapped task each; the oldest (closest to expiry) first
    )

    @task(map_index_template="{{ referral_id }}", retries=2, max_active_tis_per_dagrun=4)
    def accept_referral(referral: dict[str, Any]) -> dict[str, Any]:
        """Accept one referral with If-Match; a 412 is re-read and retried once, never a crash."""
        from airflow.sdk import get_current_context

        from airflow_provider_partner.examples.followup import accept_referral as accept
        from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

        get_current_context()["referral_id"] = referral["id"]  # names the mapped task in the UI
        return accept(PartnerCenterHook(), referral)

    @task
    def record_outcomes(results: list[dict[str, Any]]) -> dict[str, Any]:
        """Write every outcome to the warehouse; returns the ids by outcome."""
        from airflow_provider_partner.examples.followup import record_followups, summarize

        # A slice reads every mapped result in one request (iterating reads one by one, then
        # probes past the end).
        outcomes = list(results[:])
        return summarize(outcomes, record_followups(outcomes, WAREHOUSE_DB))

    record_outcomes(accept_referral.expand(referral=wait.output))
# [END followup]
