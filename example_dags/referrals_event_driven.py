"""
Event-driven follow-up: an ``AssetWatcher`` fires when new incoming referrals arrive.

The triggerer runs ``PartnerCenterNewReferralsEventTrigger`` for as long as this DAG is
deployed: it checks every ``PARTNER_CENTER_POKE_INTERVAL`` seconds (default 60) and, per batch
of new unanswered incoming referrals, fires one event on the ``partner_center_new_referrals``
asset whose payload is ``{"ids", "count", "created_from", "created_to"}``. Each event schedules a
run of ``referrals_event_driven`` (several pending events may be folded into one run), whose
task accepts every referral of the events (``If-Match``, 412 handled) and records the outcomes in
the warehouse (table ``referral_followups``; the connection ``partner_center_warehouse``, else
``$PARTNER_CENTER_DATA_DIR/warehouse.db``).

Watermark: on Airflow 3.3 no ``watermark_location`` is set, so the trigger keeps its watermark in
this asset's state store (in the metadata database, removed with the asset). Before 3.3 a watcher
has no state store, so the watermark is kept in the Variable ``partner_center_new_referrals_watermark``.
Nothing else to configure, and a triggerer restart resumes after the last batch fired instead of
firing it again. The first start fires only referrals created from then on (``start_after`` unset).
Unlike the sensor of ``referrals_followup``, nothing arriving between runs is missed.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_partner.compat import HAS_ASSET_STATE_STORE
from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsEventTrigger

DATA_DIR = os.environ.get("PARTNER_CENTER_DATA_DIR") or os.path.expanduser("~/partner_center_data")
WAREHOUSE_DB = os.path.join(DATA_DIR, "warehouse.db")
POKE_INTERVAL = float(os.environ.get("PARTNER_CENTER_POKE_INTERVAL", "60"))
# Airflow 3.3+: None, the asset's state store keeps the watermark; before, a Variable does.
WATERMARK_LOCATION = None if HAS_ASSET_STATE_STORE else "variable://partner_center_new_referrals_watermark"

# [START event_driven]
NEW_REFERRALS = Asset(
    name="partner_center_new_referrals",
    # The provider's scheme: the referrals endpoint, and the query the watcher asks it.
    uri="partnercenter://api.partner.microsoft.com/v1.0/engagements/referrals?direction=Incoming&status=New",
    watchers=[
        AssetWatcher(
            name="partner_center_new_referrals_watcher",
            trigger=PartnerCenterNewReferralsEventTrigger(
                poke_interval=POKE_INTERVAL,
                batch_size=50,  # ids per event: the payload stays small
                watermark_location=WATERMARK_LOCATION,
            ),
        )
    ],
)

with DAG(
    dag_id="referrals_event_driven",
    schedule=NEW_REFERRALS,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # SQLite takes one writer at a time
    tags=["partner_center", "example"],
):

    @task(retries=2)
    def follow_up(triggering_asset_events: Any = None) -> dict[str, Any]:
        """Accept every referral of the triggering events and record the outcomes."""
        from airflow_provider_partner.examples.followup import (
            accept_referral,
            record_followups,
            referral_ids_from_events,
            summarize,
        )
        from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

        ids = referral_ids_from_events(triggering_asset_events[NEW_REFERRALS])
        hook = PartnerCenterHook()
        # Only the id travels in the event: accept_referral reads the referral for its eTag.
        results = [accept_referral(hook, {"id": referral_id}) for referral_id in ids]
        return summarize(results, record_followups(results, WAREHOUSE_DB))

    follow_up()
# [END event_driven]
