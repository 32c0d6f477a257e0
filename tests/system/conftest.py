"""
Fixtures of the system suite: one PostgreSQL cluster, one emulator, one deployment per executor.

The suite runs only when ``PARTNER_CENTER_SYSTEM_TESTS=1`` (``make system-test`` sets it, after
building the provider's wheel into ``.venv-system``); ``make test`` leaves it out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from system_deployment import (
    REPO_ROOT,
    Airflow,
    EmulatorProcess,
    SystemTestError,
    deployment,
    emulator,
    postgres_cluster,
    redis_server,
)

ENABLED = os.environ.get("PARTNER_CENTER_SYSTEM_TESTS") == "1"
collect_ignore_glob = [] if ENABLED else ["test_*.py"]

REFERRALS = 3000
SEED = 2026


@pytest.fixture(scope="session")
def system_venv() -> Path:
    """The venv with apache-airflow and the provider's wheel (not an editable install)."""
    venv = Path(os.environ.get("PARTNER_CENTER_SYSTEM_VENV", REPO_ROOT / ".venv-system"))
    if not (venv / "bin" / "airflow").exists():
        raise SystemTestError(f"{venv} has no airflow: run `make system-test`, which builds it")
    site = list((venv / "lib").glob("python*/site-packages/airflow_provider_partner/__init__.py"))
    if not site:
        raise SystemTestError(f"the provider is not installed from its wheel in {venv}")
    return venv


@pytest.fixture(scope="session")
def system_root() -> Iterator[Path]:
    """One temp folder for every file of the suite; removed at the end, also on failure."""
    root = Path(tempfile.mkdtemp(prefix="partner-system-"))
    root.chmod(0o711)  # PostgreSQL runs as another user and must reach its folder inside
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def create_database(system_root: Path) -> Iterator[Callable[[str], str]]:
    """``create(name) -> URL`` on this session's own PostgreSQL cluster."""
    with postgres_cluster(system_root / "postgres", system_root / "logs") as create:
        yield create


@pytest.fixture(scope="session")
def emu(system_root: Path) -> Iterator[EmulatorProcess]:
    """The emulator CLI, shared by both deployments (its data is the suite's ground truth)."""
    with emulator(system_root / "emulator", system_root / "logs", REFERRALS, SEED) as process:
        yield process


def _report(airflow: Airflow, request: pytest.FixtureRequest) -> None:
    if request.session.testsfailed:
        print(
            f"\n===== Airflow logs ({airflow.env['AIRFLOW__CORE__EXECUTOR']}) =====\n{airflow.diagnostics()}"
        )


@pytest.fixture(scope="module")
def local_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """Scheduler, dag-processor, triggerer and api-server with LocalExecutor on PostgreSQL."""
    url = create_database("airflow_local")
    with deployment(system_venv, system_root / "airflow-local", url, emu) as airflow:
        yield airflow
        _report(airflow, request)


@pytest.fixture(scope="module")
def celery_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """The same with CeleryExecutor: redis-server as broker and two ``airflow celery worker``."""
    url = create_database("airflow_celery")
    admin = emu.admin("users")["admin"]["username"]
    refresh_token = emu.admin("issue_refresh_token", {"username": admin})
    if isinstance(refresh_token, dict):
        refresh_token = refresh_token.get("refresh_token")
    home = system_root / "airflow-celery"
    with redis_server(system_root / "redis", system_root / "logs") as broker:
        celery = {"executor": "CeleryExecutor", "broker_url": broker, "workers": 2}
        with deployment(system_venv, home, url, emu, refresh_token=refresh_token, **celery) as airflow:
            yield airflow
            _report(airflow, request)
