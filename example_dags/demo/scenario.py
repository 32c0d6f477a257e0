"""
The demo's scenario, driven through Airflow's REST API (``LocalAirflow.api``, a JWT per run).

:func:`connections` are the emulator's example connection (token cache in a Variable, as
production configures it) and the SQLite warehouse connection, stored in the metadata database.
:func:`warehouse_loads` runs ``referrals_warehouse_load`` for the last complete UTC days: a
backfill created while the DAG is paused, the scheduled run of yesterday once it is unpaused,
then one day cleared and rerun (the table's SHA-256 must not change). :func:`followup` triggers
``referrals_followup`` and releases new referrals at the emulator once its sensor is deferred.
Each returns what the summary reports; a failed run raises :class:`DemoError` with its task logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from example_dags.demo.deployment import DemoError, LocalAirflow, log_tail, wait_for
from example_dags.demo.emulator import Emulator
from example_dags.demo.ui import trigger_log_shown

WAREHOUSE, FOLLOWUP = "referrals_warehouse_load", "referrals_followup"
CONN_ID = "partner_center_default"  # the connection of every example DAG's Partner Center tasks
WAREHOUSE_CONN_ID = "partner_center_warehouse"  # the warehouse DAG's connection
DAYS = 7
RELEASED = 3
RUN_TIMEOUT = 180.0
# Where the hook keeps the rotating refresh token: a Variable, as production would.
TOKEN_CACHE = "variable://partner_center_token_cache"  # noqa: S105 - a location, not a secret


def say(text: str) -> None:
    """One line of the demo's progress."""
    print(f"[demo] {text}", flush=True)


def connections(airflow: LocalAirflow, info: dict[str, Any]) -> list[dict[str, Any]]:
    """
    The demo's two connections, as ``POST /api/v2/connections`` bodies (``extra`` a dict).

    The emulator's example connection with a token cache as production configures it, its extra
    only what a user sets (tenant, authority, bootstrap refresh token, CA bundle, credential
    store); the port is the one in the host URL, so the Test button's port matches the stored one.
    The warehouse load writes through an Airflow connection, as a deployment defines one (a
    postgres connection works the same: docs/warehouse.md); the follow-ups share the file.
    """
    conn = json.loads(info["airflow_conn"])
    extra = {**conn["extra"], "credential_store": TOKEN_CACHE}  # not the emulator's file store
    partner_center = {
        "connection_id": CONN_ID,
        "conn_type": conn["conn_type"],
        "description": "The demo's Partner Center emulator",
        "host": conn["host"],
        "port": urlsplit(conn["host"]).port,
        "login": conn["login"],
        "password": conn["password"],
        "extra": extra,
    }
    warehouse = {
        "connection_id": WAREHOUSE_CONN_ID,
        "conn_type": "sqlite",
        "host": str(warehouse_db(airflow)),
    }
    return [partner_center, warehouse]


def warehouse_db(airflow: LocalAirflow) -> Path:
    """The SQLite file of the warehouse connection (the follow-ups record their outcomes there)."""
    return Path(airflow.env["PARTNER_CENTER_DATA_DIR"]) / "warehouse.db"


def _runs(airflow: LocalAirflow, dag_id: str) -> list[dict[str, Any]]:
    return list(airflow.api("GET", f"dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"])


def _task_instances(airflow: LocalAirflow, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100"
    return list(airflow.api("GET", path)["task_instances"])


def _xcom(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    return airflow.api("GET", f"{path}?map_index={map_index}&deserialize=true&stringify=false")["value"]


def _failed(airflow: LocalAirflow, dag_id: str, run: dict[str, Any]) -> DemoError:
    """The error for a failed run: its failed tasks and their log tails."""
    tis = _task_instances(airflow, dag_id, run["dag_run_id"])
    bad = [ti["task_id"] for ti in tis if ti["state"] not in ("success", "skipped")]
    logs = [
        log_tail(path, 40)
        for task_id in bad
        for path in sorted(
            airflow.home.glob(f"logs/dag_id={dag_id}/run_id={run['dag_run_id']}/task_id={task_id}/**/*.log")
        )
    ]
    return DemoError(
        f"{dag_id} run {run['dag_run_id']} ended {run['state']} (tasks {bad})\n" + "\n".join(logs)
    )


def run_day(run: dict[str, Any]) -> str:
    """The UTC day of a run's data interval (``YYYY-MM-DD``)."""
    return str(run["data_interval_start"])[:10]


def _create_backfill(airflow: LocalAirflow, body: dict[str, Any]) -> dict[str, Any]:
    """
    ``POST /api/v2/backfills`` while the DAG is still paused; again if SQLite was busy (bounded).

    On SQLite, Airflow 3.3 answers 503 "Database is locked. Backfill creation is not supported on
    SQLite under concurrent access" when another component holds the write lock longer than the
    driver waits, and then deletes the runs it had made so far. A scheduler that had already
    loaded those runs crashes (``ObjectDeletedError``: seen here when the backfill was created
    while the scheduler ran the DAG's scheduled run). So the backfill is created while the DAG is
    paused (the scheduler leaves its runs alone) and, after a 503, made again only if Airflow's
    clean-up left nothing behind.
    """
    attempts: list[str] = []

    def create() -> dict[str, Any] | None:
        if attempts and airflow.api("GET", f"backfills?dag_id={body['dag_id']}")["backfills"]:
            raise DemoError(f"a failed backfill creation left a partial backfill behind: {attempts}")
        try:
            return dict(airflow.api("POST", "backfills", body))
        except DemoError as err:
            if " 503: " not in str(err) or "locked" not in str(err):
                raise
            attempts.append(str(err))
            say("  SQLite was busy (503 'Database is locked'); asking again ...")
            return None

    return wait_for("Airflow to create the backfill", create, 60, every=1.0, logs=airflow.logs)


def warehouse_loads(airflow: LocalAirflow) -> dict[str, Any]:
    """The 6 days before yesterday backfilled, yesterday scheduled; then the middle day rerun."""
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    began = time.monotonic()
    backfill = _create_backfill(
        airflow,
        {
            "dag_id": WAREHOUSE,
            "from_date": (today - dt.timedelta(days=DAYS)).isoformat(),
            "to_date": (today - dt.timedelta(days=2)).isoformat(),
            "max_active_runs": 1,  # the warehouse is SQLite: one writer at a time
        },
    )
    # Unpaused, the scheduler starts the backfill's runs and (catchup=False) makes the run of the
    # latest complete interval, yesterday.
    airflow.api("PATCH", f"dags/{WAREHOUSE}", {"is_paused": False})
    say(f"backfill {backfill['id']} of {DAYS - 1} days created; the scheduler runs them one by one ...")

    def all_done() -> list[dict[str, Any]] | None:
        airflow.check_running()
        runs = _runs(airflow, WAREHOUSE)
        for run in runs:
            if run["state"] == "failed":
                raise _failed(airflow, WAREHOUSE, run)
        return runs if len(runs) == DAYS and all(r["state"] == "success" for r in runs) else None

    runs = wait_for(f"{DAYS} warehouse runs to succeed", all_done, RUN_TIMEOUT, every=0.5, logs=airflow.logs)
    loads = {
        run["dag_run_id"]: _xcom(airflow, WAREHOUSE, run["dag_run_id"], "load_warehouse") for run in runs
    }
    backfill_seconds = time.monotonic() - began
    for run in runs:
        load = loads[run["dag_run_id"]]
        say(f"  {run_day(run)} ({run['run_type']}): fetched {load['fetched']}, upserted {load['changed']}")

    db = warehouse_db(airflow)
    return {
        "runs": runs,
        "loads": loads,
        "backfill_id": backfill["id"],
        "seconds": backfill_seconds,
        "rerun": _rerun(airflow, db, runs[DAYS // 2]),
        "db": db,
    }


def _rerun(airflow: LocalAirflow, db: Path, middle: dict[str, Any]) -> dict[str, Any]:
    """Clear one warehouse run and wait for the scheduler to run it again; what it changed."""
    before = _checksum(db)
    say(f"clearing {run_day(middle)} (POST .../dagRuns/{middle['dag_run_id']}/clear) to rerun it ...")
    rerun_began = time.monotonic()
    airflow.api("POST", f"dags/{WAREHOUSE}/dagRuns/{middle['dag_run_id']}/clear", {"dry_run": False})

    def rerun_done() -> bool:
        airflow.check_running()
        run = airflow.api("GET", f"dags/{WAREHOUSE}/dagRuns/{middle['dag_run_id']}")
        if run["state"] == "failed":
            raise _failed(airflow, WAREHOUSE, run)
        tis = _task_instances(airflow, WAREHOUSE, middle["dag_run_id"])
        return run["state"] == "success" and all(ti["try_number"] >= 2 for ti in tis)

    wait_for(f"the rerun of {run_day(middle)}", rerun_done, RUN_TIMEOUT, every=0.5, logs=airflow.logs)
    rerun = _xcom(airflow, WAREHOUSE, middle["dag_run_id"], "load_warehouse")
    return {
        "run": middle,
        "load": rerun,
        "seconds": time.monotonic() - rerun_began,
        "tries": {
            ti["task_id"]: ti["try_number"]
            for ti in _task_instances(airflow, WAREHOUSE, middle["dag_run_id"])
        },
        "checksum_before": before,
        "checksum_after": _checksum(db),
    }


def _checksum(db: Path) -> str:
    """SHA-256 of every row of the warehouse's ``referrals`` table, in id order."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(db)) as conn:
        for row in conn.execute("SELECT * FROM referrals ORDER BY id"):
            digest.update(repr(row).encode())
    return digest.hexdigest()


def followup(airflow: LocalAirflow, emulator: Emulator) -> dict[str, Any]:
    """Trigger the follow-up; release referrals once its sensor is deferred; what it did."""
    airflow.api("PATCH", f"dags/{FOLLOWUP}", {"is_paused": False})
    triggered = dt.datetime.now(dt.timezone.utc)
    run_id = airflow.api("POST", f"dags/{FOLLOWUP}/dagRuns", {"logical_date": triggered.isoformat()})[
        "dag_run_id"
    ]

    def sensor_deferred() -> bool:
        airflow.check_running()
        tis = _task_instances(airflow, FOLLOWUP, run_id)
        return any(ti["task_id"] == "wait_for_new_referrals" and ti["state"] == "deferred" for ti in tis)

    wait_for("the follow-up sensor to be deferred", sensor_deferred, 90, logs=airflow.logs)
    deferred_after = (dt.datetime.now(dt.timezone.utc) - triggered).total_seconds()
    # The UI's log view of the waiting sensor: its file and, once the trigger runs, the trigger's.
    shown = wait_for(
        "the log view to show the deferred sensor's trigger log",
        lambda: trigger_log_shown(airflow, FOLLOWUP, run_id, "wait_for_new_referrals"),
        60,
        every=0.5,
        logs=airflow.logs,
    )
    say(f"follow-up sensor deferred {deferred_after:.1f} s after the trigger; its log view: {shown}")
    say(f"releasing {RELEASED} referrals")
    updates_before = emulator.admin("stats")["requests"].get("update", 0)
    released_at = dt.datetime.now(dt.timezone.utc)
    released = [r["id"] for r in emulator.admin("release_incoming", {"n": RELEASED})]

    def finished() -> dict[str, Any] | None:
        airflow.check_running()
        run = airflow.api("GET", f"dags/{FOLLOWUP}/dagRuns/{run_id}")
        if run["state"] == "failed":
            raise _failed(airflow, FOLLOWUP, run)
        return run if run["state"] == "success" else None

    run = wait_for("the follow-up run to finish", finished, RUN_TIMEOUT, every=0.5, logs=airflow.logs)
    tis = _task_instances(airflow, FOLLOWUP, run_id)
    accepts = sorted((ti for ti in tis if ti["task_id"] == "accept_referral"), key=lambda ti: ti["map_index"])
    results = [_xcom(airflow, FOLLOWUP, run_id, "accept_referral", ti["map_index"]) for ti in accepts]
    starts = [dt.datetime.fromisoformat(ti["start_date"]) for ti in accepts if ti["start_date"]]
    return {
        "run": run,
        "released": released,
        "results": results,
        "recorded": _xcom(airflow, FOLLOWUP, run_id, "record_outcomes"),
        "release_to_accept": min((s - released_at).total_seconds() for s in starts) if starts else None,
        "updates": emulator.admin("stats")["requests"].get("update", 0) - updates_before,
    }
