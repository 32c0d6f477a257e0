"""
The warehouse of the example DAG ``referrals_warehouse_load``: a connection, or embedded SQLite.

Part of the provider's public API (``airflow_provider_partner.examples.warehouse``). The load
itself is :func:`airflow_provider_partner.warehouse.load_referrals`; this module adds the
example's one policy: it writes through the Airflow connection ``partner_center_warehouse`` (any
SQLite or PostgreSQL connection), and while no such connection is defined, into a SQLite file
(``$PARTNER_CENTER_DATA_DIR/warehouse.db``), so the example runs with nothing to set up.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_provider_partner.warehouse import warehouse_hook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = ["WAREHOUSE_CONN_ID", "embedded_sqlite_hook", "example_warehouse_hook", "load_event_extra"]

log = logging.getLogger(__name__)

#: The connection the example DAG writes through, when it is defined.
WAREHOUSE_CONN_ID = "partner_center_warehouse"


def embedded_sqlite_hook(db_path: str | Path) -> DbApiHook:
    """
    A ``SqliteHook`` on a local SQLite file, without an Airflow connection.

    :param db_path: the database file; its folder is created.
    """
    from airflow.sdk import Connection

    try:
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook
    except ImportError as err:
        raise ImportError(
            "the embedded SQLite warehouse needs apache-airflow-providers-sqlite: "
            "pip install 'airflow-provider-partner[sql]'"
        ) from err

    path = Path(db_path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)

    class _FileSqliteHook(SqliteHook):
        # SqliteHook reads its connection by id (to build a URI); this one has no id to read.
        def get_uri(self) -> str:
            return "sqlite:///" + quote(str(path))

        def get_conn(self) -> sqlite3.Connection:
            return sqlite3.connect(str(path))

    connection = Connection(conn_id="embedded_sqlite", conn_type="sqlite", host=str(path))
    hook: DbApiHook = _FileSqliteHook(connection=connection)  # type: ignore[no-untyped-call]
    return hook


def example_warehouse_hook(conn_id: str, default_db: str | Path) -> DbApiHook:
    """
    The hook of ``conn_id``; a hook on the SQLite file ``default_db`` if that connection is not defined.

    :param conn_id: the warehouse connection's id.
    :param default_db: the embedded SQLite file used without the connection.
    """
    from airflow_provider_partner.compat import connection_not_found_error

    try:
        return warehouse_hook(conn_id)
    except connection_not_found_error():
        log.info("No connection %r: loading into the embedded SQLite warehouse %s", conn_id, default_db)
        return embedded_sqlite_hook(default_db)


def load_event_extra(result: Mapping[str, int], *, day: str, path: str) -> dict[str, int | str]:
    """
    The extra of the warehouse asset's event: which day was loaded, from which file, what changed.

    Shown in the Assets view of Airflow's UI and passed to DAGs scheduled on the warehouse.

    :param result: what :func:`~airflow_provider_partner.warehouse.load_referrals` returned
        (``read``, ``changed``, ``rows``).
    :param day: the run's day (its data interval's start, ``YYYY-MM-DD``).
    :param path: the file that was loaded.
    :return: ``{"day", "path", "rows_read", "rows_changed", "rows_total"}``: referrals read from
        the file, rows inserted or replaced, rows in the table afterwards.
    """
    return {
        "day": day,
        "path": path,
        "rows_read": result["read"],
        "rows_changed": result["changed"],
        "rows_total": result["rows"],
    }
