"""
The warehouse in PostgreSQL: ``load_referrals`` on the suite's cluster, then the example DAG
``referrals_warehouse_load`` on a LocalExecutor deployment whose connection
``partner_center_warehouse`` is a ``postgres`` connection to a database of its own.

Every assertion reads PostgreSQL itself (``psql``), the emulator's own data or Airflow's REST API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from system_checks import (
    LOOKBACK,
    api_instant,
    backfill_and_wait,
    parse_time,
    postgres_connection,
    psql_rows,
    record_figure,
    rerun_cleared,
)
from system_deployment import Airflow, EmulatorProcess, deployment

WAREHOUSE = "referrals_warehouse_load"
DAYS = 3
HERE = Path(__file__).resolve().parent


def test_load_referrals_on_postgres_latest_wins_in_one_transaction(
    system_venv: Path, system_root: Path, create_database: Callable[[str], str]
) -> None:
    url = create_database("warehouse_direct")
    work = system_root / "warehouse-direct"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AIRFLOW_HOME": str(work),
        "WAREHOUSE_CONN_ID": "warehouse_direct",
        "AIRFLOW_CONN_WAREHOUSE_DIRECT": json.dumps(postgres_connection(url)),
    }
    script = [str(system_venv / "bin" / "python"), str(HERE / "warehouse_on_postgres.py"), str(work)]
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])

    assert out["hook"] == "PostgresHook"
    for table in ("referrals", "analytics.referrals"):
        assert out[f"{table}:new"] == {"read": 2, "changed": 2, "rows": 2}
        # Older versions (b's 00:00:00Z is before its 00:00:00.5Z) change nothing.
        assert out[f"{table}:older"] == {"read": 2, "changed": 0, "rows": 2}
        # a newer; c twice in one statement: its newer version, once.
        assert out[f"{table}:newer_and_twice"] == {"read": 3, "changed": 2, "rows": 3}
    assert out["bad"] == (
        "line 4 of <folder>/bad.jsonl is not valid JSON (Expecting property name enclosed in double "
        "quotes); is this a JSONL referrals file (.jsonl or .jsonl.gz)?"
    )
    # The three statements before the bad line were rolled back: no r0..r2.
    # timestamptz columns (microseconds); raw_json keeps the referral as it came.
    assert out["rows"] == [
        ["a", "Closed", "2026-11-03T00:00:00.000000", 5.0, "jsonb", "Closed", "2026-11-03T00:00:00Z"],
        ["b", "New", "2026-11-02T00:00:00.500000", 5.0, "jsonb", "New", "2026-11-02T00:00:00.5Z"],
        ["c", "New", "2026-11-03T00:00:00.000000", 5.0, "jsonb", "New", "2026-11-03T00:00:00Z"],
    ]
    # 4 loads at once into a new table, each the same 40 ids (two orders): all succeed, taking
    # turns; whatever their order, the newest file's version of every row is what stays.
    results = out["concurrent"]["results"]
    assert all(isinstance(r, dict) for r in results), results
    assert [(r["read"], r["rows"]) for r in results] == [(40, 40)] * 4
    assert 40 <= sum(r["changed"] for r in results) <= 160
    assert out["race_rows"] == [["load3", 40]]
    assert out["followups"] == {
        "counts": [1, 2],
        "rows": [["a", "accepted"], ["b", "accepted"]],
        "sqlite_file": False,
    }
    assert out["as_timestamps"] == [
        ["a", "2026-11-03 00:00:00.000000"],
        ["b", "2026-11-02 00:00:00.500000"],
        ["c", "2026-11-03 00:00:00.000000"],
    ]
    assert out["schema_rows"] == [["a", "Closed"], ["b", "New"], ["c", "New"]]
    types = {name: (kind, collation) for name, kind, collation in out["types"]}
    assert types["updated_date_time"] == ("timestamp with time zone", None)
    assert types["created_date_time"] == ("timestamp with time zone", None)
    assert types["deal_value"] == ("double precision", None)
    assert types["raw_json"] == ("jsonb", None)
    assert list(types) == [
        "id",
        "status",
        "substatus",
        "type",
        "qualification",
        "direction",
        "customer_name",
        "country",
        "deal_value",
        "currency",
        "created_date_time",
        "updated_date_time",
        "raw_json",
    ]


@pytest.fixture(scope="module")
def warehouse_url(create_database: Callable[[str], str]) -> str:
    """The deployment's warehouse database on the suite's cluster."""
    return create_database("warehouse")


@pytest.fixture(scope="module")
def pg_warehouse_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    warehouse_url: str,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """LocalExecutor on PostgreSQL, with ``partner_center_warehouse`` pointing at ``warehouse``."""
    url = create_database("airflow_warehouse")
    extra = {"AIRFLOW_CONN_PARTNER_CENTER_WAREHOUSE": json.dumps(postgres_connection(warehouse_url))}
    with deployment(system_venv, system_root / "airflow-warehouse", url, emu, extra_env=extra) as airflow:
        yield airflow
        if request.session.testsfailed:
            print(f"\n===== Airflow logs (warehouse on PostgreSQL) =====\n{airflow.diagnostics()}")


def _table(url: str) -> dict[str, str]:
    """``id -> updatedDateTime`` as the API spelled it (the column holds it to the microsecond)."""
    sql = "SELECT id, raw_json->>'updatedDateTime' FROM referrals"
    return {row[0]: row[1] for row in psql_rows(url, sql)}


def _checksum(url: str) -> str:
    rows = psql_rows(url, "SELECT id, updated_date_time, raw_json::text FROM referrals ORDER BY id")
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@pytest.mark.timeout(600)
def test_the_example_dag_loads_postgres_and_a_rerun_changes_nothing(
    pg_warehouse_airflow: Airflow, emu: EmulatorProcess, warehouse_url: str
) -> None:
    airflow = pg_warehouse_airflow
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=DAYS + 1)
    runs, seconds = backfill_and_wait(airflow, WAREHOUSE, first, DAYS)

    # Ground truth: each id's newest updatedDateTime among the runs' windows (lookback included).
    referrals = emu.referrals()
    expected: dict[str, str] = {}
    for run in runs:
        start, end = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
        assert start is not None
        assert end is not None
        low, high = api_instant(start - LOOKBACK), api_instant(end)
        expected.update(
            {r["id"]: r["updatedDateTime"] for r in referrals if low <= r["updatedDateTime"] < high}
        )
        load = airflow.xcom(WAREHOUSE, run["dag_run_id"], "load_warehouse")
        assert load["dialect"] == "postgresql"
        assert load["read"] == load["written"] > 0
    assert _table(warehouse_url) == expected
    assert psql_rows(warehouse_url, "SELECT pg_typeof(raw_json)::text FROM referrals LIMIT 1") == [["jsonb"]]
    # The embedded SQLite default was not used.
    assert not (airflow.home / "data" / "warehouse.db").exists()

    middle = next(
        r
        for r in runs
        if r["run_type"] == "backfill"
        and r["data_interval_start"].startswith(f"{first + dt.timedelta(days=1):%Y-%m-%d}")
    )
    checksum = _checksum(warehouse_url)
    rerun_seconds = rerun_cleared(airflow, WAREHOUSE, middle["dag_run_id"])
    rerun = airflow.xcom(WAREHOUSE, middle["dag_run_id"], "load_warehouse")
    assert (rerun["changed"], rerun["rows"]) == (0, len(expected))
    assert _checksum(warehouse_url) == checksum
    record_figure(
        "warehouse_postgres",
        {
            "runs": len(runs),
            "seconds": round(seconds, 1),
            "rows": len(expected),
            "rerun_seconds": round(rerun_seconds, 1),
            "checksum_unchanged": True,
        },
    )
