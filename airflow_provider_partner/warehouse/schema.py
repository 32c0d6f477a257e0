"""
The ``referrals`` table: its columns, its DDL and its upsert statement in each supported dialect.

One row per referral, keyed by ``id``. ``updated_date_time`` holds the API's 7-digit spelling
(``2026-11-01T10:00:00.1234567Z``, :func:`airflow_provider_partner.instants.sort_key`), whatever
precision the input had, so comparing the text compares the instants; on PostgreSQL the column
is collated ``"C"`` so that the comparison is bytewise in every database locale.

The upsert is one ``INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE`` statement, which SQLite
(3.24 and later) and PostgreSQL (9.5 and later) both run: a row is replaced only by a strictly
newer ``updated_date_time``; an older or equal one changes nothing.

Pure: no IO, no Airflow import.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_partner.instants import sort_key

__all__ = [
    "COLUMNS",
    "DIALECTS",
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
    """

    name: str
    sqlite: str
    postgres: str
    source: str


COLUMNS: tuple[Column, ...] = (
    Column("id", "TEXT PRIMARY KEY", "TEXT PRIMARY KEY", "id"),
    Column("status", "TEXT", "TEXT", "status"),
    Column("substatus", "TEXT", "TEXT", "substatus"),
    Column("type", "TEXT", "TEXT", "type"),
    Column("qualification", "TEXT", "TEXT", "qualification"),
    Column("direction", "TEXT", "TEXT", "direction"),
    Column("customer_name", "TEXT", "TEXT", "customerProfile.name"),
    Column("country", "TEXT", "TEXT", "customerProfile.address.country"),
    Column("deal_value", "REAL", "DOUBLE PRECISION", "details.dealValue"),
    Column("currency", "TEXT", "TEXT", "details.currency"),
    Column("created_date_time", "TEXT", "TEXT", "createdDateTime (7 fractional digits)"),
    Column(
        "updated_date_time",
        "TEXT NOT NULL",
        'TEXT COLLATE "C" NOT NULL',
        "updatedDateTime (7 fractional digits)",
    ),
    Column("raw_json", "TEXT NOT NULL", "JSONB NOT NULL", "the whole referral"),
)

_NAMES = tuple(column.name for column in COLUMNS)
# A table name, optionally schema-qualified: plain identifiers only, since it is put in the SQL.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Dialect:
    """
    What differs between the databases the loader writes to.

    :param name: the dialect's name (SQLAlchemy's: ``sqlite``, ``postgresql``).
    :param max_parameters: bound parameters one statement may carry (a multi-row ``VALUES``
        chunk is sized to stay under it).
    :param json_value: the SQL expression of the ``raw_json`` value around its placeholder.
    :param table_lock: the statement that makes loads of one table wait for each other until
        their transactions end (``{key}``: a number per table); empty where the database does
        that by itself (SQLite has one writer at a time).
    """

    name: str
    max_parameters: int
    json_value: str = "{}"
    table_lock: str = ""

    def column_type(self, column: Column) -> str:
        """The column's type and constraints in this dialect."""
        return column.sqlite if self.name == "sqlite" else column.postgres


# 999 is SQLite's limit before 3.32 (32,766 since); PostgreSQL's protocol allows 65,535.
SQLITE = Dialect("sqlite", max_parameters=999)
# Concurrent loads of one PostgreSQL table would race in CREATE TABLE IF NOT EXISTS (a unique
# violation in pg_type) and could deadlock on overlapping ids in different orders.
POSTGRES = Dialect(
    "postgresql",
    max_parameters=65_535,
    json_value="CAST({} AS JSONB)",
    table_lock="SELECT pg_advisory_xact_lock({key})",
)
DIALECTS: Mapping[str, Dialect] = {"sqlite": SQLITE, "postgresql": POSTGRES, "postgres": POSTGRES}


def dialect_named(name: str) -> Dialect:
    """
    The dialect of that name (``sqlite``, ``postgresql`` or ``postgres``).

    :param name: a SQLAlchemy dialect name or an Airflow connection type.
    :raises ValueError: for any other database, naming the supported ones.
    """
    try:
        return DIALECTS[name.lower()]
    except KeyError:
        raise ValueError(
            f"the referrals warehouse supports SQLite and PostgreSQL, not {name!r} "
            "(its upsert is INSERT ... ON CONFLICT ... DO UPDATE ... WHERE)"
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

    :param dialect: :data:`SQLITE` or :data:`POSTGRES`.
    :param table: the table's name, optionally schema-qualified.
    """
    columns = ",\n".join(f"    {column.name} {dialect.column_type(column)}" for column in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {checked_table(table)} (\n{columns}\n)"


def table_lock_sql(dialect: Dialect, table: str = "referrals") -> str | None:
    """
    The statement that serializes loads of ``table`` until the transaction ends, if ``dialect`` needs one.

    On PostgreSQL a transaction-level advisory lock whose key is derived from the table's name
    (the same in every process); ``None`` on SQLite.

    :param dialect: :data:`SQLITE` or :data:`POSTGRES`.
    :param table: the table's name, optionally schema-qualified.
    """
    if not dialect.table_lock:
        return None
    key = zlib.crc32(f"airflow_provider_partner.warehouse:{checked_table(table)}".encode())
    return dialect.table_lock.format(key=key)


def upsert_sql(dialect: Dialect, placeholder: str, rows: int, table: str = "referrals") -> str:
    """
    The upsert of ``rows`` referrals in one statement (a multi-row ``VALUES``).

    Its parameters are the rows of :func:`referral_row`, flattened in order.

    :param dialect: :data:`SQLITE` or :data:`POSTGRES`.
    :param placeholder: the driver's positional placeholder (``?`` for sqlite3, ``%s`` for psycopg2).
    :param rows: how many rows the statement inserts.
    :param table: the table's name, optionally schema-qualified.
    """
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
        # Unqualified: the target's own name, without its schema, is how the row is referred to.
        + f"WHERE excluded.updated_date_time > {table.rpartition('.')[2]}.updated_date_time"
    )


def referral_row(referral: Mapping[str, Any]) -> tuple[Any, ...]:
    """
    The table row of one referral, in :data:`COLUMNS` order.

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
        json.dumps(referral, ensure_ascii=False, sort_keys=True),
    )


def rows_per_statement(dialect: Dialect, batch_size: int) -> int:
    """``batch_size`` rows, or fewer if the dialect's parameter limit says so (at least 1)."""
    return max(1, min(batch_size, dialect.max_parameters // len(COLUMNS)))


def column_names() -> Sequence[str]:
    """The table's column names, in order."""
    return _NAMES
