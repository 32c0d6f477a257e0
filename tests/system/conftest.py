"""
Fixtures of the system suite: one PostgreSQL cluster, one emulator, one deployment per executor.

The suite runs only when ``PARTNER_CENTER_SYSTEM_TESTS=1`` (``make system-test`` sets it, after
building the provider's wheel into ``.venv-system``); ``make test`` leaves it out.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from objectstores.servers import ObjectStore, running
from system_checks import CELERY_OUTPUTS, CELERY_TOKEN_CACHE, EVENT_WATERMARKS, postgres_connection
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
#: The ``aws`` connection of the deployments' bucket, as its URLs name it.
S3_CONN_ID = "partner_center_s3"
#: The output folder of ``referrals_warehouse_load.py`` as the example writes it.
WAREHOUSE_OUTPUT_LINE = 'f"file://{DATA_DIR}/referrals/"'
#: The watermark location of ``referrals_event_driven.py`` as the example writes it.
EVENT_WATERMARK_LINE = (
    "WATERMARK_LOCATION = None if HAS_ASSET_STATE_STORE "
    'else "variable://partner_center_new_referrals_watermark"'
)


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


def _deployment_s3() -> Iterator[ObjectStore]:
    # moto's S3 (tests/objectstores/servers.py, in this venv) and the ``aws`` connection to it,
    # for one module's deployment; stopped, its objects gone, when the module ends.
    with running("s3", S3_CONN_ID) as store:
        yield store


@pytest.fixture(scope="module")
def local_s3() -> Iterator[ObjectStore]:
    """The LocalExecutor deployment's S3: the event trigger's watermarks, as users keep them on a bucket."""
    yield from _deployment_s3()


@pytest.fixture(scope="module")
def local_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    local_s3: ObjectStore,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """
    Scheduler, dag-processor, triggerer and api-server with LocalExecutor on PostgreSQL.

    The event-driven DAG keeps its watermark on S3 (the ``aws`` connection ``partner_center_s3``
    in every component's environment): its copy has the one edit a user makes for that.
    """
    url = create_database("airflow_local")
    # The line a user edits in their copy of the example: a bucket folder, one object per watcher.
    watermarks = {EVENT_WATERMARK_LINE: f"WATERMARK_LOCATION = {local_s3.url(EVENT_WATERMARKS)!r}"}
    with deployment(
        system_venv,
        system_root / "airflow-local",
        url,
        emu,
        extra_env=local_s3.env,
        dag_edits={"referrals_event_driven.py": watermarks},
    ) as airflow:
        yield airflow
        _report(airflow, request)


@pytest.fixture(scope="module")
def celery_s3() -> Iterator[ObjectStore]:
    """
    The Celery deployment's S3: its token cache and outputs, since workers on separate hosts
    share no disk.
    """
    yield from _deployment_s3()


@pytest.fixture(scope="module")
def celery_warehouse(create_database: Callable[[str], str]) -> str:
    """The Celery deployment's warehouse database (no worker's disk holds it either)."""
    return create_database("warehouse_celery")


@pytest.fixture(scope="module")
def celery_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    celery_s3: ObjectStore,
    celery_warehouse: str,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """
    The same with CeleryExecutor: redis-server as broker and two ``airflow celery worker``.

    As on hosts that share no disk: the example connection's token cache and the warehouse DAG's
    outputs are S3 objects (the ``aws`` connection ``partner_center_s3`` in every component's
    environment), the warehouse is a database of the suite's PostgreSQL.
    """
    url = create_database("airflow_celery")
    admin = emu.admin("users")["admin"]["username"]
    refresh_token = emu.admin("issue_refresh_token", {"username": admin})
    if isinstance(refresh_token, dict):
        refresh_token = refresh_token.get("refresh_token")
    home = system_root / "airflow-celery"
    extra_env = {
        **celery_s3.env,
        "AIRFLOW_CONN_PARTNER_CENTER_WAREHOUSE": json.dumps(postgres_connection(celery_warehouse)),
    }
    # The line a user edits in their copy of the example: their bucket instead of the local folder.
    outputs = {WAREHOUSE_OUTPUT_LINE: repr(celery_s3.url(CELERY_OUTPUTS))}
    with redis_server(system_root / "redis", system_root / "logs") as broker:
        celery = {"executor": "CeleryExecutor", "broker_url": broker, "workers": 2}
        with deployment(
            system_venv,
            home,
            url,
            emu,
            refresh_token=refresh_token,
            extra_env=extra_env,
            credential_store=celery_s3.url(CELERY_TOKEN_CACHE),
            dag_edits={"referrals_warehouse_load.py": outputs},
            **celery,
        ) as airflow:
            yield airflow
            _report(airflow, request)
