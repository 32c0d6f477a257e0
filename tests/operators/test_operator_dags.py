"""Real DAG runs (dag.test) of tests/dags/test_operator_daily_referrals.py against the emulator."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from dag_loading import load_dag
from operator_helpers import expected_referrals, midnight_today, read_jsonl

pytestmark = pytest.mark.dag

DAG_ID = "test_operator_daily_referrals"
LOOKBACK = dt.timedelta(hours=6)


@pytest.fixture
def out_dir() -> Path:
    folder = Path(os.environ["PARTNER_CENTER_DATA_DIR"]) / "test_operator"
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _dag():
    return load_dag(DAG_ID)


def _asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        return [e.extra for e in session.scalars(query.where(AssetModel.uri == uri))]


def test_five_daily_intervals_collect_exactly_the_referrals_updated_in_them(emu, airflow_db, out_dir):
    dag = _dag()
    starts = [midnight_today() - dt.timedelta(days=n) for n in range(6, 1, -1)]
    files: list[Path] = []
    for start in starts:
        end = start + dt.timedelta(days=1)
        run = dag.test(logical_date=end)  # a manual run of the interval ending at logical_date

        assert run.state == "success"
        assert (run.data_interval_start, run.data_interval_end) == (start, end)
        target = out_dir / f"referrals_{start:%Y%m%dT%H%M}.jsonl"
        manifest = run.get_task_instance("extract").xcom_pull(task_ids="extract")
        expected = expected_referrals(emu, start - LOOKBACK, end)
        assert manifest["path"] == f"file://{target}"
        assert manifest["count"] == len(expected) > 0
        assert (manifest["window_start"], manifest["window_end"]) == (
            f"{start - LOOKBACK:%Y-%m-%dT%H:%M:%SZ}",
            f"{end:%Y-%m-%dT%H:%M:%SZ}",
        )
        assert read_jsonl(target) == expected
        assert _asset_events(f"file://{target}") == [
            {
                "count": len(expected),
                "window_start": manifest["window_start"],
                "window_end": manifest["window_end"],
                "received": manifest["received"],
                "duplicates_removed": manifest["duplicates_removed"],
                "pages": manifest["pages"],
                "format": "jsonl",
                "path": f"file://{target}",
            }
        ]
        files.append(target)

    # The rendered-template view shows the complete $filter sent (rewritten after execution).
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    rendered = RenderedTaskInstanceFields.get_templated_fields(run.get_task_instance("extract"))
    assert (
        rendered["query_filter"]
        == manifest["filter"]
        == (f"updatedDateTime ge {manifest['window_start']} and updatedDateTime lt {manifest['window_end']}")
    )
    assert rendered["output_path"] == f"file://{out_dir}/referrals_" + "{window_start:%Y%m%dT%H%M}.jsonl"

    # Together: every referral updated in the five days (and the first lookback), each once after
    # removing the lookback overlaps between neighbouring days.
    lines = [record for path in files for record in read_jsonl(path)]
    union = {record["id"]: record for record in lines}
    first, last = starts[0] - LOOKBACK, starts[-1] + dt.timedelta(days=1)
    assert sorted(union) == sorted(r["id"] for r in expected_referrals(emu, first, last))
    overlaps = sum(len(expected_referrals(emu, s - LOOKBACK, s)) for s in starts[1:])
    assert len(lines) - len(union) == overlaps > 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in files)

    # Rerunning an interval writes a new file with the very same bytes.
    before = files[2].read_bytes(), files[2].stat().st_ino
    assert dag.test(logical_date=starts[2] + dt.timedelta(days=1)).state == "success"
    assert files[2].read_bytes() == before[0]
    assert files[2].stat().st_ino != before[1]


def test_manual_runs_need_an_explicit_window(emu, airflow_db, out_dir, capsys):
    dag = _dag()

    failed = dag.test(logical_date=None)

    assert failed.state == "failed"
    assert failed.data_interval_start is None
    assert (
        "Cannot tell which referrals extract should read: this run has no data interval (a manual run "
        "without a logical date). Either schedule the DAG with CronDataIntervalTimetable"
    ) in capsys.readouterr().out
    assert emu.stats()["requests"].get("list", 0) == 0
    assert not out_dir.exists() or list(out_dir.iterdir()) == []

    start = midnight_today() - dt.timedelta(days=3, hours=-2)
    end = start + dt.timedelta(hours=30)
    conf = {"window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}

    run = dag.test(logical_date=None, run_conf=conf)

    assert run.state == "success"
    target = out_dir / f"referrals_{start:%Y%m%dT%H%M}.jsonl"
    manifest = run.get_task_instance("extract").xcom_pull(task_ids="extract")
    # An explicit window is read as given: no lookback.
    assert (manifest["window_start"], manifest["window_end"]) == (conf["window_start"], conf["window_end"])
    assert read_jsonl(target) == expected_referrals(emu, start, end)
