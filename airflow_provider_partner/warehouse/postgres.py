"""
The PostgreSQL target (``PostgresHook``): ``COPY ... FROM STDIN`` into a temporary table, then one upsert.

Date-times are ``TIMESTAMPTZ`` (1 µs): the API's 7th digit is truncated there (never rounded, so
the order of two instants is kept) and kept in ``raw_json``; when two versions fall in the same
microsecond, the 7th digit of their ``updatedDateTime`` in ``raw_json`` decides
(:data:`NEWER`), so a row is replaced only by a strictly newer version.

Loads of one table take turns under a transaction-level advisory lock
(:func:`~airflow_provider_partner.warehouse.schema.table_lock_sql`). A table of the previous
release (text date-times) is refused with the ``ALTER TABLE`` that migrates it
(:func:`migration_sql`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from airflow_provider_partner.warehouse.schema import POSTGRES, checked_table, table_lock_sql
from airflow_provider_partner.warehouse.staging import (
    STAGE,
    STAGE_COLUMNS,
    StagedTarget,
    on_conflict_sql,
    tab_separated,
)

__all__ = ["NEWER", "PostgresTarget", "migration_sql", "sub_microsecond_sql"]

_COPY = f"COPY {STAGE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN"


def sub_microsecond_sql(row: str) -> str:
    """
    The 7th fractional digit of ``updatedDateTime`` in ``row``'s ``raw_json`` (``'0'`` if it has none).

    :param row: ``excluded`` or the table's name.
    """
    fraction = f"substring({row}.raw_json->>'updatedDateTime' from '[.][0-9]+')"
    return f"substr(rpad(coalesce({fraction}, '.'), 8, '0'), 8, 1)"


#: Strictly newer: a later microsecond, or the same one and a greater 7th digit.
NEWER = (
    "excluded.updated_date_time > {t}.updated_date_time\n"
    "    OR (excluded.updated_date_time = {t}.updated_date_time\n"
    f"        AND {sub_microsecond_sql('excluded')} > {sub_microsecond_sql('{t}')})"
)


def migration_sql(table: str) -> str:
    """
    The ``ALTER TABLE`` that turns the previous release's text date-times into ``TIMESTAMPTZ``.

    Its texts are all ``YYYY-MM-DDTHH:MM:SS.fffffffZ``: cut to 6 digits before the cast, which
    would round the 7th (a rounded-up row would then refuse a newer version of its microsecond).
    """
    cast = "TYPE TIMESTAMPTZ USING (left({0}, 26) || 'Z')::timestamptz"
    return (
        f"ALTER TABLE {checked_table(table)} "
        f"ALTER COLUMN created_date_time {cast.format('created_date_time')}, "
        f"ALTER COLUMN updated_date_time {cast.format('updated_date_time')}"
    )


class PostgresTarget(StagedTarget):
    """A load into PostgreSQL."""

    dialect = POSTGRES
    key_type = 'TEXT COLLATE "C"'

    @contextmanager
    def session(self) -> Iterator[Any]:
        """One connection, one transaction: the table's advisory lock, then the table created and checked."""
        with closing(self.hook.get_conn()) as conn:
            self.hook.set_autocommit(conn, False)
            try:
                with closing(conn.cursor()) as cursor:
                    cursor.execute(table_lock_sql(POSTGRES, self.table))
                    self.create_table(cursor)
                    self._check_columns(cursor)
                    yield cursor
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _check_columns(self, cursor: Any) -> None:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = 'updated_date_time'",
            (self.table,),
        )
        found = cursor.fetchone()
        if found and found[0] != "timestamp with time zone":
            raise ValueError(
                f"{self.table}.updated_date_time is {found[0]}, a table of an earlier release of "
                "airflow-provider-partner (date-times as text); migrate it once with: "
                f"{migration_sql(self.table)}"
            )

    @staticmethod
    def instant(key: str) -> str:
        """Truncated to the microsecond (``2026-11-01T10:00:00.123456Z``)."""
        return key[:26] + "Z"

    def create_stage(self, cursor: Any) -> None:
        """A ``TEMPORARY`` table dropped at the commit, bytewise ``updated_key``."""
        cursor.execute(
            f"CREATE TEMPORARY TABLE {STAGE} (LIKE {self.table} EXCLUDING ALL, "
            f'load_seq BIGINT NOT NULL, updated_key TEXT COLLATE "C" NOT NULL) ON COMMIT DROP'
        )

    def drop_stage(self, cursor: Any) -> None:
        """Nothing: ``ON COMMIT DROP``."""

    def stage(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """``COPY FROM STDIN`` in the text format (psycopg2's ``copy_expert`` or psycopg 3's ``copy``)."""
        data = tab_separated(rows)
        if hasattr(cursor, "copy_expert"):
            cursor.copy_expert(_COPY, io.StringIO(data))
        else:
            with cursor.copy(_COPY) as copy:
                copy.write(data)

    def apply(self, cursor: Any) -> int:
        """One ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` strictly newer (:data:`NEWER`)."""
        cursor.execute(on_conflict_sql(self.table, NEWER))
        return max(int(cursor.rowcount), 0)
