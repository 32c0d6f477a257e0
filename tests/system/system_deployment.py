"""
The pieces of a real Airflow deployment for the system tests, each a process group we own.

PostgreSQL (Debian's binaries, our own cluster in a temp dir, run as a non-root user when we are
root), redis-server (Celery's broker), the Partner Center emulator (its CLI, from the dev venv)
and Airflow's scheduler, dag-processor, triggerer, api-server and Celery workers from the
separate system venv where the provider is installed from its built wheel.

Every wait is bounded and polls a readiness signal (a health endpoint, ``pg_isready``, a log
line); every process is stopped by its process group and every file removed, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
# The DAG files of example_dags/ (the demo runner and the package marker are not DAGs).
NOT_DAGS = {"__init__.py", "run_demo.py"}
# The user that runs PostgreSQL when the tests run as root (postgres refuses root).
PG_USER = "nobody"


class SystemTestError(AssertionError):
    """A bounded wait ran out or a component failed; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.25,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """
    Poll ``probe`` until it returns something truthy; return that, or fail after ``timeout`` s.

    :param what: what we wait for, for the failure message.
    :param probe: returns a truthy value when ready; exceptions count as "not yet".
    :param timeout: the bound, in seconds.
    :param interval: seconds between probes.
    :param diagnostics: called on failure; its text (e.g. the relevant logs) joins the message.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = probe()
        except Exception as err:  # noqa: BLE001 - "not ready yet", reported if it never becomes ready
            value, last_error = None, f"{type(err).__name__}: {err}"
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            extra = f"\n{diagnostics()}" if diagnostics else ""
            raise SystemTestError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file, headed by its name ('' if it does not exist)."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"----- {path.name} (last {len(text)} lines) -----\n" + "\n".join(text)


@dataclass
class Service:
    """One long-running command in its own process group, its output in one log file."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] | None = field(default=None, repr=False)
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _terminated: bool = field(default=False, init=False)

    def start(self) -> Service:
        """Start the command in a new session (its own process group)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The commands are fixed lists built here from known binaries; no shell.
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the whole process group."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        """SIGTERM the group once (a second could turn a graceful shutdown into a hurried one)."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.signal_group(signal.SIGTERM)

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the group, then SIGKILL it after ``grace`` s; reap; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Children that outlived the leader (task runners, gunicorn workers) go too.
        self.signal_group(signal.SIGKILL)
        return self.proc.returncode

    def log(self, lines: int = 60) -> str:
        """The end of this service's log."""
        return tail(self.log_path, lines)

    def wait_for_log(self, text: str, timeout: float, since: int = 0) -> int:
        """Wait until ``text`` appears in the log after byte ``since``; return the log's size then."""

        def probe() -> int | None:
            if not self.running:
                raise SystemTestError(f"{self.name} exited with code {self.proc and self.proc.returncode}")
            data = self.log_path.read_bytes()
            return len(data) if text.encode() in data[since:] else None

        return wait_until(f"{text!r} in the {self.name} log", probe, timeout, diagnostics=self.log)


# ---------------------------------------------------------------------------------------------
# PostgreSQL and Redis


def postgres_bin_dir() -> Path:
    """The bin folder of Debian's newest installed PostgreSQL (``/usr/lib/postgresql/N/bin``)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise SystemTestError("PostgreSQL is not installed: run `make system-deps` (apt-get install postgresql)")


def _as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_cluster(root: Path, logs: Path) -> Iterator[Callable[[str], str]]:
    """A fresh PostgreSQL cluster on a free loopback port; yields ``create(db) -> SQLAlchemy URL``."""
    bin_dir = postgres_bin_dir()
    data, sockets = root / "pgdata", root / "pgsock"
    for folder in (root, data, sockets):
        folder.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, PG_USER, PG_USER if _group_exists(PG_USER) else "nogroup")
    init = subprocess.run(
        _as_pg_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"]
        ),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if init.returncode != 0:
        raise SystemTestError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    port = free_port()
    server = Service(
        "postgres",
        _as_pg_user(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(sockets),
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",  # a throwaway cluster: speed over durability
            ]
        ),
        logs / "postgres.log",
        cwd=Path("/"),
    ).start()
    try:
        wait_until(
            "PostgreSQL to accept connections",
            lambda: _run_ok(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow"]
            ),
            60,
            diagnostics=server.log,
        )

        def create(name: str) -> str:
            created = subprocess.run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", name],
                capture_output=True,
                text=True,
                check=False,
            )
            if created.returncode != 0:
                raise SystemTestError(f"createdb {name} failed: {created.stderr}")
            return f"postgresql+psycopg2://airflow@127.0.0.1:{port}/{name}"

        yield create
    finally:
        server.stop()


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _run_ok(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def redis_server(root: Path, logs: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, no persistence; yields its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemTestError("redis-server is not installed: run `make system-deps`")
    root.mkdir(exist_ok=True)
    port = free_port()
    server = Service(
        "redis",
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ],
        logs / "redis.log",
    ).start()
    try:
        server.wait_for_log("Ready to accept connections", 30)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# The emulator


@dataclass
class EmulatorProcess:
    """The emulator CLI; ``info`` is its JSON line; :meth:`admin` calls its admin API over HTTP."""

    service: Service
    info: dict[str, Any]

    def admin(self, action: str, body: Any = None, method: str | None = None) -> Any:
        """GET (no body) or POST (body) ``/_emulator/<action>`` with the admin token."""
        url = f"{self.info['admin_url']}/{action}"
        headers = {"Authorization": f"Bearer {self.info['admin_token']}"}
        verb = method or ("POST" if body is not None else "GET")
        response = requests.request(
            verb, url, json=body, headers=headers, verify=self.info["ca_bundle"], timeout=60
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def referrals(self) -> list[dict[str, Any]]:
        """Every referral the emulator holds, current state."""
        return list(self.admin("referrals"))

    def stats(self) -> dict[str, Any]:
        """The emulator's counters."""
        return dict(self.admin("stats"))


@contextlib.contextmanager
def emulator(root: Path, logs: Path, referrals: int, seed: int) -> Iterator[EmulatorProcess]:
    """Start ``python -m partner_center_emulator`` (dev venv); yield it once it printed its info."""
    root.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "partner_center_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--referrals",
        str(referrals),
        "--seed",
        str(seed),
        "--period-days",
        "30",
        "--state-dir",
        str(root),
    ]
    log_path = logs / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    service = Service("emulator", command, log_path)
    service.proc = proc
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=120):
                raise SystemTestError("the emulator printed no info line within 120 s\n" + service.log())
        line = proc.stdout.readline()
        if not line:
            raise SystemTestError(f"the emulator exited ({proc.wait()})\n{service.log()}")
        yield EmulatorProcess(service, json.loads(line))
    finally:
        service.stop()
        if proc.stdout is not None:
            proc.stdout.close()


# ---------------------------------------------------------------------------------------------
# Airflow


def airflow_connection(info: dict[str, Any], token_cache: str) -> dict[str, Any]:
    """The emulator's example connection with a token cache, as production configures it."""
    conn = json.loads(info["airflow_conn"])
    # credential_store (token_cache's new name) replaces the emulator's own file store.
    conn["extra"] = {**conn["extra"], "credential_store": token_cache}
    return dict(conn)


@dataclass
class Airflow:
    """One Airflow deployment: its environment, its components and a REST client for its API."""

    venv: Path
    home: Path
    # Secrets (connections, the admin password, the API token) stay out of a failing test's report.
    env: dict[str, str] = field(repr=False)
    api_url: str
    password: str = field(repr=False)
    services: dict[str, Service] = field(default_factory=dict)
    _token: str | None = field(default=None, repr=False)

    @property
    def logs(self) -> Path:
        """Where the components' own logs go (task logs are under ``home/logs``)."""
        return self.home / "component-logs"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` with this deployment's environment; fail with its output."""
        done = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise SystemTestError(
                f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def start(self, name: str, *args: str) -> Service:
        """Start ``airflow <args>`` as component ``name`` (replacing a stopped one of that name)."""
        service = Service(
            name, [str(self.venv / "bin" / "airflow"), *args], self.logs / f"{name}.log", self.env
        )
        self.services[name] = service.start()
        return service

    def stop_all(self) -> None:
        """Stop every component: the others all at once, then the api-server they report to."""
        # Each takes 1-6 s to shut down; one after the other they took 20 s of every deployment.
        others = [service for name, service in self.services.items() if name != "api-server"]
        for service in others:
            service.terminate()
        for service in others:
            service.stop()
        if "api-server" in self.services:
            self.services["api-server"].stop()

    def diagnostics(self, task_logs: int = 6) -> str:
        """The end of every component log and of the newest task logs (for failure messages)."""
        parts = [service.log(40) for service in self.services.values()]
        task_log_files = (self.home / "logs").glob("dag_id=*/**/*.log")
        newest = sorted(task_log_files, key=lambda p: p.stat().st_mtime)[-task_logs:]
        parts.extend(tail(path, 40) for path in newest)
        return "\n".join(part for part in parts if part)

    # REST ------------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from the simple auth manager's ``/auth/token`` (user ``admin``)."""
        if self._token is None:
            response = requests.post(
                f"{self.api_url}/auth/token",
                json={"username": "admin", "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        """Call ``/api/v2/<path>``; return the JSON body; fail with the answer otherwise."""
        response = requests.request(
            method,
            f"{self.api_url}/api/v2/{path.lstrip('/')}",
            json=body,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        if response.status_code not in ok:
            raise SystemTestError(
                f"{method} /api/v2/{path} answered {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no auth needed)."""
        response = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def wait_healthy(self, components: tuple[str, ...], timeout: float = 180) -> None:
        """Wait until the health endpoint reports each component (and the database) healthy."""

        def probe() -> bool:
            self._check_alive()
            health = self.health()
            return all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", *components))

        wait_until(f"{', '.join(components)} healthy", probe, timeout, 0.5, self.diagnostics)

    def _check_alive(self) -> None:
        dead = [name for name, service in self.services.items() if not service.running]
        if dead:
            raise SystemTestError(f"{', '.join(dead)} exited\n{self.diagnostics()}")

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed every DAG; fail on any import error."""

        def probe() -> bool:
            self._check_alive()
            errors = self.api("GET", "importErrors")["import_errors"]
            if errors:
                raise SystemTestError(f"import errors: {json.dumps(errors, indent=1)[:4000]}")
            dags = {d["dag_id"] for d in self.api("GET", "dags?limit=100")["dags"]}
            return dag_ids <= dags

        try:
            wait_until(f"DAGs {sorted(dag_ids)} parsed", probe, timeout, 0.5, self.diagnostics)
        except SystemTestError as err:
            if "import errors" in str(err.__context__ or ""):
                raise err.__context__ from None  # type: ignore[misc]
            raise

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        """Unpause (or pause) a DAG."""
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": paused})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run."""
        return dict(self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        return list(
            self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        )

    def wait_run_done(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """Wait until a run ends (success or failed); return it."""

        def probe() -> dict[str, Any] | None:
            self._check_alive()
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return wait_until(f"{dag_id} run {run_id} to end", probe, timeout, 0.5, self.diagnostics)

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """The ``return_value`` XCom of one task instance, deserialized."""
        entry = self.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
            f"?map_index={map_index}&deserialize=true&stringify=false",
        )
        return entry["value"]


def airflow_environment(
    home: Path,
    database_url: str,
    executor: str,
    connection: dict[str, Any],
    ca_bundle: str,
    extra: dict[str, str] | None = None,
) -> tuple[dict[str, str], str, str]:
    """The environment every component of one deployment shares; returns it, the API URL, the password."""
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    password = secrets.token_urlsafe(12)
    (home / "dags").mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({"admin": password}), encoding="utf-8")
    from cryptography.fernet import Fernet

    env = {
        # The system venv first: `airflow` and the task runners it forks are its interpreter.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        # Small on purpose: a 2-core machine shared with other work.
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # Parse the copied DAG files at once, then rarely.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        # A killed triggerer's triggers move to a live one after this many seconds (default 30).
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
        "AIRFLOW_CONN_PARTNER_CENTER_DEFAULT": json.dumps(connection),
        "REQUESTS_CA_BUNDLE": ca_bundle,
        "PARTNER_CENTER_DATA_DIR": str(home / "data"),
        "PARTNER_CENTER_POKE_INTERVAL": "1",
        **(extra or {}),
    }
    return env, api_url, password


def copy_example_dags(dags_folder: Path, edits: Mapping[str, Mapping[str, str]] | None = None) -> set[str]:
    """
    Copy (not link) the example DAG files into a plain dags folder; return the DAG ids.

    :param edits: per file name, text to replace (old -> new), as a user edits the copy they
        deploy (their bucket in an ``output_path``, say). Each old text must occur exactly once:
        an example that changed fails here, not as a DAG that quietly writes somewhere else.
    """
    dags_folder.mkdir(parents=True, exist_ok=True)
    edits = edits or {}
    unknown = set(edits) - {p.name for p in EXAMPLE_DAGS.glob("*.py")}
    if unknown:
        raise SystemTestError(f"edits name no example DAG file: {sorted(unknown)}")
    for source in sorted(EXAMPLE_DAGS.glob("*.py")):
        if source.name in NOT_DAGS:
            continue
        text = source.read_text(encoding="utf-8")
        for old, new in edits.get(source.name, {}).items():
            if text.count(old) != 1:
                raise SystemTestError(f"{source.name} holds {old!r} {text.count(old)} times, not once")
            text = text.replace(old, new)
        (dags_folder / source.name).write_text(text, encoding="utf-8")
    return {
        "referrals_warehouse_load",
        "referrals_followup",
        "referrals_event_driven",
        "referrals_sample_queries",
    }


@contextlib.contextmanager
def deployment(
    venv: Path,
    home: Path,
    database_url: str,
    emu: EmulatorProcess,
    executor: str = "LocalExecutor",
    broker_url: str | None = None,
    workers: int = 0,
    refresh_token: str | None = None,
    extra_env: dict[str, str] | None = None,
    credential_store: str = "variable://partner_center_token_cache",
    dag_edits: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Airflow]:
    """
    Migrate a database and run scheduler, dag-processor, triggerer, api-server (and workers).

    Yields once every component reports healthy and every example DAG is parsed; stops them all
    on exit, also when starting failed. ``extra_env`` adds to every component's environment
    (another connection, say); ``credential_store`` is the example connection's token cache;
    ``dag_edits`` go to :func:`copy_example_dags`.
    """
    connection = airflow_connection(emu.info, credential_store)
    if refresh_token:  # a deployment of its own starts from a refresh token nobody used yet
        connection["extra"]["refresh_token"] = refresh_token
    extra: dict[str, str] = {}
    if broker_url:
        extra = {
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        }
    env, api_url, password = airflow_environment(
        home, database_url, executor, connection, emu.info["ca_bundle"], {**extra, **(extra_env or {})}
    )
    dag_ids = copy_example_dags(home / "dags", dag_edits)
    airflow = Airflow(venv=venv, home=home, env=env, api_url=api_url, password=password)
    try:
        airflow.cli("db", "migrate", timeout=600)
        airflow.start("api-server", "api-server")
        airflow.start("scheduler", "scheduler")
        airflow.start("dag-processor", "dag-processor")
        airflow.start("triggerer", "triggerer")
        for number in range(1, workers + 1):
            # Two workers on one machine: each its own name; neither serves logs (one port each
            # otherwise, and the files are on this disk anyway).
            airflow.start(
                f"worker-{number}",
                "celery",
                "worker",
                "--celery-hostname",
                f"worker{number}@%h",
                "--skip-serve-logs",
                "--without-gossip",
                "--without-mingle",
            )
        airflow.wait_healthy(("scheduler", "triggerer", "dag_processor"))
        for number in range(1, workers + 1):
            airflow.services[f"worker-{number}"].wait_for_log("ready.", 120)
        airflow.wait_for_dags(dag_ids)
        yield airflow
    finally:
        airflow.stop_all()
