"""
Referrals into a SQL warehouse through the official hooks: SQLite, PostgreSQL, DuckDB, MariaDB.

Public API (``docs/warehouse.md``)::

    from airflow_provider_partner.warehouse import load_referrals

    result = load_referrals("my_warehouse", ObjectStoragePath(manifest["path"]))
    # {"read": 1480, "changed": 1312, "rows": 20931}

- :func:`load_referrals`: merge one JSONL file of the operator into the ``referrals`` table
  (created if needed): streamed in chunks into a staging table by the database's native bulk
  path, merged by one conditional statement, one transaction on one connection; a row changes
  only for a strictly newer ``updatedDateTime``. One module per target (``sqlite``,
  ``postgres``, ``duckdb``, ``mysql``), their shared part in ``staging``.
- :func:`warehouse_hook`: the ``DbApiHook`` of a connection id; :func:`dialect_of` its dialect.
- :func:`transaction`, :func:`read_referrals`, :func:`count_rows`: the pieces, for a transaction
  or a cursor of your own; :func:`upsert_referrals` (deprecated) the previous release's upsert.
- :mod:`~airflow_provider_partner.warehouse.schema`: the table's columns (:data:`COLUMNS`), its
  DDL (:func:`create_table_sql`) and PostgreSQL's lock concurrent loads take turns with
  (:func:`table_lock_sql`) per dialect; :func:`upsert_sql` is deprecated.

It sits beside the operators (it reads their output files) and imports only ``instants`` from
the provider; common-sql and the database drivers load when a load runs.
"""

from __future__ import annotations

from airflow_provider_partner.warehouse.delta import (
    DEFAULT_DELTA_PROPERTIES,
    DeltaConflictError,
    DeltaLoadResult,
    merge_referrals_delta,
    optimize_referrals_delta,
    vacuum_referrals_delta,
)
from airflow_provider_partner.warehouse.delta_rows import delta_column_names
from airflow_provider_partner.warehouse.load import (
    DEFAULT_BATCH_SIZE,
    LoadResult,
    count_rows,
    dialect_of,
    load_referrals,
    read_referrals,
    transaction,
    upsert_referrals,
    warehouse_hook,
)
from airflow_provider_partner.warehouse.schema import (
    COLUMNS,
    DUCKDB,
    MARIADB,
    POSTGRES,
    SQLITE,
    Column,
    Dialect,
    create_table_sql,
    referral_row,
    table_lock_sql,
    upsert_sql,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DELTA_PROPERTIES",
    "DUCKDB",
    "MARIADB",
    "POSTGRES",
    "SQLITE",
    "Column",
    "DeltaConflictError",
    "DeltaLoadResult",
    "Dialect",
    "LoadResult",
    "count_rows",
    "create_table_sql",
    "delta_column_names",
    "dialect_of",
    "load_referrals",
    "merge_referrals_delta",
    "optimize_referrals_delta",
    "read_referrals",
    "referral_row",
    "table_lock_sql",
    "transaction",
    "upsert_referrals",
    "upsert_sql",
    "vacuum_referrals_delta",
    "warehouse_hook",
]
