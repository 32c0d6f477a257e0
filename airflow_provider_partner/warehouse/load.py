"""
Loading the operator's JSONL output into a SQL database: the entry point and its dispatcher.

:func:`load_referrals` picks the target module by the hook's dialect (``sqlite``, ``postgres``,
``duckdb``, ``mysql``), which stages the streamed file and merges it in one transaction on one
connection (:mod:`~airflow_provider_partner.warehouse.staging`): a bad line, a lost connection
or a killed task leaves the table as it was.
"""

from __future__ import annotations

import gzip
import json
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_partner.warehouse.duckdb import DuckDBTarget
from airflow_provider_partner.warehouse.mysql import MariaDBTarget
from airflow_provider_partner.warehouse.postgres import PostgresTarget
from airflow_provider_partner.warehouse.schema import (
    DUCKDB,
    MARIADB,
    POSTGRES,
    SQLITE,
    Dialect,
    column_names,
    dialect_named,
    referral_row,
    rows_per_statement,
    table_lock_sql,
    upsert_sql,
)
from airflow_provider_partner.warehouse.sqlite import BUSY_TIMEOUT_MS, SqliteTarget
from airflow_provider_partner.warehouse.staging import StagedTarget, count_rows

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "LoadResult",
    "count_rows",
    "dialect_of",
    "load_referrals",
    "read_referrals",
    "transaction",
    "upsert_referrals",
    "warehouse_hook",
]

log = logging.getLogger(__name__)

#: Rows per staged chunk (one ``COPY``, ``read_json``, ``executemany``): what a load holds in memory.
DEFAULT_BATCH_SIZE = 2000
_TARGETS: Mapping[Dialect, type[StagedTarget]] = {
    SQLITE: SqliteTarget,
    POSTGRES: PostgresTarget,
    DUCKDB: DuckDBTarget,
    MARIADB: MariaDBTarget,
}
_ID, _UPDATED = column_names().index("id"), column_names().index("updated_date_time")


class LoadResult(TypedDict):
    """What one load did."""

    #: referrals read from the file
    read: int
    #: rows inserted or replaced (a referral not newer than its row changes nothing)
    changed: int
    #: rows in the table after the load
    rows: int


def warehouse_hook(conn_id: str) -> DbApiHook:
    """
    The ``DbApiHook`` of an Airflow connection (``sqlite``, ``postgres``, ...).

    :param conn_id: the connection's id.
    :raises TypeError: if the connection's hook is not a SQL (``DbApiHook``) hook.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(conn_id).get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise TypeError(
            f"connection {conn_id!r} gives a {type(hook).__name__}, not a SQL hook (DbApiHook): "
            "use a sqlite, postgres, duckdb or mysql connection"
        )
    return hook


def dialect_of(hook: DbApiHook) -> Dialect:
    """
    The warehouse dialect of a hook, from its SQLAlchemy dialect name or its connection type.

    :param hook: a ``DbApiHook``.
    :raises ValueError: for a database other than SQLite, PostgreSQL, DuckDB or MariaDB (MySQL).
    """
    name = getattr(hook, "dialect_name", None) or getattr(hook, "conn_type", None) or ""
    return dialect_named(str(name))


def read_referrals(path: Any) -> Iterator[dict[str, Any]]:
    """
    The referrals of a JSONL file (``.jsonl``, or ``.jsonl.gz`` by its name), one at a time.

    :param path: a local path or an ``ObjectStoragePath`` (anything with ``open``).
    :raises ValueError: at a line that is not JSON, naming it; the lines before were yielded.
    """
    source = path if hasattr(path, "open") else Path(path)
    with source.open("rb") as raw:
        gzipped = str(path).endswith(".gz")
        with gzip.GzipFile(fileobj=raw) if gzipped else nullcontext(raw) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield _parsed(line)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f"line {number} of {path} is not valid JSON ({err.msg}); "
                        "is this a JSONL referrals file (.jsonl or .jsonl.gz)?"
                    ) from None


# Every digit as "0": a run of 19 of them may be an integer beyond 64 bits, which orjson reads
# as a float (raw_json would then differ from the file); json reads it exactly.
_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19


def _parsed(line: bytes) -> Any:
    """
    One JSON line: orjson (half of json's time), or json for what orjson reads differently.

    json also reads a line orjson refuses, so the error (its message) and the values (``NaN``)
    are json's, as they were before orjson.
    """
    import orjson

    if _LONG_NUMBER not in line.translate(_DIGITS):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    return json.loads(line.decode("utf-8"))


def _chunks(referrals: Iterable[Mapping[str, Any]], size: int) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """``(records read, rows)`` per chunk; each id once per chunk, its newest version."""
    read = 0
    chunk: dict[str, tuple[Any, ...]] = {}
    for referral in referrals:
        row = referral_row(referral)
        read += 1
        # PostgreSQL refuses to update one row twice in a statement; the newer one wins, as the
        # statement itself would decide (an equal one changes nothing, so the first stays).
        held = chunk.get(row[_ID])
        if held is None or row[_UPDATED] > held[_UPDATED]:
            chunk[row[_ID]] = row
        if len(chunk) >= size:
            yield read, list(chunk.values())
            read, chunk = 0, {}
    if chunk or read:
        yield read, list(chunk.values())


def upsert_referrals(
    cursor: Any,
    dialect: Dialect,
    placeholder: str,
    referrals: Iterable[Mapping[str, Any]],
    table: str = "referrals",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[int, int]:
    """
    Deprecated: the previous release's upsert of multi-row ``VALUES`` on a cursor (SQLite's text columns).

    :func:`load_referrals` stages and merges on every target; this one commits nothing (the
    caller's transaction) and writes 7-digit text date-times, as the previous release did.

    :param cursor: a DB-API cursor of a database of ``dialect`` whose table exists.
    :param dialect: :data:`~airflow_provider_partner.warehouse.schema.SQLITE` or ``POSTGRES``.
    :param placeholder: the driver's positional placeholder (``hook.placeholder``).
    :param referrals: referrals as the API returns them (streamed: any iterable).
    :param table: the table's name.
    :param batch_size: rows per statement at most.
    :return: ``(records read, rows inserted or replaced)``.
    """
    warnings.warn(
        "upsert_referrals is deprecated: load_referrals stages and merges each load (docs/warehouse.md)",
        DeprecationWarning,
        stacklevel=2,
    )
    size = rows_per_statement(dialect, batch_size)
    statements: dict[int, str] = {}
    read = changed = 0
    for chunk_read, rows in _chunks(referrals, size):
        read += chunk_read
        if not rows:
            continue
        if len(rows) not in statements:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                statements[len(rows)] = upsert_sql(dialect, placeholder, len(rows), table)
        sql = statements[len(rows)]
        cursor.execute(sql, [value for row in rows for value in row])
        # One statement: its rowcount counts inserted and updated rows, not the skipped ones.
        changed += max(cursor.rowcount, 0)
    return read, changed


@contextmanager
def transaction(hook: DbApiHook, table: str | None = None) -> Iterator[tuple[Any, Dialect]]:
    """
    A cursor in one transaction of ``hook``'s database: committed at the end, rolled back on any error.

    On SQLite the connection waits for another writer instead of failing at once; with ``table``,
    on PostgreSQL the transaction first takes the table's advisory lock (:func:`table_lock_sql`),
    so that writers of one table take turns.

    :param hook: a ``DbApiHook`` of a SQLite or PostgreSQL database.
    :param table: the table the transaction writes, to take turns with its other writers.
    :return: a context manager of ``(cursor, dialect)``.
    """
    dialect = dialect_of(hook)
    with closing(hook.get_conn()) as conn:
        if getattr(hook, "supports_autocommit", False):
            hook.set_autocommit(conn, False)
        try:
            with closing(conn.cursor()) as cursor:
                if dialect is SQLITE:
                    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                lock = table_lock_sql(dialect, table) if table else None
                if lock:  # writers of one table take turns: no DDL race, no deadlock
                    cursor.execute(lock)
                yield cursor, dialect
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def load_referrals(
    hook: DbApiHook | str,
    path: Any,
    table: str = "referrals",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> LoadResult:
    """
    Merge one JSONL referrals file into a SQL table, creating the table if needed.

    Each referral is one row keyed by ``id``; only a strictly newer ``updatedDateTime`` replaces
    the row, so loading a file twice, or overlapping files in any order, never duplicates or
    regresses a row. The file is streamed in chunks into a temporary staging table on one
    connection and merged by one conditional statement (two on MariaDB), all in one transaction:
    on any error nothing is written. Concurrent loads of one table take turns (PostgreSQL: an
    advisory lock; MariaDB: ``GET_LOCK``; SQLite: ``BEGIN IMMEDIATE``; DuckDB: a lock in the
    process, one writing process per file). ``docs/warehouse.md`` has each target's details.

    :param hook: a ``SqliteHook``, ``PostgresHook``, ``DuckDBHook`` or ``MySqlHook`` (MariaDB),
        or the id of its connection.
    :param path: the operator's JSONL (or JSONL.gz) output: a local path or an ``ObjectStoragePath``.
    :param table: the table's name, optionally schema-qualified (created if it does not exist).
    :param batch_size: rows per staged chunk (what the load holds in memory).
    :return: ``{"read", "changed", "rows"}`` (:class:`LoadResult`).
    :raises ValueError: for another database, a line that is not JSON, a referral without ``id``
        or ``updatedDateTime``, or a PostgreSQL table of an earlier release (the message has the
        ``ALTER TABLE`` that migrates it).
    """
    db_hook = warehouse_hook(hook) if isinstance(hook, str) else hook
    dialect = dialect_of(db_hook)
    target = _TARGETS[dialect](db_hook, table)
    read, changed, rows = target.load(read_referrals(path), batch_size)
    log.info(
        "Loaded %s into %s (%s): %d referrals read, %d rows inserted or updated, %d rows in the table",
        path,
        table,
        dialect.name,
        read,
        changed,
        rows,
    )
    return {"read": read, "changed": changed, "rows": rows}
