"""
The warehouses of the tests: PostgreSQL and MariaDB servers started here, DuckDB and SQLite files.

- **PostgreSQL**: the system suite's own cluster (``postgres_cluster`` of
  ``tests/system/system_deployment.py``: Debian's binaries, a temp folder, a free loopback port).
- **MariaDB**: Debian's ``mariadb-server``: ``mariadb-install-db`` into a temp folder, then
  ``mariadbd`` on a free loopback port with its socket in that folder, as root
  (``--user=root``) on CI; ready when a connection succeeds; a database and user of the tests.
- **DuckDB** and **SQLite**: a file per test, in-process.

Each is reached as users reach it: an Airflow connection in ``AIRFLOW_CONN_<ID>`` (JSON), its
official hook (``warehouse_hook``). Outside pytest, ``with mariadb_server(root) as server:``
starts one MariaDB and removes it after. No test functions here: conftest files import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system.system_deployment import Service, SystemTestError, free_port, postgres_cluster, wait_until

#: The targets, in the order the parametrized fixture runs them.
TARGETS: tuple[str, ...] = ("sqlite", "duckdb", "postgres", "mariadb")
#: The targets through their hooks' other drivers and paths: PostgresHook on psycopg2 (psycopg 3
#: when both are installed), MySqlHook on mysql-connector-python (the connection extra ``client``)
#: and ``MySqlHook(local_infile=True)``, whose loads stage with ``LOAD DATA LOCAL INFILE``.
OTHER_DRIVERS: tuple[str, ...] = (
    "postgres:psycopg2",
    "mariadb:mysql-connector-python",
    "mariadb:local_infile",
)
#: The tests' MariaDB account (its password is a throwaway of the test server).
MARIADB_USER = "loader"


def _binary(*names: str) -> str:
    for name in names:
        for folder in ("", "/usr/sbin/", "/usr/bin/"):
            found = shutil.which(folder + name) if folder else shutil.which(name)
            if found:
                return found
    raise SystemTestError(
        f"MariaDB is not installed ({' or '.join(names)} not found): run `bash .ci/system-deps` "
        "(apt-get install mariadb-server)"
    )


@dataclass
class MariaDB:
    """A running MariaDB server: its port, its socket and the password of :data:`MARIADB_USER`."""

    port: int
    socket: Path
    password: str

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one statement as root over the socket (auto-committed)."""
        import MySQLdb

        conn = MySQLdb.connect(unix_socket=str(self.socket), user="root")
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            conn.close()

    def connection(self, database: str, client: str = "") -> dict[str, Any]:
        """The Airflow ``mysql`` connection of ``database`` (TCP, the tests' user; ``client``: its driver)."""
        return {
            "conn_type": "mysql",
            "host": "127.0.0.1",
            "port": self.port,
            "login": MARIADB_USER,
            "password": self.password,
            "schema": database,
            **({"extra": {"client": client}} if client else {}),
        }


@contextlib.contextmanager
def mariadb_server(root: Path) -> Iterator[MariaDB]:
    """A fresh MariaDB in ``root`` on a free loopback port; stopped and removed after."""
    data, socket_path, scratch = root / "data", root / "mariadb.sock", root / "tmp"
    # Its own temporary folder: two bootstraps sharing /tmp failed on each other's temporary tables.
    scratch.mkdir()
    installed = subprocess.run(
        [
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={data}",
            f"--tmpdir={scratch}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=root,
    )
    if installed.returncode != 0:
        raise SystemTestError(f"mariadb-install-db failed ({installed.returncode}):\n{installed.stderr}")
    port = free_port()
    server = Service(
        "mariadb",
        [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            f"--datadir={data}",
            f"--tmpdir={scratch}",
            f"--socket={socket_path}",
            f"--pid-file={root / 'mariadb.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--character-set-server=utf8mb4",  # as a production server is set up (the default: latin1)
            "--user=root",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=0",  # a throwaway server: speed over durability
        ],
        root / "mariadb.log",
        cwd=root,
    ).start()
    try:
        password = uuid.uuid4().hex
        server_info = MariaDB(port, socket_path, password)

        def ready() -> bool:
            if not server.running:
                raise SystemTestError(f"mariadbd exited:\n{server.log()}")
            return bool(server_info.admin("SELECT 1"))

        wait_until("MariaDB to accept connections", ready, 120, diagnostics=server.log)
        server_info.admin(f"CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{password}'")
        server_info.admin(f"GRANT ALL ON *.* TO '{MARIADB_USER}'@'%'")
        yield server_info
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[Callable[[str], str]]:
    """The system suite's PostgreSQL cluster in ``root``; yields ``create(db) -> SQLAlchemy URL``."""
    root.mkdir(parents=True, exist_ok=True)
    with postgres_cluster(root / "cluster", root) as create:
        yield create


def postgres_connection(url: str) -> dict[str, Any]:
    """The Airflow ``postgres`` connection of a ``postgresql+psycopg2://user@host:port/db`` URL."""
    rest = url.split("://", 1)[1]
    user, _, rest = rest.partition("@")
    hostport, _, database = rest.partition("/")
    host, _, port = hostport.partition(":")
    return {"conn_type": "postgres", "host": host, "port": int(port), "login": user, "schema": database}


@contextlib.contextmanager
def session_folder(prefix: str) -> Iterator[Path]:
    """A temp folder for one session's server, removed after (readable by PostgreSQL's user)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o755)  # noqa: S103 - postgres runs as another user and must reach its folder
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def airflow_connection_env(conn_id: str, connection: dict[str, Any]) -> tuple[str, str]:
    """The ``AIRFLOW_CONN_<ID>`` variable of a connection (JSON)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection)
