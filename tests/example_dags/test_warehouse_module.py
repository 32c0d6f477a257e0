"""The warehouse load through a real Airflow SQLite connection: latest wins, no duplicates, atomic."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.examples.warehouse import example_warehouse_hook
from airflow_provider_partner.warehouse import (
    DUCKDB,
    MARIADB,
    POSTGRES,
    SQLITE,
    count_rows,
    create_table_sql,
    dialect_of,
    load_referrals,
    mysql,
    postgres,
    table_lock_sql,
    upsert_referrals,
    upsert_sql,
    warehouse_hook,
)
from airflow_provider_partner.warehouse.staging import on_conflict_sql

CONN_ID = "test_warehouse"
DOC = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"


def _ref(rid: str, updated: str, status: str = "New") -> dict[str, Any]:
    return {
        "id": rid,
        "status": status,
        "substatus": "Pending",
        "type": "Shared",
        "qualification": "SalesQualified",
        "direction": "Incoming",
        "createdDateTime": "2026-11-01T00:00:00Z",
        "updatedDateTime": updated,
        "customerProfile": {"name": "O'Brien & Søn ApS", "address": {"country": "DK"}},
        "details": {"dealValue": 1200, "currency": "DKK"},
    }


def _write(path: Path, records: list[dict[str, Any]], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite file behind the Airflow connection ``test_warehouse`` (as a user defines it)."""
    path = tmp_path / "wh" / "warehouse.db"
    path.parent.mkdir()
    connection = {"conn_type": "sqlite", "host": str(path)}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    return path


def _rows(db: Path, columns: str = "id, status, updated_date_time") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT {columns} FROM referrals ORDER BY id").fetchall()  # noqa: S608
    finally:
        conn.close()


def test_latest_updated_wins_and_nothing_duplicates(db: Path, tmp_path: Path) -> None:
    newer = _write(
        tmp_path / "b.jsonl",
        [_ref("a", "2026-11-02T00:00:00.0000000Z", "Active"), _ref("b", "2026-11-02T00:00:00.0000000Z")],
    )
    older = _write(tmp_path / "a.jsonl", [_ref("a", "2026-11-01T00:00:00.0000000Z", "New")])

    assert load_referrals(CONN_ID, newer) == {"read": 2, "changed": 2, "rows": 2}
    # An older version and a repeat of the same file change nothing.
    assert load_referrals(CONN_ID, older) == {"read": 1, "changed": 0, "rows": 2}
    assert load_referrals(CONN_ID, newer) == {"read": 2, "changed": 0, "rows": 2}
    # A newer one replaces the row.
    newest = _write(tmp_path / "c.jsonl", [_ref("a", "2026-11-03T00:00:00Z", "Closed")])
    assert load_referrals(CONN_ID, newest) == {"read": 1, "changed": 1, "rows": 2}

    assert _rows(db) == [
        ("a", "Closed", "2026-11-03T00:00:00.0000000Z"),
        ("b", "New", "2026-11-02T00:00:00.0000000Z"),
    ]
    columns = "customer_name, country, deal_value, currency, created_date_time, raw_json"
    (name, country, value, currency, created, raw) = _rows(db, columns)[0]
    assert (name, country, value, currency, created) == (
        "O'Brien & Søn ApS",
        "DK",
        1200.0,
        "DKK",
        "2026-11-01T00:00:00.0000000Z",
    )
    assert json.loads(raw) == _ref("a", "2026-11-03T00:00:00Z", "Closed")


def test_instants_compare_by_time_whatever_their_digits(db: Path, tmp_path: Path) -> None:
    # As text "...:00Z" sorts after "...:00.5Z"; as instants it is earlier.
    _write(tmp_path / "1.jsonl", [_ref("a", "2026-11-02T10:00:00.5Z", "Later")])
    _write(tmp_path / "2.jsonl", [_ref("a", "2026-11-02T10:00:00Z", "Earlier")])
    load_referrals(CONN_ID, tmp_path / "1.jsonl")
    assert load_referrals(CONN_ID, tmp_path / "2.jsonl")["changed"] == 0
    assert _rows(db) == [("a", "Later", "2026-11-02T10:00:00.5000000Z")]


def test_one_id_twice_in_a_file_keeps_its_newest(db: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "dup.jsonl",
        [
            _ref("a", "2026-11-02T00:00:00Z", "Second"),
            _ref("a", "2026-11-01T00:00:00Z", "First"),
            _ref("a", "2026-11-02T00:00:00Z", "Tie"),
        ],
    )
    assert load_referrals(CONN_ID, path) == {"read": 3, "changed": 1, "rows": 1}
    assert _rows(db) == [("a", "Second", "2026-11-02T00:00:00.0000000Z")]


def test_gzipped_jsonl_loads_the_same(db: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "day.jsonl.gz", [_ref("a", "2026-11-02T00:00:00Z")], gz=True)
    assert load_referrals(CONN_ID, path) == {"read": 1, "changed": 1, "rows": 1}


def test_a_failed_load_writes_nothing_even_after_some_chunks(db: Path, tmp_path: Path) -> None:
    first = _write(tmp_path / "ok.jsonl", [_ref("kept", "2026-11-01T00:00:00Z")])
    load_referrals(CONN_ID, first)
    bad = tmp_path / "bad.jsonl"
    good = [_ref(f"r{i}", "2026-11-02T00:00:00Z") for i in range(5)]
    bad.write_text("".join(json.dumps(r) + "\n" for r in good) + "{oops\n", encoding="utf-8")
    # Chunks of 2: two statements ran before line 6 failed; the rollback undoes them.
    with pytest.raises(ValueError, match=rf"line 6 of {bad} is not valid JSON"):
        load_referrals(CONN_ID, bad, batch_size=2)
    assert _rows(db, "id") == [("kept",)]


class _Recording:
    """A real sqlite3 cursor that notes, per statement, its rows and how much of the input was read."""

    def __init__(self, cursor: sqlite3.Cursor, width: int, consumed: list[int]) -> None:
        self.cursor, self.width, self.consumed = cursor, width, consumed
        self.statements: list[tuple[int, int]] = []

    def execute(self, sql: str, parameters: list[Any]) -> None:
        self.statements.append((len(parameters) // self.width, len(self.consumed)))
        self.cursor.execute(sql, parameters)

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


def test_rows_go_in_chunks_while_the_file_streams(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "w.db")
    conn.execute(create_table_sql(SQLITE))
    consumed: list[int] = []

    def referrals() -> Iterator[dict[str, Any]]:
        for i in range(5):
            consumed.append(i)
            yield _ref(f"r{i}", "2026-11-02T00:00:00Z")

    cursor = _Recording(conn.cursor(), 13, consumed)
    with pytest.deprecated_call(match="upsert_referrals is deprecated"):
        assert upsert_referrals(cursor, SQLITE, "?", referrals(), batch_size=2) == (5, 5)
    # (rows in the statement, referrals read so far): never more read than one chunk ahead.
    assert cursor.statements == [(2, 2), (2, 4), (1, 5)]
    conn.rollback()
    conn.close()


def test_the_staged_load_reads_one_chunk_ahead_at_most(db: Path) -> None:
    from airflow_provider_partner.warehouse.sqlite import SqliteTarget

    consumed: list[int] = []
    staged: list[tuple[int, int]] = []

    def referrals() -> Iterator[dict[str, Any]]:
        for i in range(5):
            consumed.append(i)
            yield _ref(f"r{i}", "2026-11-02T00:00:00Z")

    class Recording(SqliteTarget):
        def stage(self, cursor: Any, rows: Any) -> None:
            # (rows in the chunk, referrals read so far): the file is never read further ahead.
            staged.append((len(rows), len(consumed)))
            super().stage(cursor, rows)

    assert Recording(warehouse_hook(CONN_ID), "referrals").load(referrals(), batch_size=2) == (5, 5, 5)
    assert staged == [(2, 2), (2, 4), (1, 5)]


def test_raw_json_keeps_every_field_even_an_integer_beyond_64_bits(db: Path, tmp_path: Path) -> None:
    record = {**_ref("a", "2026-11-02T00:00:00Z"), "custom": {"big": 2**70, "text": "ø\t\\"}}
    load_referrals(CONN_ID, _write(tmp_path / "big.jsonl", [record]))
    assert json.loads(_rows(db, "raw_json")[0][0]) == record


def test_an_empty_file_changes_nothing(db: Path, tmp_path: Path) -> None:
    load_referrals(CONN_ID, _write(tmp_path / "a.jsonl", [_ref("a", "2026-11-02T00:00:00Z")]))
    empty = _write(tmp_path / "empty.jsonl", [])
    assert load_referrals(CONN_ID, empty) == {"read": 0, "changed": 0, "rows": 1}


def test_the_deprecated_upsert_stays_under_sqlites_parameter_limit() -> None:
    with pytest.deprecated_call(match="upsert_sql is deprecated"):
        assert upsert_sql(SQLITE, "?", 76).count("?") == 76 * 13
    with pytest.raises(ValueError, match="77 rows do not fit one sqlite statement"), pytest.deprecated_call():
        upsert_sql(SQLITE, "?", 77)


def test_the_dialects_differ_in_types_and_the_merge() -> None:
    assert "raw_json TEXT NOT NULL" in create_table_sql(SQLITE)
    assert "updated_date_time TIMESTAMPTZ NOT NULL" in create_table_sql(POSTGRES)
    assert "updated_date_time TIMESTAMP_NS NOT NULL" in create_table_sql(DUCKDB)
    assert create_table_sql(MARIADB).endswith(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
    sql = on_conflict_sql("analytics.referrals", postgres.NEWER)
    assert sql.startswith("INSERT INTO analytics.referrals (id, status,")
    assert "WHERE excluded.updated_date_time > referrals.updated_date_time\n    OR (" in sql
    assert [line.split(" ")[0] for line in mysql.merge_sql("referrals")[0].splitlines()[:1]] == ["UPDATE"]
    with pytest.raises(ValueError, match="table must be a plain name"):
        create_table_sql(SQLITE, "referrals; DROP TABLE x")
    with pytest.raises(ValueError, match="table must be a plain name"):
        count_rows(None, "referrals WHERE 1=1")
    # Loads of one PostgreSQL table take turns under one advisory lock per table, in every process.
    lock = table_lock_sql(POSTGRES, "analytics.referrals")
    key = zlib.crc32(b"airflow_provider_partner.warehouse:analytics.referrals")
    assert lock == f"SELECT pg_advisory_xact_lock({key})"
    assert table_lock_sql(POSTGRES, "referrals") != lock
    assert table_lock_sql(SQLITE, "referrals") is None


def test_the_connection_decides_the_hook_and_the_dialect(db: Path) -> None:
    hook = warehouse_hook(CONN_ID)
    assert (type(hook).__name__, dialect_of(hook)) == ("SqliteHook", SQLITE)


def test_a_connection_that_is_no_database_is_refused(partner_center_emulator: Any) -> None:
    with pytest.raises(TypeError, match="connection 'partner_center_default' gives a PartnerCenterHook"):
        warehouse_hook("partner_center_default")


def test_the_example_uses_its_connection_else_the_embedded_file(db: Path, tmp_path: Path) -> None:
    embedded = tmp_path / "embedded" / "warehouse.db"
    path = _write(tmp_path / "x.jsonl", [_ref("a", "2026-11-02T00:00:00Z")])
    load_referrals(example_warehouse_hook(CONN_ID, embedded), path)
    assert (_rows(db, "id"), embedded.exists()) == ([("a",)], False)

    hook = example_warehouse_hook("no_such_connection", embedded)
    assert load_referrals(hook, path) == {"read": 1, "changed": 1, "rows": 1}
    assert (_rows(embedded, "id"), dialect_of(hook)) == ([("a",)], SQLITE)


def test_the_docs_show_the_statements_the_code_runs() -> None:
    doc = DOC.read_text(encoding="utf-8")
    statements = [create_table_sql(dialect) for dialect in (SQLITE, POSTGRES, DUCKDB, MARIADB)]
    statements += [on_conflict_sql("referrals", postgres.NEWER), *mysql.merge_sql("referrals")]
    missing = [sql for sql in statements if f"```sql\n{sql}\n```" not in doc]
    assert missing == []


def test_other_databases_are_refused_by_name() -> None:
    from airflow_provider_partner.warehouse.schema import dialect_named

    message = "supports SQLite, PostgreSQL, DuckDB and MariaDB (MySQL), not 'mssql': use a sqlite,"
    with pytest.raises(ValueError, match=re.escape(message)):
        dialect_named("mssql")
    assert (dialect_named("mariadb"), dialect_named("postgres"), dialect_named("duckdb")) == (
        MARIADB,
        POSTGRES,
        DUCKDB,
    )


def test_stored_instants_read_back_as_sqlite_date_times(db: Path, tmp_path: Path) -> None:
    record = {**_ref("a", "2026-11-02T10:00:00.1234567Z"), "statusReason": "why"}
    load_referrals(CONN_ID, _write(tmp_path / "t.jsonl", [record]))
    columns = "datetime(updated_date_time), json_extract(raw_json, '$.statusReason')"
    assert _rows(db, columns) == [("2026-11-02 10:00:00", "why")]


def test_without_the_sqlite_provider_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partner.examples.warehouse import embedded_sqlite_hook

    monkeypatch.setitem(sys.modules, "airflow.providers.sqlite.hooks.sqlite", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'airflow-provider-partner\[sql\]'"):
        embedded_sqlite_hook(tmp_path / "w.db")


def test_follow_ups_go_to_the_same_warehouse_connection(db: Path, tmp_path: Path) -> None:
    from airflow_provider_partner.examples.followup import record_followups

    embedded = tmp_path / "embedded.db"
    done = {"id": "a", "outcome": "accepted", "attempts": 1, "status": "Active", "substatus": "Accepted"}
    assert record_followups([done], embedded, conn_id=CONN_ID) == 1
    # A rerun reports "skipped" for what it accepted before: the accepted row stays.
    again = {**done, "outcome": "skipped", "attempts": 1}
    other = {**done, "id": "b", "outcome": "conflict", "attempts": 2}
    assert record_followups([again, other], embedded, conn_id=CONN_ID) == 2
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, outcome, attempts FROM referral_followups ORDER BY id").fetchall()
    finally:
        conn.close()
    assert (rows, embedded.exists()) == ([("a", "accepted", 1), ("b", "conflict", 2)], False)


def test_the_docs_list_every_public_name() -> None:
    import airflow_provider_partner.warehouse as warehouse

    doc = DOC.read_text(encoding="utf-8")
    api = doc[doc.index("## API") : doc.index("## Where it is tested")]
    missing = [name for name in warehouse.__all__ if not re.search(rf"`{name}[`(]", api)]
    assert missing == []
