"""What the system scenarios compare: the emulator's own data, the warehouse, Airflow's records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from system_deployment import Airflow, EmulatorProcess, postgres_bin_dir, wait_until

LOOKBACK = dt.timedelta(hours=2)  # the warehouse DAG's lookback
#: Where the Celery deployment keeps its token cache and its outputs, below its bucket's prefix.
CELERY_TOKEN_CACHE = "partner-center/token-cache.json"
CELERY_OUTPUTS = "referrals/"
#: The LocalExecutor deployment's watermark folder (``referrals_event_driven``'s copy), below its
#: bucket's prefix, and the object the watcher keeps there (the trigger's default watermark_key).
EVENT_WATERMARKS = "event-driven/watermarks/"
EVENT_WATERMARK_OBJECT = EVENT_WATERMARKS + "partner_center_new_referrals.json"
BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")


def api_instant(moment: dt.datetime) -> str:
    """The emulator's stored spelling of an instant (7 fractional digits, Z): text order is time order."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def ids_updated_in(referrals: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> set[str]:
    """Ids of the referrals whose ``updatedDateTime`` lies in ``[start, end)``."""
    low, high = api_instant(start), api_instant(end)
    return {r["id"] for r in referrals if low <= r["updatedDateTime"] < high}


def warehouse_ids(db: Path) -> set[str]:
    """Ids in the warehouse's ``referrals`` table."""
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM referrals")}


def warehouse_checksum(db: Path) -> str:
    """SHA-256 over every row of ``referrals`` in id order."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(db)
    try:
        for row in conn.execute("SELECT id, updated_date_time, raw_json FROM referrals ORDER BY id"):
            digest.update(json.dumps(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


def postgres_connection(url: str) -> dict[str, Any]:
    """The Airflow ``postgres`` connection of a database the suite created (trust auth: no password)."""
    parts = urlsplit(url)
    return {
        "conn_type": "postgres",
        "host": parts.hostname,
        "port": parts.port,
        "login": parts.username,
        "schema": parts.path.lstrip("/"),
    }


def psql_rows(url: str, sql: str) -> list[list[str]]:
    """Rows of ``sql`` on the database of ``url``, read with ``psql`` (fields as text)."""
    parts = urlsplit(url)
    command = [str(postgres_bin_dir() / "psql"), "-h", str(parts.hostname), "-p", str(parts.port)]
    command += ["-U", str(parts.username), "-d", parts.path.lstrip("/"), "-At", "-F", "\t", "-c", sql]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in done.stdout.splitlines()]


def jsonl_ids(path: Path) -> list[str]:
    """The ids of one extracted JSONL file, in file order (repeats kept, to be counted)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["id"] for line in handle if line.strip()]


def parse_time(text: str | None) -> dt.datetime | None:
    """An ISO time from Airflow's REST API."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def blocked_loop_seconds(log: Path) -> list[float]:
    """Every ``Triggerer's async thread was blocked for X seconds`` the triggerer logged."""
    if not log.exists():
        return []
    return [float(x) for x in BLOCKED.findall(log.read_text(encoding="utf-8", errors="replace"))]


def wait_task_state(
    airflow: Airflow, dag_id: str, run_id: str, task_id: str, state: str, timeout: float
) -> dict[str, Any]:
    """Wait until a (non-mapped) task instance is in ``state``; return it."""

    def probe() -> dict[str, Any] | None:
        for ti in airflow.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["state"] == state:
                return ti
            if ti["task_id"] == task_id and ti["state"] in ("failed", "skipped", "upstream_failed"):
                raise AssertionError(f"{task_id} ended {ti['state']} while we waited for {state}")
        return None

    return wait_until(f"{dag_id}.{task_id} {state}", probe, timeout, 0.3, airflow.diagnostics)


def wait_faults_served(
    emu: EmulatorProcess, before: dict[str, int], kinds: list[str], timeout: float
) -> None:
    """Wait until the emulator served each scripted fault (its ``faults`` counters grew)."""

    def probe() -> bool:
        now = emu.stats()["faults"]
        return all(now.get(k, 0) - before.get(k, 0) >= kinds.count(k) for k in set(kinds))

    wait_until(f"the emulator to serve the faults {kinds}", probe, timeout, 0.3)


def referral_states(emu: EmulatorProcess, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The emulator's current record of each id."""
    return {r["id"]: r for r in emu.referrals() if r["id"] in ids}


def record_figure(name: str, value: Any) -> None:
    """Append one scenario figure to ``$PARTNER_CENTER_SYSTEM_FIGURES`` (JSON lines) and stdout."""
    line = json.dumps({"figure": name, "value": value}, default=str)
    print(f"[system figure] {line}")
    target = os.environ.get("PARTNER_CENTER_SYSTEM_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def backfill_and_wait(
    airflow: Airflow, dag_id: str, first: dt.datetime, days: int, timeout: float = 400
) -> tuple[list[dict[str, Any]], float]:
    """
    Unpause ``dag_id``, backfill ``days`` daily intervals from ``first`` one run at a time, and
    wait until those runs and the scheduled one that unpausing makes have succeeded.

    A failed run ends the wait at once (``wait_until`` counts a probe's exception as "not yet").

    :return: every run of the DAG (oldest first) and the seconds it took.
    """
    airflow.unpause(dag_id)
    began = time.monotonic()
    backfill = airflow.api(
        "POST",
        "backfills",
        {
            "dag_id": dag_id,
            "from_date": first.isoformat(),
            "to_date": (first + dt.timedelta(days=days - 1)).isoformat(),
            "max_active_runs": 1,
        },
    )

    def settled() -> list[dict[str, Any]] | None:
        path = f"dags/{dag_id}/dagRuns?limit=100&order_by=logical_date"
        runs: list[dict[str, Any]] = airflow.api("GET", path)["dag_runs"]
        if any(r["state"] == "failed" for r in runs):
            return runs
        backfilled = [r for r in runs if r["run_type"] == "backfill"]
        return runs if len(backfilled) == days and all(r["state"] == "success" for r in runs) else None

    runs = wait_until(f"backfill {backfill['id']} ({days} runs)", settled, timeout, 1, airflow.diagnostics)
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    if failed:
        raise AssertionError(f"{dag_id} runs failed: {failed}\n{airflow.diagnostics()}")
    return runs, time.monotonic() - began


def rerun_cleared(airflow: Airflow, dag_id: str, run_id: str, timeout: float = 180) -> float:
    """
    Clear one run (``POST .../clear``), wait until each of its tasks succeeded again, then pause
    the DAG (a paused DAG's cleared run would not run). Returns the seconds it took.
    """
    began = time.monotonic()
    airflow.api("POST", f"dags/{dag_id}/dagRuns/{run_id}/clear", {"dry_run": False})

    def rerun_done() -> bool:
        tis = airflow.task_instances(dag_id, run_id)
        return all(ti["state"] == "success" and ti["try_number"] >= 2 for ti in tis)

    wait_until(f"the cleared run {run_id} to run again", rerun_done, timeout, 1, airflow.diagnostics)
    airflow.unpause(dag_id, paused=True)
    return time.monotonic() - began
