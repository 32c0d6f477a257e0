"""
Fixtures of the warehouse tests (others may import them into their own conftest): one PostgreSQL
and one MariaDB server per session (per pytest-xdist worker), and ``warehouse``: a fresh
database of each target per test, behind an Airflow connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from warehouse.servers import (
    TARGETS,
    MariaDB,
    airflow_connection_env,
    mariadb_server,
    postgres_connection,
    postgres_server,
    session_folder,
)
from warehouse.targets import Warehouse

__all__ = ["mariadb", "postgres", "warehouse"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Callable[[str], str]]:
    """PostgreSQL for this session: ``create(db) -> SQLAlchemy URL``."""
    with session_folder("warehouse-pg-") as root, postgres_server(root) as create:
        yield create


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """MariaDB for this session."""
    with session_folder("warehouse-mariadb-") as root, mariadb_server(root) as server:
        yield server


@pytest.fixture(params=TARGETS)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """
    A fresh, empty database of one target behind the Airflow connection ``warehouse_<hex>``.

    Parametrized by :data:`TARGETS`; a test may ask for :data:`OTHER_DRIVERS` too (``indirect``).
    """
    kind, _, driver = str(request.param).partition(":")
    if driver == "psycopg2":
        monkeypatch.setattr("airflow.providers.postgres.hooks.postgres.USE_PSYCOPG3", False)
    conn_id = f"warehouse_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        connection = {"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}
    elif kind == "duckdb":
        connection = {"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}
    elif kind == "postgres":
        create = request.getfixturevalue("postgres")
        connection = postgres_connection(create(conn_id))
    else:
        server: MariaDB = request.getfixturevalue("mariadb")
        server.admin(f"CREATE DATABASE {conn_id}")
        connection = server.connection(conn_id, "" if driver == "local_infile" else driver)
    monkeypatch.setenv(*airflow_connection_env(conn_id, connection))
    return Warehouse(kind, conn_id, driver)
