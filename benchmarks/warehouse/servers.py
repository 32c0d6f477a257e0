"""
The database servers of the benchmark: the warehouse tests' own starters, reused as they are.

``tests/warehouse/servers.py`` starts PostgreSQL (the system suite's ``postgres_cluster``, fsync
off) and MariaDB (Debian's ``mariadb-server``, ``innodb_flush_log_at_trx_commit=0``) on free
loopback ports in a temp folder and removes them after. Every contender writes to the same server,
so their durability trade-off is the same for all.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The tests' modules import each other as pytest puts them on the path: from tests/.
if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))

from tests.warehouse import servers as test_servers  # noqa: E402

__all__ = ["DATABASE", "Server", "mariadb_server", "postgres_server"]

#: The database every contender writes to on a server.
DATABASE = "bench"


@dataclass(frozen=True)
class Server:
    """
    A running database server.

    :param host: its loopback address.
    :param port: its TCP port.
    :param user: a user with every right on :data:`DATABASE`.
    :param password: that user's password (a throwaway of the test server; may be empty).
    :param database: the database the contenders write to.
    :param pid: the server's main process (for its CPU time).
    """

    host: str
    port: int
    user: str
    password: str
    database: str
    pid: int


def _pid_of(program: str, port: int) -> int:
    """The process of ``program`` started with ``port`` on its command line."""
    import psutil

    for process in psutil.process_iter(["name", "cmdline"]):
        line = process.info["cmdline"] or []
        if line and line[0].endswith(program) and (str(port) in line or f"--port={port}" in line):
            return int(process.pid)
    raise RuntimeError(f"no {program} process on port {port}")


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[Server]:
    """A fresh PostgreSQL cluster in ``root`` with the database :data:`DATABASE`."""
    with test_servers.postgres_server(root) as create:
        conn = test_servers.postgres_connection(create(DATABASE))
        yield Server(
            conn["host"], conn["port"], conn["login"], "", DATABASE, _pid_of("postgres", conn["port"])
        )


@contextlib.contextmanager
def mariadb_server(root: Path) -> Iterator[Server]:
    """A fresh MariaDB server in ``root`` with the database :data:`DATABASE`."""
    root.mkdir(parents=True, exist_ok=True)
    with test_servers.mariadb_server(root) as server:
        # The server runs without Debian's config (--no-defaults): its default is latin1, which
        # refuses the referrals' names; every database made here, dlt's datasets too, is utf8mb4.
        server.admin("SET GLOBAL character_set_server = 'utf8mb4'")
        server.admin("SET GLOBAL collation_server = 'utf8mb4_unicode_ci'")
        server.admin(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        conn = server.connection(DATABASE)
        pid = _pid_of("mariadbd", conn["port"])
        yield Server(conn["host"], conn["port"], conn["login"], conn["password"], DATABASE, pid)
