"""
Daily incremental merge of Partner Center referrals into a Delta Lake table (delta-rs, no Spark).

Each run extracts the referrals updated in its data interval (plus a 2-hour lookback for late
updates) to ``$PARTNER_CENTER_DATA_DIR/referrals_delta/<day>.jsonl`` and merges that file into the
Delta table at ``$PARTNER_CENTER_DELTA_TABLE``: any ``file://``, ``s3://<aws_conn>@<bucket>/<key>``
or ``abfs://<wasb_conn>@<container>/<key>`` location (ADLS Gen2, which Microsoft Fabric and Azure
Databricks read as it is). Without that variable, into ``$PARTNER_CENTER_DATA_DIR/lake/referrals``.
Reruns and backfills never duplicate or regress a row: the newest ``updatedDateTime`` of each ``id``
wins, and a run that changes nothing commits nothing. Needs ``airflow-provider-partner[delta]``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

# airflow.sdk has it from Airflow 3.2; compat gives 3.1 the core one.
from airflow_provider_partner.compat import CronDataIntervalTimetable
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

DATA_DIR = os.environ.get("PARTNER_CENTER_DATA_DIR") or os.path.expanduser("~/partner_center_data")
DELTA_TABLE = os.environ.get("PARTNER_CENTER_DELTA_TABLE") or f"file://{DATA_DIR}/lake/referrals"
DELTA_ASSET = Asset(name="partner_center_referrals_delta")

# [START delta_lake_load]
with DAG(
    dag_id="referrals_delta_lake",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["partner_center", "example", "delta_lake"],
):
    extract = PartnerCenterReferralsOperator(
        task_id="extract_referrals",
        # The interval's day names the file: a rerun of the day replaces it atomically.
        output_path=f"file://{DATA_DIR}/referrals_delta/" + "{{ data_interval_start | ds }}.jsonl",
        output_format="jsonl",
        lookback=dt.timedelta(hours=2),
    )

    @task(outlets=[DELTA_ASSET])
    def merge_into_delta(
        manifest: dict[str, Any], data_interval_start: Any = None, outlet_events: Any = None
    ) -> dict[str, Any]:
        """Merge the extracted file into the Delta table (one commit); returns what changed."""
        # deltalake is imported by the merge, at run time: the DAG parses without it.
        from airflow_provider_partner.examples.warehouse import load_event_extra
        from airflow_provider_partner.warehouse import merge_referrals_delta

        # Concurrent runs are safe: a conflicting commit is re-run on the new table version.
        result = merge_referrals_delta(manifest["path"], DELTA_TABLE)
        extra = load_event_extra(result, day=f"{data_interval_start:%Y-%m-%d}", path=manifest["path"])
        outlet_events[DELTA_ASSET].extra.update({**extra, "table_version": result["version"]})
        return {**result, "path": manifest["path"], "written": manifest["count"]}

    merge_into_delta(extract.output)
# [END delta_lake_load]
