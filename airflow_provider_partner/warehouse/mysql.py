"""
The MariaDB target (``MySqlHook``, ``mysqlclient`` or ``mysql-connector-python``): batched
multi-row inserts into a temporary table, then ``UPDATE ... JOIN`` and ``INSERT ... SELECT ...
WHERE NOT EXISTS``.

Date-times are ``DATETIME(6)`` in UTC (1 µs): the API's 7th digit is truncated there (never
rounded) and kept in ``raw_json``, whose ``updatedDateTime`` decides between two versions of the
same microsecond (:data:`NEWER`).

Loads of one table take turns under a named lock (``GET_LOCK``, waiting up to
:data:`LOCK_TIMEOUT_S`), taken before ``CREATE TABLE`` (which commits implicitly in MariaDB) and
released after the commit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_partner.warehouse.schema import MARIADB, checked_table, column_names, table_key
from airflow_provider_partner.warehouse.staging import (
    STAGE,
    STAGE_COLUMNS,
    StagedTarget,
    newest_staged_sql,
    stage_insert_sql,
    stage_table_sql,
    tab_separated,
)

__all__ = ["LOCK_TIMEOUT_S", "NEWER", "MariaDBTarget", "sub_microsecond_sql"]

#: How long a load waits for another load of the same table, in seconds.
LOCK_TIMEOUT_S = 600
_INSERT = stage_insert_sql("%s")
_LOAD = f"LOAD DATA LOCAL INFILE %s INTO TABLE {STAGE} CHARACTER SET utf8mb4 ({', '.join(STAGE_COLUMNS)})"


def sub_microsecond_sql(row: str) -> str:
    """
    The 7th fractional digit of ``updatedDateTime`` in ``row``'s ``raw_json`` (``'0'`` if it has none).

    :param row: the alias of the table or of the staged rows.
    """
    fraction = f"REGEXP_SUBSTR(JSON_VALUE({row}.raw_json, '$.updatedDateTime'), '[.][0-9]+')"
    return f"SUBSTR(RPAD(COALESCE({fraction}, '.'), 8, '0'), 8, 1)"


#: Strictly newer, the staged row ``s`` against the table's ``t``.
NEWER = (
    "s.updated_date_time > t.updated_date_time\n"
    "    OR (s.updated_date_time = t.updated_date_time\n"
    f"        AND {sub_microsecond_sql('s')} > {sub_microsecond_sql('t')})"
)


def merge_sql(table: str) -> tuple[str, str]:
    """The ``UPDATE ... JOIN`` of newer versions, then the ``INSERT`` of new ids."""
    table = checked_table(table)
    names = column_names()
    updates = ",\n    ".join(f"t.{name} = s.{name}" for name in names[1:])
    update = (
        f"UPDATE {table} AS t JOIN (\n{newest_staged_sql()}\n) AS s ON t.id = s.id\n"
        f"SET {updates}\nWHERE {NEWER}"
    )
    insert = (
        f"INSERT INTO {table} ({', '.join(names)})\n"  # noqa: S608 - a checked name
        f"SELECT {', '.join(names)} FROM (\n{newest_staged_sql()}\n) AS s\n"
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.id = s.id)"
    )
    return update, insert


class MariaDBTarget(StagedTarget):
    """A load into MariaDB (or MySQL 8, untested)."""

    dialect = MARIADB
    key_type = "CHAR(28) CHARACTER SET ascii COLLATE ascii_bin"

    @contextmanager
    def session(self) -> Iterator[Any]:
        """``GET_LOCK``, ``CREATE TABLE`` (auto-committed), then one transaction; the lock released last."""
        lock = f"airflow_provider_partner.warehouse:{table_key(self.table)}"
        with (
            tempfile.TemporaryDirectory(prefix="referrals-mariadb-") as folder,
            closing(self.hook.get_conn()) as conn,
        ):
            self._chunk = Path(folder) / "chunk.tsv"
            self.hook.set_autocommit(conn, True)
            with closing(conn.cursor()) as cursor:
                cursor.execute("SELECT GET_LOCK(%s, %s)", (lock, LOCK_TIMEOUT_S))
                if cursor.fetchone()[0] != 1:
                    raise TimeoutError(
                        f"another load of {self.table} held its lock for {LOCK_TIMEOUT_S} s; retry later"
                    )
                try:
                    self.create_table(cursor)
                    self.hook.set_autocommit(conn, False)
                    try:
                        yield cursor
                        conn.commit()
                    except BaseException:
                        conn.rollback()
                        raise
                finally:
                    cursor.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                    cursor.fetchall()

    @staticmethod
    def instant(key: str) -> str:
        """Truncated to the microsecond, UTC (``2026-11-01 10:00:00.123456``)."""
        return f"{key[:10]} {key[11:26]}"

    def create_stage(self, cursor: Any) -> None:
        """A ``TEMPORARY`` InnoDB table (its rows roll back with the transaction)."""
        cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {STAGE}")
        cursor.execute(stage_table_sql(self.dialect, self.key_type, suffix=self.dialect.table_options))

    def drop_stage(self, cursor: Any) -> None:
        """``DROP TEMPORARY TABLE``, which does not end the transaction."""
        cursor.execute(f"DROP TEMPORARY TABLE {STAGE}")

    def stage(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """
        ``LOAD DATA LOCAL INFILE`` of a chunk file where the hook allows it (``MySqlHook(local_infile=True)``
        and the server's ``local_infile``), else ``executemany``, which both drivers send as
        multi-row ``INSERT`` statements.
        """
        if not getattr(self.hook, "local_infile", False):
            cursor.executemany(_INSERT, rows)
            return
        self._chunk.write_text(tab_separated(rows), encoding="utf-8")
        cursor.execute(_LOAD, (str(self._chunk),))

    def apply(self, cursor: Any) -> int:
        """The newer versions updated, then the new ids inserted; their affected rows."""
        changed = 0
        for statement in merge_sql(self.table):
            cursor.execute(statement)
            changed += max(cursor.rowcount, 0)
        return changed
