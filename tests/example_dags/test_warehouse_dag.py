"""dag.test() of example_dags/referrals_warehouse_load.py against the emulator."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from example_dag_helpers import load_dag, midnight_today, updated_in

LOOKBACK = dt.timedelta(hours=2)


def _warehouse(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, updated_date_time FROM referrals").fetchall())
    finally:
        conn.close()


def test_two_days_then_a_rerun_load_each_referral_once(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path
) -> None:
    dag = load_dag("referrals_warehouse_load")
    truth = partner_center_emulator.referrals()
    db = data_dir / "warehouse.db"
    first = midnight_today() - dt.timedelta(days=3)
    expected: dict[str, str] = {}
    for start in (first, first + dt.timedelta(days=1)):
        end = start + dt.timedelta(days=1)
        run = dag.test(logical_date=end)
        assert run.state == "success"
        assert (run.data_interval_start, run.data_interval_end) == (start, end)

        window = updated_in(truth, start - LOOKBACK, end)
        loaded = run.get_task_instance("load_warehouse").xcom_pull(task_ids="load_warehouse")
        assert loaded["path"] == f"file://{data_dir}/referrals/{start:%Y-%m-%d}.jsonl"
        assert loaded["written"] == loaded["read"] == len(window) > 0
        assert loaded["fetched"] >= loaded["written"]
        # Only the lookback overlap with yesterday's file was already there, unchanged.
        assert loaded["changed"] == len(set(window) - set(expected))
        expected.update(window)
        assert loaded["rows"] == len(expected)
        assert _warehouse(db) == expected

    # Rerunning the first day replaces its file and changes no warehouse row.
    rerun = dag.test(logical_date=first + dt.timedelta(days=1))
    assert rerun.state == "success"
    loaded = rerun.get_task_instance("load_warehouse").xcom_pull(task_ids="load_warehouse")
    assert (loaded["changed"], loaded["rows"]) == (0, len(expected))
    assert _warehouse(db) == expected
