"""
The README's main command (``make demo``): the example DAGs against a local emulator, end to end.

1. Starts the Partner Center emulator (20,000 referrals over 60 days) as a subprocess.
2. Makes a fresh ``AIRFLOW_HOME`` under ``.demo/``, migrates its SQLite DB, links the example
   DAGs into its DAGs folder and points the ``partner_center_default`` connection at the emulator.
3. Runs ``referrals_warehouse_load`` for the last 7 complete days with ``dag.test()`` and reruns
   one of them to show that nothing is duplicated.
4. Runs ``referrals_followup`` with ``dag.test()``: its deferrable sensor finds nothing and
   defers; once it has polled, the emulator releases new incoming referrals (admin API
   ``POST /_emulator/release_incoming``); the trigger finds them, one mapped task accepts each
   (``If-Match``) and the outcomes go to the warehouse table ``referral_followups``.
5. Prints a summary.

Steps 2-5 run in a child process: Airflow's in-process task runner (``dag.test()``) takes over
SIGTERM and turns a Ctrl-C that lands inside a task into a task failure (then a retry), so only
a process that runs no task can always stop everything. This one starts the emulator and the
child, each in its own process group, and on exit, Ctrl-C or SIGTERM stops both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".demo"
EXAMPLE_DAGS = Path(__file__).resolve().parent
NOT_DAGS = {"__init__.py", "run_demo.py"}
REFERRALS = 20_000
SEED = 2026
DAYS = 7
RELEASED = 3
POKE_INTERVAL = 1.0  # seconds between the follow-up trigger's checks (production default: 60)
STARTUP_TIMEOUT = 120.0
# How the parent hands the emulator's info line to the child that runs the DAGs.
INFO_ENV = "PARTNER_CENTER_DEMO_EMULATOR"
DAG_RUNS_FLAG = "--dag-runs"


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same path as Ctrl-C, so every ``finally`` below runs.
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def emulator_process(state_dir: Path, referrals: int = REFERRALS) -> Iterator[dict[str, Any]]:
    """Run the emulator CLI in its own process group; yield its info line; always stop it."""
    command = [
        sys.executable,
        "-m",
        "partner_center_emulator",
        "--port",
        "0",
        "--referrals",
        str(referrals),
        "--seed",
        str(SEED),
        "--state-dir",
        str(state_dir),
    ]
    # The command is this interpreter and fixed arguments; its own session lets us kill the group.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)  # noqa: S603
    try:
        info = _read_info_line(proc)
        info["pid"] = proc.pid
        yield info
    finally:
        _stop(proc)


def _read_info_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_TIMEOUT):
            raise RuntimeError(f"the emulator printed nothing within {STARTUP_TIMEOUT:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the emulator exited with code {proc.wait()} before it was ready")
    info: dict[str, Any] = json.loads(line)
    return info


def _stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def prepare_airflow_home(run_dir: Path, info: dict[str, Any]) -> dict[str, Path]:
    """Set the environment Airflow reads at import, migrate the DB and link the example DAGs."""
    from cryptography.fernet import Fernet

    home, dags, data = run_dir / "airflow", run_dir / "airflow" / "dags", run_dir / "data"
    dags.mkdir(parents=True)
    data.mkdir()
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # A throwaway key: the connection and XComs of this run are stored encrypted, as in
            # production (and Airflow does not warn that they are not).
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW_CONN_PARTNER_CENTER_DEFAULT": info["airflow_conn"],
            "REQUESTS_CA_BUNDLE": info["ca_bundle"],
            "PARTNER_CENTER_DATA_DIR": str(data),
            "PARTNER_CENTER_POKE_INTERVAL": str(POKE_INTERVAL),
        }
    )
    for dag_file in sorted(EXAMPLE_DAGS.glob("*.py")):
        if dag_file.name not in NOT_DAGS:
            (dags / dag_file.name).symlink_to(dag_file)
    from airflow.utils.db import initdb

    initdb()
    return {"home": home, "dags": dags, "data": data, "db": home / "airflow.db"}


def load_dag(dags: Path, dag_id: str) -> Any:
    """Parse one DAG from its linked file (dag.test() needs a DAG that came from a file)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags / f"{dag_id}.py"))
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise RuntimeError(f"{dag_id} did not load: {bag.import_errors}")
    return dag


def run_warehouse_loads(dags: Path) -> list[dict[str, Any]]:
    """The last DAYS complete days, oldest first, then a rerun of the middle one."""
    dag = load_dag(dags, "referrals_warehouse_load")
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [today - dt.timedelta(days=n) for n in range(DAYS, 0, -1)]
    rows: list[dict[str, Any]] = []
    for number, start in enumerate([*starts, starts[DAYS // 2]], start=1):
        began = time.monotonic()
        run = dag.test(logical_date=start + dt.timedelta(days=1))
        if run.state != "success":
            raise RuntimeError(f"referrals_warehouse_load for {start:%Y-%m-%d} ended {run.state}")
        result = run.get_task_instance("load_warehouse").xcom_pull(task_ids="load_warehouse")
        row = {
            "day": f"{start:%Y-%m-%d}",
            "rerun": number > DAYS,
            "seconds": time.monotonic() - began,
            **result,
        }
        _say(
            f"{row['day']}{' (rerun)' if row['rerun'] else ''}: fetched {row['fetched']}, "
            f"upserted {row['changed']}, warehouse rows {row['rows']} ({row['seconds']:.1f} s)"
        )
        rows.append(row)
    return rows


def _admin(info: dict[str, Any], action: str, body: Any = None) -> Any:
    import requests

    url = f"{info['admin_url']}/{action}"
    verify = info["ca_bundle"]
    headers = {"Authorization": f"Bearer {info['admin_token']}"}  # the admin endpoints need it
    response = (
        requests.post(url, json=body, headers=headers, verify=verify, timeout=30)
        if body is not None
        else requests.get(url, headers=headers, verify=verify, timeout=30)
    )
    response.raise_for_status()
    return response.json()


def _release_when_polled(info: dict[str, Any], released: list[dict[str, Any]], stop: threading.Event) -> None:
    # Release the new referrals once the sensor has polled at least once: they then arrive
    # while the follow-up DAG waits, as they would in production.
    baseline = _admin(info, "stats")["requests"].get("list", 0)
    while not stop.wait(0.2):
        if _admin(info, "stats")["requests"].get("list", 0) > baseline:
            released.extend(_admin(info, "release_incoming", {"n": RELEASED}))
            return


def run_followup(dags: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``referrals_followup`` while new incoming referrals arrive; what it accepted."""
    dag = load_dag(dags, "referrals_followup")
    released: list[dict[str, Any]] = []
    stop = threading.Event()
    releaser = threading.Thread(target=_release_when_polled, args=(info, released, stop), daemon=True)
    began = time.monotonic()
    _say(f"follow-up: waiting (deferred sensor) for new referrals; the emulator releases {RELEASED} ...")
    releaser.start()
    try:
        run = dag.test()
    finally:
        stop.set()
        releaser.join(timeout=10)
    if run.state != "success":
        raise RuntimeError(f"referrals_followup ended {run.state}")
    mapped = sorted(
        (ti for ti in run.get_task_instances() if ti.task_id == "accept_referral"),
        key=lambda ti: ti.map_index,
    )
    # One mapped task per referral the sensor returned: their outcomes, in the sensor's order.
    results = [ti.xcom_pull(task_ids="accept_referral", map_indexes=ti.map_index) for ti in mapped]
    recorded = run.get_task_instance("record_outcomes").xcom_pull(task_ids="record_outcomes")
    return {
        "released": [r["id"] for r in released],
        "results": results,
        "accepted": recorded["accepted"],
        "rows": recorded["rows"],
        "seconds": time.monotonic() - began,
    }


def summary(paths: dict[str, Path], loads: list[dict[str, Any]], followup: dict[str, Any]) -> str:
    """The readable end-of-demo report."""
    warehouse = paths["data"] / "warehouse.db"
    conn = sqlite3.connect(warehouse)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM referrals").fetchone()[0]
        by_status = conn.execute(
            "SELECT status, COUNT(*) FROM referrals GROUP BY status ORDER BY 2 DESC"
        ).fetchall()
    finally:
        conn.close()
    unique: set[str] = set()
    for jsonl in sorted((paths["data"] / "referrals").glob("*.jsonl")):
        with jsonl.open(encoding="utf-8") as handle:
            unique.update(json.loads(line)["id"] for line in handle if line.strip())
    lines = ["", "=" * 72, "Partner Center referrals demo: summary", "=" * 72]
    lines.append(f"{'interval (UTC day)':<22}{'fetched':>9}{'written':>9}{'upserted':>10}{'rows after':>12}")
    for load in loads:
        day = load["day"] + (" rerun" if load["rerun"] else "")
        lines.append(
            f"{day:<22}{load['fetched']:>9}{load['written']:>9}{load['changed']:>10}{load['rows']:>12}"
        )
    rerun = loads[-1]
    lines.append(
        f"Rerun of {rerun['day']}: {rerun['changed']} rows changed, table still {rerun['rows']} rows "
        f"(idempotent)."
    )
    lines.append(
        f"Warehouse rows: {rows} = unique referral ids across the {DAYS} files ({len(unique)}): "
        f"{'OK' if rows == len(unique) else 'MISMATCH'}"
    )
    lines.append("  by status: " + ", ".join(f"{status} {count}" for status, count in by_status))
    same = sorted(followup["accepted"]) == sorted(followup["released"])
    lines.append(
        f"Follow-up run ({followup['seconds']:.1f} s): {len(followup['released'])} new incoming referrals "
        f"arrived while the sensor waited; accepted {len(followup['accepted'])} "
        f"({'= the arrivals: OK' if same else 'MISMATCH with the arrivals'}):"
    )
    lines.extend(
        f"  {r['id']}  {r['outcome']} -> {r['status']}/{r['substatus']} (attempts {r['attempts']})"
        for r in followup["results"]
    )
    lines.append(f"  recorded in referral_followups ({followup['rows']} rows)")
    lines.append(f"Files:         {paths['data'] / 'referrals'}")
    lines.append(f"Warehouse:     {warehouse}  (tables referrals, referral_followups)")
    lines.append(f"Airflow home:  {paths['home']}")
    return "\n".join(lines)


def run_dags() -> int:
    """The child: Airflow home, the DAG runs and the summary, against the parent's emulator."""
    info = json.loads(os.environ.pop(INFO_ENV))
    # Noise from a test client Airflow imports, not from anything the demo does.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    paths = prepare_airflow_home(DEMO_DIR / "run", info)
    _say(f"Airflow home {paths['home']} migrated; loading {DAYS} daily intervals ...")
    loads = run_warehouse_loads(paths["dags"])
    followup = run_followup(paths["dags"], info)
    print(summary(paths, loads, followup), flush=True)
    return 0


def _run_child(info: dict[str, Any]) -> int:
    command = [sys.executable, "-m", "example_dags.run_demo", DAG_RUNS_FLAG]
    env = {**os.environ, INFO_ENV: json.dumps(info)}
    # This interpreter and fixed arguments; its own session keeps terminal signals for us.
    proc = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603
    try:
        return proc.wait()
    finally:
        _stop(proc, grace=2.0)  # a task may have taken over SIGTERM: SIGKILL soon after


def main() -> int:
    """Run the demo; returns the process exit code."""
    began = time.monotonic()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    run_dir = DEMO_DIR / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    _say(f"starting the emulator ({REFERRALS} referrals over 60 days) ...")
    try:
        with emulator_process(run_dir / "emulator-state") as info:
            _say(f"emulator ready at {info['api_url']} ({time.monotonic() - began:.1f} s)")
            code = _run_child(info)
    except KeyboardInterrupt:
        _say("interrupted: the DAG runs and the emulator were stopped")
        return 130
    if code != 0:
        _say(f"the DAG runs failed (exit code {code}); the emulator was stopped")
        return code
    _say(f"done in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_dags() if sys.argv[1:] == [DAG_RUNS_FLAG] else main())
