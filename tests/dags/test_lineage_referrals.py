"""An extract and a sensor whose lineage and links tests/lineage and tests/links assert (dag.test()).

Each run writes the incoming referrals updated in its day, two fields selected, to
``$PARTNER_CENTER_DATA_DIR/test_lineage/referrals_<interval start>.jsonl``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_partner.compat import CronDataIntervalTimetable
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator
from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor

DATA_DIR = os.environ.get("PARTNER_CENTER_DATA_DIR", "/tmp/partner-center-data")

with DAG(
    dag_id="test_lineage_referrals",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    PartnerCenterReferralsOperator(
        task_id="extract",
        filter="direction eq 'Incoming'",
        select=["name", "status"],
        output_path=f"file://{DATA_DIR}/test_lineage/referrals_" + "{window_start:%Y%m%d}.jsonl",
    )

with DAG(
    dag_id="test_lineage_new_referrals",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    # Every unanswered incoming referral so far: found at the first poke.
    PartnerCenterNewReferralsSensor(
        task_id="wait",
        created_after="2000-01-01T00:00:00Z",
        max_referrals=10,
        poke_interval=0.2,
        timeout=60,
    )
