"""A daily referrals extract over real data intervals (tests/operators/test_operator_dags.py runs it).

Each run writes the referrals updated in its day (plus a 6-hour lookback) to
``$PARTNER_CENTER_DATA_DIR/test_operator/referrals_<interval start>.jsonl``. A manual run without an
interval takes the window from the ``window_start``/``window_end`` params.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG, AssetAlias, Param

from airflow_provider_partner.compat import CronDataIntervalTimetable
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

DATA_DIR = os.environ.get("PARTNER_CENTER_DATA_DIR", "/tmp/partner-center-data")

with DAG(
    dag_id="test_operator_daily_referrals",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "window_start": Param(None, type=["null", "string"], description="Explicit window start (UTC)"),
        "window_end": Param(None, type=["null", "string"], description="Explicit window end (UTC)"),
    },
    tags=["test"],
):
    PartnerCenterReferralsOperator(
        task_id="extract",
        output_path=f"file://{DATA_DIR}/test_operator/referrals_" + "{window_start:%Y%m%dT%H%M}.jsonl",
        lookback=dt.timedelta(hours=6),
        parallelism=2,
        # The file name is known only at run time: the alias records which asset each run wrote.
        outlets=[AssetAlias("test_operator_daily_referrals")],
    )
