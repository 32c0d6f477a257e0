"""
A throwaway local Airflow deployment for the demo: its processes, their readiness, its REST API.

``LocalAirflow`` runs Airflow's own ``api-server``, ``scheduler``, ``dag-processor`` and
``triggerer`` (LocalExecutor, SQLite) from this interpreter's venv, each in its own process group
with its output in one log file. Every wait polls a readiness signal with a bound and fails with
a :class:`DemoError` that carries the relevant log tails; :meth:`LocalAirflow.stop` (and
:func:`stop_group`) end every process they started, SIGKILL after a short grace.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Airflow's log servers (the scheduler's for LocalExecutor tasks, the triggerer's) bind every
# interface, with no setting for the address. Here on one machine the api-server reads the task
# and trigger log files from this home's logs/ folder itself, so they are not started: every
# socket of the demo is on 127.0.0.1.
ARGUMENTS = {"scheduler": ("--skip-serve-logs",), "triggerer": ("--skip-serve-logs",)}
USER = "admin"


class DemoError(RuntimeError):
    """A bounded wait ran out or a process failed; the message says which and shows its log."""


def free_port() -> int:
    """A loopback TCP port the kernel just found free (others run their own Airflow here too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file under a header naming it ('' when there is none)."""
    if not path.is_file():
        return ""
    last = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"--- {path} (last {len(last)} lines) ---\n" + "\n".join(last)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    every: float = 0.25,
    logs: Callable[[], str] | None = None,
) -> T:
    """
    Return the first truthy value of ``probe()``; raise :class:`DemoError` after ``timeout`` s.

    An exception from ``probe`` means "not yet" (a server still starting refuses connections),
    except :class:`DemoError`, which means it will never be ready (a process exited). The probe
    is what we wait on; ``every`` only spaces the probes.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = probe()
        except DemoError:
            raise
        except Exception as err:  # noqa: BLE001 - "not ready yet"; named if it never gets ready
            value, last_error = None, f"{type(err).__name__}: {err}"
        if value:
            return value
        if time.monotonic() > deadline:
            because = f" (last error: {last_error})" if last_error else ""
            raise DemoError(
                f"gave up after {timeout:.0f} s waiting for {what}{because}\n{logs() if logs else ''}"
            )
        time.sleep(every)


def signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (nothing if it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen[Any], grace: float = 10.0, terminated: bool = False) -> None:
    """
    SIGTERM the process group of ``proc``, SIGKILL it after ``grace`` s; reap the leader.

    :param terminated: SIGTERM was sent already. Airflow's components take a second SIGTERM as
        "force exit now" and then wait for their children to be killed, which is slower.
    """
    if proc.poll() is None:
        if not terminated:
            signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    # Children that outlived their leader (task runners, server workers) go with the group.
    signal_group(proc, signal.SIGKILL)


class Component:
    """One Airflow command in a session of its own (Ctrl-C in the terminal reaches only us)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Component:
        """Start it, its stdout and stderr appended to its log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            # argv is this venv's `airflow` and fixed arguments: no shell, nothing from outside.
            self.proc = subprocess.Popen(  # noqa: S603
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        return self

    def check_running(self) -> None:
        """Raise :class:`DemoError` with its log tail if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(
                f"airflow {self.name} exited with code {self.proc.returncode}\n{log_tail(self.log)}"
            )

    def finish(self, timeout: float) -> None:
        """Wait (bounded) for a one-shot command to succeed."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(
                f"airflow {self.name} did not finish within {timeout:.0f} s\n{log_tail(self.log)}"
            ) from None
        if code != 0:
            raise DemoError(f"airflow {self.name} failed with code {code}\n{log_tail(self.log)}")


class LocalAirflow:
    """
    Scheduler, dag-processor, triggerer and api-server on one SQLite database, LocalExecutor.

    :param home: the ``AIRFLOW_HOME`` (made here; the DAGs folder is ``home/dags``).
    :param extra_env: more environment for every component (connections, the DAGs' settings).
    """

    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        from cryptography.fernet import Fernet

        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        self.component_logs = home / "component-logs"
        self.db = home / "airflow.db"
        self._template = self.db
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.password = secrets.token_urlsafe(9)
        self.passwords_file = home / "simple_auth_manager_passwords.json"
        self.passwords_file.write_text(json.dumps({USER: self.password}), encoding="utf-8")
        self.passwords_file.chmod(0o600)
        # Nothing of the caller's own Airflow configuration leaks in: this home is all there is.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # Airflow 3 accepts LocalExecutor on SQLite (it has no SequentialExecutor any
                # more). Task runners reach the database only through the api-server's
                # execution API, so the writers are these four processes; WAL mode (below)
                # lets them read while one writes.
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
                # prepare_database() migrates (or copies a migrated file) before anything
                # starts: four components checking the migrations again cost seconds of CPU.
                "AIRFLOW__DATABASE__CHECK_MIGRATIONS": "False",
                # Task slots, not CPUs: a finished task's process often lingers ~5 s (Airflow's
                # supervisor) holding its slot; with 4, those idle processes starve the queue.
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the UI's "Test" button
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(16),
                # Shared by every component: the scheduler signs the tokens the api-server checks.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                # No log server runs (ARGUMENTS), but the api-server still asks one for the log of
                # a running or deferred task: free ports, not 8793/8794, where another Airflow on
                # this machine may serve its own.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # Short heartbeats: the health endpoint (our readiness signal) sees components
                # sooner, and a deferred task's trigger is picked up sooner.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # The scheduler's pause between loops with nothing to do (default 1 s): most of a
                # task's wait for the next one in a run.
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
                # Parse each DAG file once at start (a re-parse every 30 s costs a process and a
                # few CPU seconds per file); new files are still found every refresh_interval.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                **extra_env,
            }
        )
        self.env = env
        self.components: dict[str, Component] = {}
        self._token: str | None = None

    def _component(self, name: str, *args: str) -> Component:
        airflow = str(Path(sys.executable).with_name("airflow"))
        return Component(name, [airflow, *args], self.component_logs / f"{name}.log", self.env)

    def prepare_database(self, cache: Path) -> None:
        """
        Copy the migrated empty database this Airflow version left in ``cache``, else migrate.

        ``airflow db migrate`` costs about 6 s of CPU; an empty migrated database is the same
        for every run of one Airflow version, so only the first run pays. The migration runs in
        the background (it needs nothing else): :meth:`start` waits for it.
        """
        self._template = cache / f"airflow-{version('apache-airflow')}.db"
        if self._template.is_file():
            shutil.copyfile(self._template, self.db)
        else:
            self.components["db-migrate"] = self._component("db-migrate", "db", "migrate").start()

    def start(self, migration_timeout: float = 120) -> None:
        """Finish the migration (keep its template), start the four long-running components."""
        migration = self.components.pop("db-migrate", None)
        if migration is not None:
            migration.finish(migration_timeout)
            with contextlib.closing(sqlite3.connect(self.db)) as db:
                # Persistent in the file: readers no longer wait for the writer (fewer "database
                # is locked" between the four processes).
                db.execute("PRAGMA journal_mode=WAL")
            self._template.parent.mkdir(parents=True, exist_ok=True)
            partial = self._template.with_suffix(".partial")
            shutil.copyfile(self.db, partial)
            partial.replace(self._template)  # atomic: a run interrupted here leaves no half file
        for name in COMPONENTS:
            self.components[name] = self._component(name, name, *ARGUMENTS.get(name, ())).start()

    def check_running(self) -> None:
        """Raise :class:`DemoError` (with its log) if a long-running component has exited."""
        for name in COMPONENTS:
            if name in self.components:
                self.components[name].check_running()

    def logs(self, lines: int = 25) -> str:
        """The end of every component's log and of the newest task logs, for failure messages."""
        parts = [log_tail(c.log, lines) for c in self.components.values()]
        task_logs = sorted((self.home / "logs").glob("dag_id=*/**/*.log"), key=lambda p: p.stat().st_mtime)
        parts += [log_tail(path, lines) for path in task_logs[-3:]]
        return "\n".join(part for part in parts if part)

    def wait_ready(self, dag_ids: set[str], timeout: float = 120) -> None:
        """Wait until the health endpoint reports every component healthy and the DAGs parsed."""
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")

        def healthy() -> bool:
            self.check_running()
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            return all((health.get(part) or {}).get("status") == "healthy" for part in wanted)

        wait_for(
            "the scheduler, dag-processor, triggerer and api-server to be healthy",
            healthy,
            timeout,
            logs=self.logs,
        )

        def parsed() -> bool:
            self.check_running()
            errors = self.api("GET", "importErrors")["import_errors"]
            if errors:
                raise DemoError(f"the example DAGs do not import: {json.dumps(errors, indent=1)[:3000]}")
            return dag_ids <= {d["dag_id"] for d in self.api("GET", "dags?limit=100")["dags"]}

        wait_for(f"the dag-processor to parse {', '.join(sorted(dag_ids))}", parsed, timeout, logs=self.logs)

    def token(self) -> str:
        """A JWT of the demo user from the simple auth manager's ``/auth/token``."""
        if self._token is None:
            answer = requests.post(
                f"{self.url}/auth/token", json={"username": USER, "password": self.password}, timeout=30
            )
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """``/api/v2/<path>`` with the JWT; the JSON answer, or :class:`DemoError` naming the status."""
        answer = requests.request(
            method,
            f"{self.url}/api/v2/{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        if answer.status_code >= 300:
            raise DemoError(f"{method} /api/v2/{path} answered {answer.status_code}: {answer.text[:1000]}")
        return answer.json() if answer.content else None

    def stop(self, grace: float = 5.0) -> None:
        """
        Stop every component: SIGTERM to all at once, then SIGKILL what is left after ``grace`` s.

        Airflow's own graceful stop can take longer than the demo is worth: the scheduler waits
        for task processes that linger after their task finished (about 5 s), and the triggerer
        gives its trigger runner up to 10 s after SIGINT (it often takes them all). This home
        is thrown away, so what is still running after ``grace`` is killed.
        """
        started = [c.proc for c in self.components.values() if c.proc is not None]
        # All at once: one by one takes four times as long, and whatever still runs (a task, on
        # Ctrl-C) is thrown away with this home, so nothing needs the api-server to outlive it.
        for proc in started:
            if proc.poll() is None:
                # The leader only: each component stops its own children (task and trigger
                # runners) in order; a SIGTERM of its own on top makes a child's exit slower.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in started:
            stop_group(proc, max(0.5, deadline - time.monotonic()), terminated=True)
