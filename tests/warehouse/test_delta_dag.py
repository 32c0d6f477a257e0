"""dag.test() of example_dags/referrals_delta_lake.py against the emulator, into a local Delta table."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("deltalake")

from dag_loading import load_dag

from warehouse.delta_helpers import DAY, LOOKBACK, iso

pytestmark = pytest.mark.dag


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example's default table folder and its day files, absent before and removed after."""
    monkeypatch.delenv("PARTNER_CENTER_DELTA_TABLE", raising=False)
    data = Path(os.environ["PARTNER_CENTER_DATA_DIR"])
    folders = (data / "lake", data / "referrals_delta")
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    yield data / "lake" / "referrals"
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _run(dag: Any, end: dt.datetime) -> dict[str, Any]:
    run = dag.test(logical_date=end)
    assert run.state == "success"
    merged: dict[str, Any] = run.get_task_instance("merge_into_delta").xcom_pull(task_ids="merge_into_delta")
    return merged


def _table(path: Path) -> Any:
    from deltalake import DeltaTable

    return DeltaTable(str(path))


def test_a_day_merges_its_window_into_the_default_table(
    partner_center_emulator: Any, airflow_db: Path, lake: Path
) -> None:
    # The behaviour on each store (days, reruns, edits, replays, concurrency) is test_delta.py's;
    # here the example itself: its file, its default table, its asset (one dag.test: ~15 s).
    dag = load_dag("referrals_delta_lake")
    assert [o.name for o in dag.get_task("merge_into_delta").outlets] == ["partner_center_referrals_delta"]
    truth = partner_center_emulator.referrals()
    start = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - 2 * DAY
    low, high = iso(start - LOOKBACK), iso(start + DAY)
    window = {r["id"]: r for r in truth if low <= r["updatedDateTime"] < high}

    merged = _run(dag, start + DAY)
    assert merged == {
        "read": len(window),
        "changed": len(window),
        "rows": len(window),
        "version": 1,  # version 0 is the table's creation
        "path": f"file://{lake.parents[1]}/referrals_delta/{start:%Y-%m-%d}.jsonl",
        "written": len(window),
    }
    assert len(window) > 0
    rows = _table(lake).to_pyarrow_table().to_pylist()
    assert {row["id"]: row["updated_date_time_exact"] for row in rows} == {
        rid: r["updatedDateTime"] for rid, r in window.items()
    }
    assert all(json.loads(row["raw_json"]) == window[row["id"]] for row in rows)

    # The day's ids are all new: one append.
    assert [h["operation"] for h in _table(lake).history()] == ["WRITE", "CREATE TABLE"]
    # The asset's event says which day, from which file, what changed, and the table's version.
    assert _events("partner_center_referrals_delta") == [
        {
            "day": f"{start:%Y-%m-%d}",
            "path": merged["path"],
            "rows_read": len(window),
            "rows_changed": len(window),
            "rows_total": len(window),
            "table_version": 1,
        }
    ]


def _events(uri: str) -> list[dict[str, Any]]:
    """The extras of the events of the asset ``uri`` (its name: the URI Airflow gives it), oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        events = session.scalars(query.where(AssetModel.uri == uri).order_by(AssetEvent.id))
        return [dict(event.extra) for event in events]
