"""Tables created by the previous release (date-times as text): PostgreSQL refuses them with the
ALTER TABLE that migrates them; SQLite's are the same table and keep loading. And DuckDB's one
writing process per file, as the docs say."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_partner.warehouse import load_referrals, warehouse_hook
from warehouse.referral_files import write_jsonl
from warehouse.servers import airflow_connection_env, postgres_connection
from warehouse.targets import Warehouse

# The previous release's DDL, as it wrote it.
_COLUMNS = (
    "id TEXT PRIMARY KEY, status TEXT, substatus TEXT, type TEXT, qualification TEXT, direction TEXT, "
    "customer_name TEXT, country TEXT, deal_value {real}, currency TEXT, created_date_time TEXT, "
    "updated_date_time TEXT{collate} NOT NULL, raw_json {json} NOT NULL"
)
_C = ' COLLATE "C"'
_OLD_PG_COLUMNS = _COLUMNS.format(real="DOUBLE PRECISION", collate=_C, json="JSONB")
OLD_POSTGRES = f"CREATE TABLE referrals ({_OLD_PG_COLUMNS})"
OLD_SQLITE = "CREATE TABLE referrals (" + _COLUMNS.format(real="REAL", collate="", json="TEXT") + ")"
OLD_ROW = (
    "INSERT INTO referrals (id, status, created_date_time, updated_date_time, raw_json) VALUES "
    "('a', 'Old', '2026-11-01T00:00:00.0000000Z', '2026-11-02T10:00:00.1234567Z', '{raw}')"
)


def _version(digit: int, status: str) -> dict[str, object]:
    return {
        "id": "a",
        "status": status,
        "createdDateTime": "2026-11-01T00:00:00Z",
        "updatedDateTime": f"2026-11-02T10:00:00.123456{digit}Z",
    }


def test_a_previous_release_postgres_table_is_refused_with_its_migration(
    postgres: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = f"legacy_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv(*airflow_connection_env(conn_id, postgres_connection(postgres(conn_id))))
    warehouse = Warehouse("postgres", conn_id)
    raw = json.dumps(_version(7, "Old"))
    for sql in (OLD_POSTGRES, OLD_ROW.format(raw=raw)):
        warehouse.records(sql, fetch=False)
    newer = write_jsonl(tmp_path / "newer.jsonl", [_version(9, "Newer")])

    with pytest.raises(ValueError, match="earlier release") as refused:
        load_referrals(conn_id, newer)
    message = str(refused.value)
    assert message == (
        "referrals.updated_date_time is text, a table of an earlier release of airflow-provider-partner "
        "(date-times as text); migrate it once with: ALTER TABLE referrals "
        "ALTER COLUMN created_date_time TYPE TIMESTAMPTZ "
        "USING (left(created_date_time, 26) || 'Z')::timestamptz, "
        "ALTER COLUMN updated_date_time TYPE TIMESTAMPTZ "
        "USING (left(updated_date_time, 26) || 'Z')::timestamptz"
    )
    assert warehouse.records("SELECT id, status, updated_date_time FROM referrals") == [
        ("a", "Old", "2026-11-02T10:00:00.1234567Z")
    ]

    migration = re.search(r"with: (ALTER TABLE .*)$", message)
    assert migration is not None
    warehouse.records(migration.group(1), fetch=False)
    # The migrated row keeps its 7th digit in raw_json: an older 100 ns loses, a newer one wins.
    older = write_jsonl(tmp_path / "older.jsonl", [_version(5, "Older")])
    assert load_referrals(conn_id, older) == {"read": 1, "changed": 0, "rows": 1}
    assert load_referrals(conn_id, newer) == {"read": 1, "changed": 1, "rows": 1}
    assert warehouse.table() == {"a": ("Newer", "2026-11-02T10:00:00.123456", "2026-11-01T00:00:00.000000")}
    assert warehouse.types()["updated_date_time"] == "timestamp with time zone"


def test_a_previous_release_sqlite_table_keeps_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(OLD_SQLITE)
        conn.execute(OLD_ROW.format(raw=json.dumps(_version(7, "Old"))))
    conn.close()
    monkeypatch.setenv(*airflow_connection_env("legacy_sqlite", {"conn_type": "sqlite", "host": str(db)}))
    older = write_jsonl(tmp_path / "older.jsonl", [_version(5, "Older")])
    newer = write_jsonl(tmp_path / "newer.jsonl", [_version(9, "Newer"), {**_version(0, "B"), "id": "b"}])
    assert load_referrals("legacy_sqlite", older) == {"read": 1, "changed": 0, "rows": 1}
    assert load_referrals("legacy_sqlite", newer) == {"read": 2, "changed": 2, "rows": 2}
    assert Warehouse("sqlite", "legacy_sqlite").table() == {
        "a": ("Newer", "2026-11-02T10:00:00.1234569", "2026-11-01T00:00:00.0000000"),
        "b": ("B", "2026-11-02T10:00:00.1234560", "2026-11-01T00:00:00.0000000"),
    }


def test_a_duckdb_file_has_one_writing_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/warehouse.md says of DuckDB: while a load holds the file, another process cannot open it."""
    import subprocess
    import sys

    from airflow_provider_partner.warehouse.duckdb import DuckDBTarget

    path = tmp_path / "w.duckdb"
    monkeypatch.setenv(*airflow_connection_env("one_writer", {"conn_type": "duckdb", "host": str(path)}))
    probe = (
        f"import duckdb\ntry:\n    duckdb.connect({str(path)!r})\nexcept Exception as err:\n    print(err)"
    )
    target = DuckDBTarget(warehouse_hook("one_writer"), "referrals")
    with target.session():
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "Could not set lock on file" in other.stdout, other.stdout + other.stderr
    # Once the load is done, the next process's load goes ahead.
    newer = write_jsonl(tmp_path / "a.jsonl", [_version(9, "Newer")])
    assert load_referrals("one_writer", newer) == {"read": 1, "changed": 1, "rows": 1}
