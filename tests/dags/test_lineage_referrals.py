"""A daily extract whose lineage and links tests/lineage and tests/links assert (run with dag.test()).

Each run writes the incoming referrals updated in its day, two fields selected, to
``$PARTNER_CENTER_DATA_DIR/test_lineage/referrals_<interval start>.jsonl``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

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
