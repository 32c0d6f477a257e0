"""
The ``referrals`` table: its columns and their types, its DDL and the lock of its loads, per database.

One row per referral, keyed by ``id``. The flat columns (:func:`column_names`) are the same on
every target (the Delta Lake target mirrors them); only their types differ:

- date-times: ``TIMESTAMPTZ`` (PostgreSQL, 1 µs), ``TIMESTAMP_NS`` (DuckDB, UTC, 1 ns: the API's
  100 ns kept), ``DATETIME(6)`` (MariaDB, UTC, 1 µs), and on SQLite, which has no date-time type,
  the API's own 7-digit text (``2026-11-01T10:00:00.1234567Z``,
  :func:`airflow_provider_partner.instants.sort_key`), which compares as the instants do;
- the whole referral as ``JSONB`` (PostgreSQL), ``JSON`` (DuckDB, MariaDB) or JSON text (SQLite).

Where a column holds microseconds, the 7th digit is kept in ``raw_json`` and breaks ties, so a
row is still replaced only by a strictly newer ``updatedDateTime`` (see the target modules).

Pure: no IO, no Airflow import.
"""

from __future__ import annotations

import json
import re
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_partner.instants import sort_key

__all__ = [
    "COLUMNS",
    "DIALECTS",
    "DUCKDB",
    "MARIADB",
    "POSTGRES",
    "SQLITE",
    "Column",
    "Dialect",
    "checked_table",
    "column_names",
    "create_table_sql",
    "dialect_named",
    "referral_row",
    "rows_per_statement",
    "table_lock_sql",
    "upsert_sql",
]


@dataclass(frozen=True)
class Column:
    """
    One column of the ``referrals`` table.

    :param name: the column's name.
    :param sqlite: its type (and constraints) on SQLite.
    :param postgres: its type (and constraints) on PostgreSQL.
    :param source: where its value comes from in the API's Referral (documentation only).
    :param duckdb: its type (and constraints) on DuckDB.
    :param mysql: its type (and constraints) on MariaDB (and MySQL).
    """

    name: str
    sqlite: str
    postgres: str
    source: str
    duckdb: str = ""
    mysql: str = ""


def _text(name: str, source: str) -> Column:
    return Column(name, "TEXT", "TEXT", source, "VARCHAR", "TEXT")


COLUMNS: tuple[Column, ...] = (
    # MariaDB keys need a length; the table's binary collation compares ids byte for byte.
    Column(
        "id", "TEXT PRIMARY KEY", "TEXT PRIMARY KEY", "id", "VARCHAR PRIMARY KEY", "VARCHAR(255) PRIMARY KEY"
    ),
    _text("status", "status"),
    _text("substatus", "substatus"),
    _text("type", "type"),
    _text("qualification", "qualification"),
    _text("direction", "direction"),
    _text("customer_name", "customerProfile.name"),
    _text("country", "customerProfile.address.country"),
    Column("deal_value", "REAL", "DOUBLE PRECISION", "details.dealValue", "DOUBLE", "DOUBLE"),
    _text("currency", "details.currency"),
    Column("created_date_time", "TEXT", "TIMESTAMPTZ", "createdDateTime", "TIMESTAMP_NS", "DATETIME(6)"),
    Column(
        "updated_date_time",
        "TEXT NOT NULL",
        "TIMESTAMPTZ NOT NULL",
        "updatedDateTime",
        "TIMESTAMP_NS NOT NULL",
        "DATETIME(6) NOT NULL",
    ),
    Column(
        "raw_json", "TEXT NOT NULL", "JSONB NOT NULL", "the whole referral", "JSON NOT NULL", "JSON NOT NULL"
    ),
)

_NAMES = tuple(column.name for column in COLUMNS)
# A table name, optionally schema-qualified: plain identifiers only, since it is put in the SQL.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Dialect:
    """
    What differs between the databases the loader writes to.

    :param name: the dialect's name (SQLAlchemy's: ``sqlite``, ``postgresql``, ``duckdb``, ``mysql``).
    :param max_parameters: bound parameters one statement may carry (the deprecated multi-row
        ``VALUES`` upsert of :func:`upsert_sql` is sized to stay under it).
    :param json_value: the SQL expression of the ``raw_json`` value around its placeholder.
    :param table_lock: the statement that makes loads of one table wait for each other until
        their transactions end (``{key}``: a number per table); empty where the database does
        that by itself (SQLite) or the target module takes another lock (DuckDB, MariaDB).
    :param column_field: the :class:`Column` field holding this dialect's types.
    :param table_options: what follows the column list in ``CREATE TABLE``.
    """

    name: str
    max_parameters: int
    json_value: str = "{}"
    table_lock: str = ""
    column_field: str = "sqlite"
    table_options: str = ""

    def column_type(self, column: Column) -> str:
        """The column's type and constraints in this dialect."""
        return str(getattr(column, self.column_field))


# 999 is SQLite's limit before 3.32 (32,766 since); PostgreSQL's protocol allows 65,535.
SQLITE = Dialect("sqlite", max_parameters=999)
# Concurrent loads of one PostgreSQL table would race in CREATE TABLE IF NOT EXISTS (a unique
# violation in pg_type) and could deadlock on overlapping ids in different orders.
POSTGRES = Dialect(
    "postgresql",
    max_parameters=65_535,
    json_value="CAST({} AS JSONB)",
    table_lock="SELECT pg_advisory_xact_lock({key})",
    column_field="postgres",
)
DUCKDB = Dialect("duckdb", max_parameters=65_535, column_field="duckdb")
# utf8mb4_bin: text compares byte for byte (ids are case-sensitive elsewhere too).
MARIADB = Dialect(
    "mysql",
    max_parameters=65_535,
    column_field="mysql",
    table_options=" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
)
DIALECTS: Mapping[str, Dialect] = {
    "sqlite": SQLITE,
    "postgresql": POSTGRES,
    "postgres": POSTGRES,
    "duckdb": DUCKDB,
    "mysql": MARIADB,
    "mariadb": MARIADB,
}
#: The databases :func:`dialect_named` accepts, for messages.
SUPPORTED = "SQLite, PostgreSQL, DuckDB and MariaDB (MySQL)"


def dialect_named(name: str) -> Dialect:
    """
    The dialect of that name (``sqlite``, ``postgresql``/``postgres``, ``duckdb``, ``mysql``/``mariadb``).

    :param name: a SQLAlchemy dialect name or an Airflow connection type.
    :raises ValueError: for any other database, naming the supported ones.
    """
    try:
        return DIALECTS[name.lower()]
    except KeyError:
        raise ValueError(
            f"the referrals warehouse supports {SUPPORTED}, not {name!r}: use a sqlite, postgres, "
            "duckdb or mysql connection (see docs/warehouse.md for other warehouses)"
        ) from None


def checked_table(table: str) -> str:
    """
    ``table`` if it is a plain name or ``schema.name`` (letters, digits, ``_``), else ``ValueError``.

    Table names are put in the SQL, so nothing else is accepted.
    """
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"table must be a plain name or schema.name (letters, digits, _), got {table!r}")
    return table


def create_table_sql(dialect: Dialect, table: str = "referrals") -> str:
    """
    ``CREATE TABLE IF NOT EXISTS`` of the referrals table in ``dialect``.

    :param dialect: :data:`SQLITE`, :data:`POSTGRES`, :data:`DUCKDB` or :data:`MARIADB`.
    :param table: the table's name, optionally schema-qualified.
    """
    columns = ",\n".join(f"    {column.name} {dialect.column_type(column)}" for column in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {checked_table(table)} (\n{columns}\n){dialect.table_options}"


def table_key(table: str) -> int:
    """A number per table name, the same in every process (the key of the table's lock)."""
    return zlib.crc32(f"airflow_provider_partner.warehouse:{checked_table(table)}".encode())


def table_lock_sql(dialect: Dialect, table: str = "referrals") -> str | None:
    """
    The statement that serializes loads of ``table`` until the transaction ends, if ``dialect`` has one.

    On PostgreSQL a transaction-level advisory lock whose key is derived from the table's name
    (the same in every process); ``None`` elsewhere (SQLite has one writer; DuckDB and MariaDB
    loads take their own locks, see their modules).

    :param dialect: a dialect.
    :param table: the table's name, optionally schema-qualified.
    """
    if not dialect.table_lock:
        return None
    return dialect.table_lock.format(key=table_key(table))


def upsert_sql(dialect: Dialect, placeholder: str, rows: int, table: str = "referrals") -> str:
    """
    Deprecated: the previous release's multi-row ``VALUES`` upsert (SQLite and PostgreSQL text columns).

    :func:`~airflow_provider_partner.warehouse.load_referrals` stages and merges instead; this
    statement sends 7-digit text date-times, which PostgreSQL's ``TIMESTAMPTZ`` columns round.

    :param dialect: :data:`SQLITE` or :data:`POSTGRES`.
    :param placeholder: the driver's positional placeholder (``?`` for sqlite3, ``%s`` for psycopg2).
    :param rows: how many rows the statement inserts.
    :param table: the table's name, optionally schema-qualified.
    """
    warnings.warn(
        "upsert_sql is deprecated: load_referrals stages and merges each load (docs/warehouse.md)",
        DeprecationWarning,
        stacklevel=2,
    )
    if rows < 1 or rows * len(COLUMNS) > dialect.max_parameters:
        raise ValueError(f"{rows} rows do not fit one {dialect.name} statement")
    table = checked_table(table)
    values = [placeholder] * (len(COLUMNS) - 1) + [dialect.json_value.format(placeholder)]
    row = "(" + ", ".join(values) + ")"
    updates = ",\n    ".join(f"{name} = excluded.{name}" for name in _NAMES[1:])
    return (
        f"INSERT INTO {table} ({', '.join(_NAMES)})\nVALUES "
        + ",\n       ".join([row] * rows)
        + f"\nON CONFLICT (id) DO UPDATE SET\n    {updates}\n"
        + f"WHERE excluded.updated_date_time > {table.rpartition('.')[2]}.updated_date_time"
    )


def referral_row(referral: Mapping[str, Any]) -> tuple[Any, ...]:
    """
    The table row of one referral, in :data:`COLUMNS` order, date-times in the API's 7-digit spelling.

    The target modules turn the two date-times into their database's form.

    :param referral: a referral as the API returns it (``id`` and ``updatedDateTime`` required).
    :raises ValueError: if ``id`` is missing or ``updatedDateTime`` is no date-time.
    """
    referral_id = referral.get("id")
    updated = sort_key(referral.get("updatedDateTime"))
    if not referral_id or not updated:
        raise ValueError(
            f"a referral needs an id and an updatedDateTime, got id={referral_id!r} "
            f"updatedDateTime={referral.get('updatedDateTime')!r}"
        )
    customer = referral.get("customerProfile") or {}
    address = customer.get("address") or {}
    details = referral.get("details") or {}
    deal_value = details.get("dealValue")
    return (
        str(referral_id),
        referral.get("status"),
        referral.get("substatus"),
        referral.get("type"),
        referral.get("qualification"),
        referral.get("direction"),
        customer.get("name"),
        address.get("country"),
        float(deal_value) if deal_value is not None else None,
        details.get("currency"),
        sort_key(referral.get("createdDateTime")) or None,
        updated,
        _json_text(referral),
    )


def _json_text(referral: Mapping[str, Any]) -> str:
    """The referral as JSON text, keys sorted (orjson: serializing is most of a row's cost)."""
    import orjson

    try:
        return orjson.dumps(referral, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which json writes
        return json.dumps(referral, ensure_ascii=False, sort_keys=True)


def rows_per_statement(dialect: Dialect, batch_size: int) -> int:
    """``batch_size`` rows, or fewer if the dialect's parameter limit says so (at least 1)."""
    return max(1, min(batch_size, dialect.max_parameters // len(COLUMNS)))


def column_names() -> Sequence[str]:
    """The table's column names, in order."""
    return _NAMES
