"""
The runs: every target and contender, each load in a fresh child process, servers started once.

Per target and contender, two children: the first load of the large size's daily files, then
the replay of the same files, the edit file and the older file (only the first load's peak
memory is its own, and only it is reported); the first load of the small size.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks.warehouse.contenders import conn_env
from benchmarks.warehouse.data import Inputs
from benchmarks.warehouse.servers import Server, mariadb_server, postgres_server

__all__ = ["CONTENDER_NAMES", "TARGETS", "run_target"]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("sqlite", "duckdb", "delta", "postgres", "mariadb")
CONTENDER_NAMES = ("provider", "insert_rows", "dlt")
#: The steps of every contender's figures.
_STEPS = ("first", "replay", "edit", "older", "small")
#: Pairs that cannot run, and why.
_NOT_APPLICABLE = {("delta", "insert_rows"): "n/a: no DbApiHook writes Delta Lake"}
#: One child's bound: the slowest contender (one statement per row on a server) takes minutes.
_CHILD_TIMEOUT = 3600


@contextlib.contextmanager
def server_of(target: str, root: Path) -> Iterator[Server | None]:
    """The server a target needs (``None`` for the in-process and file targets)."""
    starters: dict[str, Callable[[Path], contextlib.AbstractContextManager[Server]]] = {
        "postgres": postgres_server,
        "mariadb": mariadb_server,
    }
    if target not in starters:
        yield None
        return
    with starters[target](root / target) as server:
        yield server


def _where(target: str, size: int, root: Path, server: Server | None) -> dict[str, Any]:
    if server is not None:
        return {
            "host": server.host,
            "port": server.port,
            "user": server.user,
            "password": server.password,
            "database": server.database,
            "pid": server.pid,
        }
    if target == "delta":
        folder = root / f"delta-{size}"
        return {"uri": f"file://{folder}/provider", "dlt_uri": f"file://{folder}/dlt"}
    return {"path": str(root / f"{target}-{size}.db")}


def _child(spec: dict[str, Any], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run one measuring child; its figures per step, or ``{"error": ...}``."""
    try:
        done = subprocess.run(  # noqa: S603 - our own module, our own spec
            [sys.executable, "-m", "benchmarks.warehouse.child", orjson.dumps(spec).decode()],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=_CHILD_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {_CHILD_TIMEOUT} s"}
    with log.open("a") as out:
        out.write(f"=== {spec['target']} {spec['contender']} {[s['name'] for s in spec['steps']]}\n")
        out.write(done.stderr[-20_000:])
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = orjson.loads(line[len("RESULT ") :])
            return result
    return {"error": f"the child exited with {done.returncode} and no result: {done.stderr[-300:]}"}


def run_target(
    target: str,
    contenders: tuple[str, ...],
    sizes: tuple[Inputs, Inputs],
    root: Path,
    log: Callable[[str], None],
    child_log: Path,
    profile: Path | None = None,
) -> dict[str, Any]:
    """
    Every measured load of one target.

    :param sizes: the large and the small size's files.
    :param child_log: where the children's stderr goes (tracebacks of failed loads).

    :return: ``{contender: {"first"|"replay"|"edit"|"older"|"small": figures or {"error"}}}``.
    """
    large, small = sizes
    out: dict[str, Any] = {}
    with server_of(target, root) as server:
        env_base = {
            **os.environ,
            "AIRFLOW_HOME": str(root / "airflow-home"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "RUNTIME__LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        for contender in contenders:
            figures: dict[str, Any] = {}
            if (target, contender) in _NOT_APPLICABLE:
                out[contender] = {step: {"error": _NOT_APPLICABLE[target, contender]} for step in _STEPS}
                continue
            for inputs, plan in (
                (
                    large,
                    [
                        ("first", large.daily),
                        ("replay", large.daily),
                        ("edit", (large.edit,)),
                        ("older", (large.older,)),
                    ],
                ),
                (small, [("small", small.daily)]),
            ):
                where = _where(target, inputs.records, root, server)
                spec = {
                    "target": target,
                    "contender": contender,
                    "table": f"{contender}_{inputs.records}",
                    "where": where,
                    "work": str(root / "dlt"),
                    "steps": [{"name": name, "files": [str(p) for p in files]} for name, files in plan],
                }
                if profile is not None and contender == "provider" and plan[0][0] == "first":
                    spec["steps"][0]["profile"] = str(profile / f"warehouse-profile-{target}.txt")
                started = time.monotonic()
                result = _child(spec, {**env_base, **conn_env(target, where)}, child_log)
                if "error" in result:
                    figures.update({name: dict(result) for name, _ in plan})
                else:
                    figures.update(result)
                first = plan[0][0]
                shown = figures[first]
                log(
                    f"{target:8} {contender:11} {'+'.join(n for n, _ in plan):17} "
                    + (f"error: {shown['error']}" if "error" in shown else
                       f"{shown['seconds']:7.1f} s, peak {shown['rss_peak'] / 2**20:6.0f} MiB, "
                       f"wrote {shown['written']:,}, rows {shown['rows']:,}")
                    + f" ({time.monotonic() - started:.0f} s with the child's start)"
                )  # fmt: skip
            out[contender] = figures
    return out
