"""
The staged, conditional merge every SQL target runs: what they share.

A load runs on one connection, in one transaction (:meth:`StagedTarget.session`):

1. the target table is created if it does not exist (or checked, where an older release's
   table needs migrating);
2. the file's referrals are staged chunk by chunk into a temporary table by the database's
   fastest native path (:meth:`StagedTarget.stage`): the staged row is the table's row plus
   ``load_seq`` (its line order) and ``updated_key`` (the exact 7-digit ``updatedDateTime``);
3. one conditional statement (two on MariaDB) applies the newest staged version of each ``id``
   (:func:`newest_staged_sql`) where it is strictly newer than the row in the table.

Memory holds one chunk of rows at a time, whatever the file's size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_partner.warehouse.schema import (
    COLUMNS,
    Dialect,
    checked_table,
    column_names,
    create_table_sql,
    referral_row,
)

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "STAGE",
    "STAGE_COLUMNS",
    "StagedTarget",
    "count_rows",
    "explicit_transaction",
    "newest_staged_sql",
    "on_conflict_sql",
    "stage_insert_sql",
    "stage_table_sql",
    "staged_chunks",
    "tab_separated",
]

#: The staging table's name (a temporary table: each connection has its own).
STAGE = "referrals_stage"
#: The staging table's columns: the table's, then the line order and the exact sort key.
STAGE_COLUMNS: tuple[str, ...] = (*column_names(), "load_seq", "updated_key")
_CREATED, _UPDATED = column_names().index("created_date_time"), column_names().index("updated_date_time")
_FLAT = ", ".join(column_names())


def count_rows(cursor: Any, table: str = "referrals") -> int:
    """
    Rows in the referrals table.

    :param cursor: a DB-API cursor.
    :param table: the table's name.
    """
    sql = f"SELECT COUNT(*) FROM {checked_table(table)}"  # noqa: S608 - a checked name
    cursor.execute(sql)
    return int(cursor.fetchone()[0])


def staged_chunks(
    referrals: Iterable[Mapping[str, Any]], instant: Callable[[str], str], size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """
    The staged rows of ``referrals``, ``size`` at a time (:data:`STAGE_COLUMNS` order).

    :param referrals: referrals as the API returns them (streamed: any iterable).
    :param instant: the target's form of a 7-digit API date-time (``...T10:00:00.1234567Z``).
    :param size: rows per chunk (at least 1).
    :raises ValueError: for a referral without ``id`` or ``updatedDateTime``.
    """
    chunk: list[tuple[Any, ...]] = []
    for seq, referral in enumerate(referrals):
        row = list(referral_row(referral))
        key = row[_UPDATED]
        row[_UPDATED] = instant(key)
        if row[_CREATED] is not None:
            row[_CREATED] = instant(row[_CREATED])
        chunk.append((*row, seq, key))
        if len(chunk) >= max(1, size):
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _bare_type(declared: str) -> str:
    return declared.removesuffix(" NOT NULL").removesuffix(" PRIMARY KEY")


def stage_table_sql(dialect: Dialect, key_type: str, temporary: str = "TEMPORARY", suffix: str = "") -> str:
    """
    ``CREATE <temporary> TABLE`` of the staging table: the table's types without constraints.

    :param dialect: the target's dialect.
    :param key_type: the type of ``updated_key`` (compared byte for byte).
    :param temporary: the database's keyword for a table of this connection only.
    :param suffix: what follows the column list (``ON COMMIT DROP``, table options).
    """
    columns = [f"    {column.name} {_bare_type(dialect.column_type(column))}" for column in COLUMNS]
    columns += ["    load_seq BIGINT NOT NULL", f"    updated_key {key_type} NOT NULL"]
    return f"CREATE {temporary} TABLE {STAGE} (\n" + ",\n".join(columns) + f"\n){suffix}"


# The text format of PostgreSQL's COPY and MariaDB's LOAD DATA: backslash first, then the
# characters that would end a field or a row; NULL is \N.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    # str.replace and ``in`` scan in C; raw_json (~3 KB, every one with a backslash) made a
    # per-character translate most of a PostgreSQL load's time.
    for char, escape in _ESCAPES:
        if char in text:
            text = text.replace(char, escape)
    return text


def tab_separated(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows as ``COPY ... FROM STDIN`` (text format) and ``LOAD DATA`` (its defaults) read them."""
    return "".join("\t".join(map(_field, row)) + "\n" for row in rows)


def stage_insert_sql(placeholder: str) -> str:
    """The ``INSERT`` of one staged row (:data:`STAGE_COLUMNS` order) with the driver's placeholder."""
    marks = ", ".join([placeholder] * len(STAGE_COLUMNS))
    return f"INSERT INTO {STAGE} ({', '.join(STAGE_COLUMNS)}) VALUES ({marks})"  # noqa: S608 - fixed names


def newest_staged_sql() -> str:
    """
    The newest staged version of each ``id``: the greatest ``updated_key``, the first line of equals.

    A ``SELECT`` of the table's columns (window functions: SQLite 3.25, MariaDB 10.2, PostgreSQL,
    DuckDB); it names the staging table once (MariaDB cannot reopen a temporary table).
    """
    return (
        f"SELECT {_FLAT} FROM (\n"  # noqa: S608 - fixed names
        f"    SELECT {_FLAT},\n"
        "        ROW_NUMBER() OVER (PARTITION BY id ORDER BY updated_key DESC, load_seq) AS load_rank\n"
        f"    FROM {STAGE}\n"
        ") AS newest\nWHERE load_rank = 1"
    )


def on_conflict_sql(table: str, newer: str) -> str:
    """
    ``INSERT ... SELECT`` of the newest staged rows ``ON CONFLICT (id) DO UPDATE ... WHERE newer``.

    :param table: the table's name, optionally schema-qualified.
    :param newer: the condition on ``excluded`` and the table's row (``{t}``: the table's own name).
    """
    table = checked_table(table)
    updates = ",\n    ".join(f"{name} = excluded.{name}" for name in column_names()[1:])
    # Unqualified: the target's own name, without its schema, is how the row is referred to.
    condition = newer.format(t=table.rpartition(".")[2])
    return (
        f"INSERT INTO {table} ({_FLAT})\n{newest_staged_sql()}\n"
        f"ON CONFLICT (id) DO UPDATE SET\n    {updates}\nWHERE {condition}"
    )


@contextmanager
def explicit_transaction(execute: Callable[[str], Any], begin: str) -> Iterator[None]:
    """
    ``begin``, then ``COMMIT`` when the block ends or ``ROLLBACK`` on any error.

    :param execute: runs one statement (a cursor's or a connection's ``execute``).
    :param begin: the statement that starts the transaction (``BEGIN IMMEDIATE``, ...).
    """
    execute(begin)
    try:
        yield
        execute("COMMIT")
    except BaseException:
        execute("ROLLBACK")
        raise


@dataclass
class StagedTarget(ABC):
    """
    One load into one database: the session, the staging path and the merge of a target.

    :param hook: the target's ``DbApiHook``.
    :param table: the table's name, optionally schema-qualified (checked).
    """

    hook: DbApiHook
    table: str

    #: the target's dialect
    dialect: ClassVar[Dialect]
    #: the type of the staging table's ``updated_key``
    key_type: ClassVar[str] = "TEXT"

    def __post_init__(self) -> None:
        checked_table(self.table)

    @abstractmethod
    def session(self) -> AbstractContextManager[Any]:
        """
        A cursor on one connection in one transaction, the table's lock held and the table created.

        Committed when the block ends, rolled back on any error.
        """

    @staticmethod
    @abstractmethod
    def instant(key: str) -> str:
        """The target's form of a 7-digit API date-time (``2026-11-01T10:00:00.1234567Z``)."""

    @abstractmethod
    def stage(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """Load one chunk of staged rows (:data:`STAGE_COLUMNS` order) into the staging table."""

    @abstractmethod
    def apply(self, cursor: Any) -> int:
        """Merge the staging table into the table; return the rows inserted or replaced."""

    def create_stage(self, cursor: Any) -> None:
        """Create the (empty) staging table of this connection."""
        cursor.execute(stage_table_sql(self.dialect, self.key_type))

    def drop_stage(self, cursor: Any) -> None:
        """Drop the staging table before the commit (the connection may be pooled)."""
        cursor.execute(f"DROP TABLE {STAGE}")

    def create_table(self, cursor: Any) -> None:
        """Create the table if it does not exist."""
        cursor.execute(create_table_sql(self.dialect, self.table))

    def load(self, referrals: Iterable[Mapping[str, Any]], batch_size: int) -> tuple[int, int, int]:
        """
        Stage and merge ``referrals`` in one transaction.

        :param referrals: the file's referrals (streamed).
        :param batch_size: rows per staged chunk.
        :return: ``(read, changed, rows)``.
        """
        read = changed = 0
        with self.session() as cursor:
            self.create_stage(cursor)
            for rows in staged_chunks(referrals, self.instant, batch_size):
                self.stage(cursor, rows)
                read += len(rows)
            if read:
                changed = self.apply(cursor)
            total = count_rows(cursor, self.table)
            self.drop_stage(cursor)
        return read, changed, total
