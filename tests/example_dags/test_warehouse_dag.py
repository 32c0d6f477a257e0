"""dag.test() of example_dags/referrals_warehouse_load.py against the emulator, into SQLite."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from example_dag_helpers import load_dag, midnight_today, updated_in

pytestmark = pytest.mark.dag

LOOKBACK = dt.timedelta(hours=2)
DAY = dt.timedelta(days=1)


def _warehouse(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, updated_date_time FROM referrals").fetchall())
    finally:
        conn.close()


def _raw(db: Path, referral_id: str) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT raw_json FROM referrals WHERE id = ?", (referral_id,)).fetchone()
        return dict(json.loads(row[0]))
    finally:
        conn.close()


def _run(dag: Any, end: dt.datetime) -> dict[str, Any]:
    run = dag.test(logical_date=end)
    assert run.state == "success"
    assert (run.data_interval_start, run.data_interval_end) == (end - DAY, end)
    loaded: dict[str, Any] = run.get_task_instance("load_warehouse").xcom_pull(task_ids="load_warehouse")
    return loaded


def test_a_day_loads_its_window_into_the_embedded_warehouse(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path
) -> None:
    # The dag.test() every combination of the matrix runs; the days, the rerun and the update
    # below are the same code on every Python, so they run once per Airflow line.
    start = midnight_today() - dt.timedelta(days=2)
    window = updated_in(partner_center_emulator.referrals(), start - LOOKBACK, start + DAY)
    loaded = _run(load_dag("referrals_warehouse_load"), start + DAY)
    assert loaded["path"] == f"file://{data_dir}/referrals/{start:%Y-%m-%d}.jsonl"
    assert loaded["dialect"] == "sqlite"
    assert loaded["written"] == loaded["read"] == loaded["changed"] == loaded["rows"] == len(window) > 0
    assert _warehouse(data_dir / "warehouse.db") == window


@pytest.mark.airflow_line
def test_days_a_rerun_and_an_update_load_each_referral_once_latest_wins(
    partner_center_emulator: Any,
    airflow_db: Path,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    db = tmp_path / "connected.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTNER_CENTER_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)})
    )
    dag = load_dag("referrals_warehouse_load")
    truth = partner_center_emulator.referrals()
    first = midnight_today() - dt.timedelta(days=3)
    expected: dict[str, str] = {}
    for start in (first, first + DAY):
        window = updated_in(truth, start - LOOKBACK, start + DAY)
        loaded = _run(dag, start + DAY)
        assert loaded["path"] == f"file://{data_dir}/referrals/{start:%Y-%m-%d}.jsonl"
        assert loaded["dialect"] == "sqlite"
        assert loaded["written"] == loaded["read"] == len(window) > 0
        assert loaded["fetched"] >= loaded["written"]
        # Only the lookback overlap with yesterday's file was already there, unchanged.
        assert loaded["changed"] == len(set(window) - set(expected))
        expected.update(window)
        assert loaded["rows"] == len(expected)
        assert _warehouse(db) == expected
    # The connection was used: the embedded default was never created.
    assert not (data_dir / "warehouse.db").exists()

    # Someone edits a referral of the second day: its updatedDateTime becomes now.
    edited = sorted(updated_in(truth, first + DAY, first + 2 * DAY))[0]
    edit = [{"op": "replace", "path": "/statusReason", "value": "edited"}]
    PartnerCenterHook().update_referral(edited, edit)
    now = {r["id"]: r for r in partner_center_emulator.referrals()}[edited]
    assert now["updatedDateTime"] > expected[edited]

    # Rerunning the second day: its file no longer holds the edited referral; nothing changes.
    loaded = _run(dag, first + 2 * DAY)
    assert (loaded["changed"], loaded["rows"]) == (0, len(expected))
    assert _warehouse(db) == expected

    # Today's run finds the edit and replaces the row; the rest of today's window is inserted.
    today = midnight_today()
    window = updated_in(partner_center_emulator.referrals(), today - LOOKBACK, today + DAY)
    assert window[edited] == now["updatedDateTime"]
    loaded = _run(dag, today + DAY)
    assert loaded["read"] == len(window)
    assert loaded["changed"] == len({i for i, updated in window.items() if expected.get(i) != updated})
    expected.update(window)
    assert (loaded["rows"], _warehouse(db)) == (len(expected), expected)
    assert _raw(db, edited)["statusReason"] == "edited"
