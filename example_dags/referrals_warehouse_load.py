"""
Daily incremental load of Partner Center referrals into a SQL warehouse (SQLite or PostgreSQL).

Each run extracts the referrals updated in its data interval (plus a 2-hour lookback for late
updates) to ``$PARTNER_CENTER_DATA_DIR/referrals/<day>.jsonl`` and upserts that file into the
table ``referrals`` of the connection ``partner_center_warehouse`` (any ``sqlite`` or ``postgres``
connection); while that connection is not defined, into the SQLite file
``$PARTNER_CENTER_DATA_DIR/warehouse.db``. Reruns and backfills replace the day's file and never
duplicate warehouse rows: the newest ``updatedDateTime`` of each ``id`` wins.

Both tasks record asset events with their facts. The day's file is known only at run time, so the
extract declares the asset alias ``partner_center_referrals_daily``; each run attaches the file's
asset (``file://.../referrals/<day>.jsonl``) with the window and the counts. The load updates the
asset ``partner_center_referrals_warehouse`` with the day and the rows read, changed and in total.
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
WAREHOUSE_CONN_ID = "partner_center_warehouse"
WAREHOUSE_DB = os.path.join(DATA_DIR, "warehouse.db")  # the embedded default
WAREHOUSE_ASSET = Asset(name="partner_center_referrals_warehouse")

# [START warehouse_load]
with DAG(
    dag_id="referrals_warehouse_load",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # SQLite takes one writer at a time
    tags=["partner_center", "example"],
):
    extract = PartnerCenterReferralsOperator(
        task_id="extract_referrals",
        # The interval's day names the file: a rerun of the day replaces it atomically.
        output_path=f"file://{DATA_DIR}/referrals/" + "{{ data_interval_start | ds }}.jsonl",
        output_format="jsonl",
        lookback=dt.timedelta(hours=2),
        # A templated path is declared as an asset alias: each run attaches its day's file to it.
        output_asset_alias="partner_center_referrals_daily",
    )

    @task(outlets=[WAREHOUSE_ASSET])
    def load_warehouse(
        manifest: dict[str, Any], data_interval_start: Any = None, outlet_events: Any = None
    ) -> dict[str, Any]:
        """Upsert the extracted file into the warehouse; returns what changed."""
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_partner.examples.warehouse import example_warehouse_hook, load_event_extra
        from airflow_provider_partner.warehouse import dialect_of, load_referrals

        hook = example_warehouse_hook(WAREHOUSE_CONN_ID, WAREHOUSE_DB)
        # Streamed in chunks, one transaction: a failed load leaves the table as it was.
        result = load_referrals(hook, ObjectStoragePath(manifest["path"]))
        outlet_events[WAREHOUSE_ASSET].extra.update(
            load_event_extra(result, day=f"{data_interval_start:%Y-%m-%d}", path=manifest["path"])
        )
        # "received" counts lookback/paging repeats; "count" is what the file holds.
        fetched = manifest.get("received", manifest["count"])
        return {
            **result,
            "path": manifest["path"],
            "fetched": fetched,
            "written": manifest["count"],
            "dialect": dialect_of(hook).name,
        }

    load_warehouse(extract.output)
# [END warehouse_load]
