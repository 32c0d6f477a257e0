"""
The soak's triggerer scenario: a real Airflow deployment whose triggerer lives through rotations.

Scheduler, dag-processor, api-server and triggerer (``example_dags.demo.deployment.LocalAirflow``,
LocalExecutor, SQLite) with :mod:`benchmarks.soak.dags.soak_triggers`: per connection an event
trigger and a deferred sensor, and the probe trigger. The emulator's access tokens last a second
or two and every refresh token is revoked once used, so each check past a token's end rotates
both. While it runs, :class:`TriggererSampler` reads the triggerer's processes from outside.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil

from example_dags.demo.deployment import LocalAirflow, wait_for

DAGS = Path(__file__).resolve().parent / "dags" / "soak_triggers.py"


def connection(emulator: Any, conn_id: str, store: Path) -> str:
    """The emulator's connection with a refresh token of its own and a file credential store."""
    conn = json.loads(emulator.info["airflow_conn"])
    conn["extra"]["credential_store"] = f"file://{store / (conn_id + '.json')}"
    conn["extra"]["refresh_token"] = emulator.issue_refresh_token(emulator.info["username"])
    return json.dumps(conn)


def start_airflow(home: Path, env: dict[str, str], connections: int) -> LocalAirflow:
    """Start the deployment with the soak's DAGs and wait until they are parsed."""
    airflow = LocalAirflow(home, env)
    (airflow.dags / DAGS.name).symlink_to(DAGS)
    airflow.prepare_database(Path(__file__).resolve().parents[2] / ".venv-bench" / "airflow-db-cache")
    airflow.start()
    dag_ids = {"soak_probe"} | {
        f"soak_{kind}_{i}" for kind in ("event", "sensor") for i in range(connections)
    }
    airflow.wait_ready(dag_ids, timeout=300)
    for dag_id in sorted(dag_ids):
        airflow.api("PATCH", f"dags/{dag_id}", {"is_paused": False})
    for dag_id in sorted(dag_ids - {f"soak_event_{i}" for i in range(connections)}):
        airflow.api("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None})
    return airflow


def wait_deferred(airflow: LocalAirflow, connections: int) -> None:
    """Wait until the probe and every sensor are deferred in the triggerer."""
    wanted = {"soak_probe"} | {f"soak_sensor_{i}" for i in range(connections)}

    def all_deferred() -> bool:
        airflow.check_running()
        found = airflow.api("GET", "dags/~/dagRuns/~/taskInstances?state=deferred&limit=100")
        return wanted <= {ti["dag_id"] for ti in found["task_instances"]}

    wait_for("the probe and the sensors to be deferred", all_deferred, 300, every=1, logs=airflow.logs)


class TriggererSampler:
    """The triggerer's supervisor and trigger runner, read from ``/proc`` through psutil."""

    def __init__(self, airflow: LocalAirflow) -> None:
        proc = airflow.components["triggerer"].proc
        assert proc is not None
        self.supervisor = psutil.Process(proc.pid)
        self.runner = self._runner()

    def _runner(self) -> psutil.Process:
        # The trigger runner is the supervisor's child with the most memory (a log server, if
        # any, is small); it is forked once and lives as long as the triggerer.
        children = self.supervisor.children()
        if not children:
            raise RuntimeError("the triggerer has no trigger runner process")
        return max(children, key=lambda child: child.memory_info().rss)

    def sample(self) -> dict[str, float]:
        """RSS of both processes (MB) and the runner's CPU seconds."""
        runner_cpu = self.runner.cpu_times()
        supervisor_cpu = self.supervisor.cpu_times()
        return {
            "supervisor_rss_mb": self.supervisor.memory_info().rss / 1_048_576,
            "runner_rss_mb": self.runner.memory_info().rss / 1_048_576,
            "runner_cpu_s": runner_cpu.user + runner_cpu.system,
            "supervisor_cpu_s": supervisor_cpu.user + supervisor_cpu.system,
        }


def blocked_warnings(airflow: LocalAirflow) -> list[float]:
    """
    How long the loop was blocked, per "async thread was blocked" warning in the triggerer's log.

    Airflow's watchdog sleeps 0.1 s and reports how long that took: the block is the rest.
    """
    import re

    log = airflow.component_logs / "triggerer.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    found = re.findall(r"async thread was blocked for ([0-9.]+) seconds", text)
    return [round(float(seconds) - 0.1, 2) for seconds in found]


def wait_rotations(emulator: Any, target: int, deadline: float, on_sample: Any, every: float = 2.0) -> int:
    """Call ``on_sample`` every ``every`` s until ``target`` refresh grants or the deadline."""
    grants = 0
    while grants < target and time.monotonic() < deadline:
        time.sleep(every)  # a sampling period, not a readiness wait: the soak runs for its length
        grants = int(emulator.stats()["token_grants"]["refresh_token"])
        on_sample(grants)
    return grants
