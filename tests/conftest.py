"""Test-suite wiring: a throwaway AIRFLOW_HOME, a migrated SQLite DB and the DAGs folder.

Airflow reads its configuration when ``airflow`` is first imported, so the environment is
set here at conftest import time, before any test module (or provider module) imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from secret_scan import WORKER_OUTPUT_KEY, leaks_in_files, leaks_in_sections, verdict

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="partner-airflow-home-"))
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_HOME / "logs")
# As every real deployment has one (Airflow writes it into a new airflow.cfg): Variables, and the
# provider's encrypted variable:// credential stores, need it. Fixed, so subprocesses share it.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "V0hZLVRFU1RTLU5FRUQtQS1GRVJORVQtS0VZLTEyMzQ=")
# Example DAGs read this to find the warehouse and output locations; tests point it at tmp dirs.
os.environ["PARTNER_CENTER_DATA_DIR"] = str(_AIRFLOW_HOME / "data")

# OpenLineage (the test extra installs its provider) is on for the whole session, so every DAG test
# also runs the listener: events are appended to one file per session process (tests/lineage reads
# it), emitted in a thread rather than a forked child, and no DAG-run events (those start a process
# pool). The provider reads these once per process, hence here, before anything imports it. The
# paths are assigned, never defaulted: a pytest-xdist worker inherits its controller's environment.
OPENLINEAGE_EVENTS = _AIRFLOW_HOME / "openlineage" / "events.jsonl"
OPENLINEAGE_EVENTS.parent.mkdir()
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
)
os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "partner-tests")
os.environ.setdefault("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
_NO_DAG_EVENTS = [{"scope": {}, "controls": {"emit_dag_events": False}}]
os.environ.setdefault("AIRFLOW__OPENLINEAGE__EMISSION_POLICY", json.dumps(_NO_DAG_EVENTS))

# One DAGs folder for dag.test(): the example DAGs and the test DAGs, linked side by side.
for _folder in (EXAMPLE_DAGS, TEST_DAGS):
    for _dag_file in _folder.glob("*.py"):
        if _dag_file.name not in {"__init__.py", "run_demo.py"}:
            (_DAGS_FOLDER / _dag_file.name).symlink_to(_dag_file)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The throwaway AIRFLOW_HOME of this test session."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def openlineage_events() -> Path:
    """The file the OpenLineage file transport appends this session's events to (one JSON a line)."""
    return OPENLINEAGE_EVENTS


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB, created once per session (needed by ``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()
    return airflow_home / "airflow.db"


# --- Secrets-in-logs check (added by the hook helper; scanned by tests/test_zz_no_secrets_in_logs.py) ---
# Every test's captured log records, stdout and stderr are kept for the whole session. The provider's
# own loggers record DEBUG and the libraries it drives record INFO (Airflow's task log level), so the
# scan sees what a task log would contain, and more.
_SESSION_OUTPUT: list[tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    import logging

    logging.getLogger("airflow_provider_partner").setLevel(logging.DEBUG)
    for name in ("msal", "urllib3", "requests", "tenacity"):
        logging.getLogger(name).setLevel(logging.INFO)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Under pytest-xdist the controller receives every worker's reports, sections included.
    for section, text in report.sections:
        _SESSION_OUTPUT.append((f"{report.nodeid} [{section}]", text))


def _log_dir() -> Path:
    return Path(os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER", _AIRFLOW_HOME / "logs"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    # The scan of a session split between pytest-xdist workers (secret_scan.py says why).
    config = session.config
    if hasattr(config, "workeroutput"):  # a worker: its task logs go before the controller looks
        config.workeroutput[WORKER_OUTPUT_KEY] = leaks_in_files(_log_dir())
    elif config.pluginmanager.has_plugin("dsession"):  # the controller of a distributed session
        # The provider's tests, as the last module of a plain session sees them (the emulator's
        # own tests, emulator/tests, run after it and drive msal's device flow by hand).
        provider = [(where, text) for where, text in _SESSION_OUTPUT if where.startswith("tests/")]
        leaks = leaks_in_sections(provider) + _WORKER_LEAKS
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if reporter is not None:
                reporter.write_sep("=", "no secrets in logs: FAILED", red=True)
                reporter.write_line(verdict(leaks))
        elif reporter is not None:
            reporter.ensure_newline()
            scanned = f"{len(provider)} captured sections of tests/ and every worker's task logs"
            reporter.write_line(f"no secrets in logs: none of the emulators' secrets in {scanned}")


_WORKER_LEAKS: list[str] = []


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without the plugin
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A pytest-xdist worker finished: keep what its scan of its task logs found."""
    _WORKER_LEAKS.extend(getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, []))


@pytest.fixture(scope="session")
def session_output() -> list[tuple[str, str]]:
    """``(where, text)`` of every captured log/stdout/stderr section reported so far this session."""
    return _SESSION_OUTPUT


#: Retry waits shortened (the caps are real settings); attempts generous enough for 20% faults.
FAST_RETRIES = {"backoff_factor": 0.01, "max_retry_wait": 0.05, "max_retries": 10}

_KEEP = object()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """
    Define an Airflow connection (environment variable) for an emulator; return its conn id.

    ``connect(emu, conn_id, password=..., host=..., drop=("refresh_token",), **extras)``.
    """

    def _connect(
        emu: Any,
        conn_id: str = "partner_center_default",
        *,
        password: Any = _KEEP,
        host: str | None = None,
        drop: tuple[str, ...] = (),
        **extras: Any,
    ) -> str:
        conn = json.loads(emu.info["airflow_conn"])
        conn["extra"].update(FAST_RETRIES)
        conn["extra"].update(extras)
        for key in drop:
            conn["extra"].pop(key, None)
        if host is not None:
            conn["host"] = host
        if password is not _KEEP:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return _connect


@pytest.fixture
def watchers() -> Any:
    """``watchers(trigger)``: run an event trigger as a triggerer would (tests/trigger_watch.py)."""
    from trigger_watch import Watcher, rebuilt

    started: list[Watcher] = []

    def start(trigger: Any) -> Watcher:
        watcher = Watcher(rebuilt(trigger))
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        if not watcher.loop.is_closed():
            watcher.stop()
