"""
The DuckDB target (``DuckDBHook``): each chunk read by DuckDB itself (``read_json`` of a local
chunk file) into a temporary table, then one upsert.

Date-times are ``TIMESTAMP_NS`` in UTC: the API's 100 ns are kept, so the comparison is exact.

DuckDB allows one writing process per database file (another process cannot open it while a
load runs: ``IOException: Could not set lock on file``). Within a process, loads of one table
take turns under a lock per database and table, since DuckDB's optimistic transactions would
fail one of two concurrent merges of the same rows with a conflict.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_partner.warehouse.schema import COLUMNS, DUCKDB
from airflow_provider_partner.warehouse.staging import (
    STAGE,
    STAGE_COLUMNS,
    StagedTarget,
    explicit_transaction,
    on_conflict_sql,
)

__all__ = ["DuckDBTarget"]

_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
# read_json's columns: the chunk file holds text for the date-times and the JSON (cast on insert).
_READ_TYPES = {column.name: "DOUBLE" if column.name == "deal_value" else "VARCHAR" for column in COLUMNS}
_READ_TYPES |= {"load_seq": "BIGINT", "updated_key": "VARCHAR"}
_READ = (
    f"INSERT INTO {STAGE} ({', '.join(STAGE_COLUMNS)}) SELECT {', '.join(STAGE_COLUMNS)} "  # noqa: S608
    "FROM read_json(?, format = 'newline_delimited', columns = "
    + "{"
    + ", ".join(f"'{name}': '{kind}'" for name, kind in _READ_TYPES.items())
    + "})"
)


def _table_lock(database: str, table: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((database, table), threading.Lock())


class DuckDBTarget(StagedTarget):
    """A load into DuckDB."""

    dialect = DUCKDB
    key_type = "VARCHAR"

    @contextmanager
    def session(self) -> Iterator[Any]:
        """The process's lock of the table, one connection, ``BEGIN``, the table created."""
        get_database = getattr(self.hook, "get_database", None)
        database = str(get_database()) if callable(get_database) else ""
        with (
            _table_lock(database, self.table),
            closing(self.hook.get_conn()) as conn,
            explicit_transaction(conn.execute, "BEGIN TRANSACTION"),
            tempfile.TemporaryDirectory(prefix="referrals-duckdb-") as folder,
        ):
            self._folder = Path(folder)
            self.create_table(conn)
            yield conn

    @staticmethod
    def instant(key: str) -> str:
        """``2026-11-01 10:00:00.1234567``: all 7 digits, which ``TIMESTAMP_NS`` holds."""
        return f"{key[:10]} {key[11:27]}"

    def stage(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """The chunk as a JSONL file of staged rows, read by DuckDB's ``read_json``."""
        import orjson

        path = self._folder / "chunk.jsonl"
        # orjson: json.dumps of the rows was a fifth of a load's time. The rows are flat (text,
        # a float, an int), which orjson writes as json did (but a NaN dealValue as null).
        with path.open("wb") as out:
            for row in rows:
                out.write(
                    orjson.dumps(dict(zip(STAGE_COLUMNS, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
                )
        cursor.execute(_READ, [str(path)])

    def apply(self, cursor: Any) -> int:
        """One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` newer (exact to the nanosecond)."""
        cursor.execute(on_conflict_sql(self.table, "excluded.updated_date_time > {t}.updated_date_time"))
        return int(cursor.fetchone()[0])
