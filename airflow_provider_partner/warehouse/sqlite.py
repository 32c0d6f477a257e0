"""
The SQLite target (``SqliteHook``): ``executemany`` into a temporary table, then one upsert.

SQLite has no date-time type: date-times stay in the API's 7-digit text
(``2026-11-01T10:00:00.1234567Z``), which SQLite's date functions read and which compares as
the instants do, at the API's full 100 ns. The table is the previous release's, unchanged.

Writers take turns: the transaction begins ``IMMEDIATE`` (the write lock first, so two loads
never both read and then deadlock upgrading), waiting up to :data:`BUSY_TIMEOUT_MS` for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from airflow_provider_partner.warehouse.schema import SQLITE
from airflow_provider_partner.warehouse.staging import (
    STAGE,
    StagedTarget,
    explicit_transaction,
    on_conflict_sql,
    stage_insert_sql,
)

__all__ = ["BUSY_TIMEOUT_MS", "SqliteTarget"]

#: How long a load waits for another writer of the file, in milliseconds.
BUSY_TIMEOUT_MS = 60_000
_INSERT = stage_insert_sql("?")


class SqliteTarget(StagedTarget):
    """A load into SQLite."""

    dialect = SQLITE

    @contextmanager
    def session(self) -> Iterator[Any]:
        """One connection in manual transaction mode, ``BEGIN IMMEDIATE``, the table created."""
        with closing(self.hook.get_conn()) as conn:
            conn.isolation_level = None  # the module's implicit BEGINs off: ours is explicit
            with closing(conn.cursor()) as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                with explicit_transaction(cursor.execute, "BEGIN IMMEDIATE"):
                    self.create_table(cursor)
                    yield cursor

    @staticmethod
    def instant(key: str) -> str:
        """The API's 7-digit text itself."""
        return key

    def create_stage(self, cursor: Any) -> None:
        """A ``TEMP`` table (in the connection's own temporary database)."""
        cursor.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
        super().create_stage(cursor)

    def stage(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """``executemany``: in-process, one prepared statement for the chunk."""
        cursor.executemany(_INSERT, rows)

    def apply(self, cursor: Any) -> int:
        """One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` newer (text compares as instants)."""
        cursor.execute(on_conflict_sql(self.table, "excluded.updated_date_time > {t}.updated_date_time"))
        return max(int(cursor.rowcount), 0)
