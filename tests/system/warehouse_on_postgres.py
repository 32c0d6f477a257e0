"""
Run by tests/system/test_warehouse_postgres.py with the system venv's Python (the provider's wheel,
the postgres provider, psycopg2): ``load_referrals`` against PostgreSQL through the connection
``$WAREHOUSE_CONN_ID``, step by step; prints one JSON object of what each step returned.

Usage: ``python warehouse_on_postgres.py <work folder>`` (the test compares the output exactly).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any


def _ref(rid: str, updated: str, status: str) -> dict[str, Any]:
    return {"id": rid, "status": status, "updatedDateTime": updated, "details": {"dealValue": 5}}


def _file(folder: Path, name: str, records: list[dict[str, Any]], tail: str = "") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def _concurrent_loads(conn_id: str, folder: Path, loads: int = 4) -> dict[str, Any]:
    """
    ``loads`` loads at once into a new table, each of the same 40 ids in another order, one row
    per statement: they would race in CREATE TABLE and deadlock without taking turns.
    """
    from airflow_provider_partner.warehouse import load_referrals

    ids = [f"x{i:02d}" for i in range(40)]
    barrier = threading.Barrier(loads)
    results: dict[int, Any] = {}

    def load(number: int) -> None:
        order = ids if number % 2 else ids[::-1]
        stamp = f"2026-11-05T00:00:0{number}Z"
        path = _file(folder, f"race{number}.jsonl", [_ref(i, stamp, f"load{number}") for i in order])
        barrier.wait(timeout=30)
        try:
            results[number] = load_referrals(conn_id, path, "race.referrals", batch_size=1)
        except Exception as err:  # noqa: BLE001 - reported to the test
            results[number] = f"{type(err).__name__}: {err}"

    threads = [threading.Thread(target=load, args=(n,)) for n in range(loads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return {"results": [results.get(n) for n in range(loads)]}


def _followups(conn_id: str, folder: Path) -> dict[str, Any]:
    """The follow-up DAGs' outcomes through the same connection: an accepted row is never replaced."""
    from airflow_provider_partner.examples.followup import record_followups
    from airflow_provider_partner.warehouse import warehouse_hook

    done = {"id": "a", "outcome": "accepted", "attempts": 1, "status": "Active", "substatus": "Accepted"}
    first = record_followups([done], folder / "unused.db", conn_id=conn_id)
    second = record_followups(
        [{**done, "outcome": "skipped"}, {**done, "id": "b"}], folder / "unused.db", conn_id
    )
    rows = warehouse_hook(conn_id).get_records("SELECT id, outcome FROM referral_followups ORDER BY id")
    return {"counts": [first, second], "rows": rows, "sqlite_file": (folder / "unused.db").exists()}


def main(folder: Path) -> dict[str, Any]:
    from airflow_provider_partner.warehouse import load_referrals, warehouse_hook

    conn_id = os.environ["WAREHOUSE_CONN_ID"]
    hook = warehouse_hook(conn_id)
    out: dict[str, Any] = {"hook": type(hook).__name__}
    hook.run("CREATE SCHEMA IF NOT EXISTS analytics")
    hook.run("CREATE SCHEMA IF NOT EXISTS race")
    steps = {
        "new": [_ref("a", "2026-11-02T00:00:00Z", "Active"), _ref("b", "2026-11-02T00:00:00.5Z", "New")],
        "older": [_ref("a", "2026-11-01T00:00:00Z", "New"), _ref("b", "2026-11-02T00:00:00Z", "Old")],
        "newer_and_twice": [
            _ref("a", "2026-11-03T00:00:00Z", "Closed"),
            _ref("c", "2026-11-03T00:00:00Z", "New"),
            _ref("c", "2026-11-01T00:00:00Z", "Stale"),
        ],
    }
    for table in ("referrals", "analytics.referrals"):
        for step, records in steps.items():
            out[f"{table}:{step}"] = load_referrals(conn_id, _file(folder, f"{step}.jsonl", records), table)
    out["concurrent"] = _concurrent_loads(conn_id, folder)
    out["followups"] = _followups(conn_id, folder)
    bad = _file(folder, "bad.jsonl", [_ref(f"r{i}", "2026-11-04T00:00:00Z", "New") for i in range(3)], "{x\n")
    try:
        load_referrals(hook, bad, batch_size=1)
    except ValueError as err:
        out["bad"] = str(err).replace(str(folder), "<folder>")
    out["rows"] = hook.get_records(
        "SELECT id, status, to_char(updated_date_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
        "deal_value, pg_typeof(raw_json)::text, raw_json->>'status', raw_json->>'updatedDateTime' "
        "FROM referrals ORDER BY id"
    )
    out["as_timestamps"] = hook.get_records(
        "SELECT id, to_char(updated_date_time::timestamptz AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS.US') FROM referrals ORDER BY id"
    )
    out["race_rows"] = hook.get_records("SELECT status, COUNT(*) FROM race.referrals GROUP BY status")
    out["schema_rows"] = hook.get_records("SELECT id, status FROM analytics.referrals ORDER BY id")
    out["types"] = hook.get_records(
        "SELECT column_name, data_type, collation_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'referrals' ORDER BY ordinal_position"
    )
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=list))
