"""
The README's main command (``make demo``): the example DAGs under a real Airflow, end to end.

1. Starts the Partner Center emulator (20,000 referrals over 60 days) and, meanwhile, migrates
   a fresh SQLite ``AIRFLOW_HOME`` under ``.demo/run/`` with the example DAGs linked into its
   DAGs folder.
2. Starts Airflow's ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``
   (LocalExecutor), the example connection pointing at the emulator with a token cache in the
   Variable ``partner_center_token_cache``; waits until all report healthy and the DAGs are parsed.
3. ``referrals_warehouse_load`` for the last 7 complete UTC days, into the SQLite warehouse of
   the connection ``partner_center_warehouse``: unpausing it makes the scheduler run yesterday, a
   backfill (``POST /api/v2/backfills``) the 6 days before; then one day is cleared and runs
   again, which changes nothing.
4. Triggers ``referrals_followup``; once its sensor is ``deferred`` in the triggerer, the emulator
   releases 3 new incoming referrals (``POST /_emulator/release_incoming``); the trigger finds
   them and one mapped task accepts each (``If-Match``).
5. Prints a summary read back from Airflow's REST API (JWT from ``/auth/token``), the warehouse
   and the emulator's own data, then stops every process (``--keep-ui``: waits for Ctrl-C first,
   the UI running).

Every process runs in a session of its own and is stopped by its process group (SIGTERM, then
SIGKILL), on success, on failure, on Ctrl-C and on SIGTERM. Every wait is bounded and fails
with the relevant log tails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import requests

from example_dags.demo.deployment import USER, DemoError, LocalAirflow, log_tail, stop_group, wait_for

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".demo"
EXAMPLE_DAGS = Path(__file__).resolve().parent
NOT_DAGS = {"__init__.py", "run_demo.py"}
DAG_IDS = {
    "referrals_warehouse_load",
    "referrals_followup",
    "referrals_event_driven",
    "referrals_sample_queries",
}
WAREHOUSE, FOLLOWUP = "referrals_warehouse_load", "referrals_followup"
WAREHOUSE_CONN_ID = "partner_center_warehouse"  # the warehouse DAG's connection
REFERRALS = 20_000
SEED = 2026
DAYS = 7
LOOKBACK = dt.timedelta(hours=2)  # the warehouse load's ``lookback`` (referrals_warehouse_load.py)
RELEASED = 3
POKE_INTERVAL = 1.0  # seconds between the follow-up trigger's checks (production default: 60)
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 180.0
# Where the hook keeps the rotating refresh token: a Variable, as production would.
TOKEN_CACHE = "variable://partner_center_token_cache"  # noqa: S105 - a location, not a secret


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same path as Ctrl-C, so every ``finally`` below runs.
    raise KeyboardInterrupt(f"signal {signum}")


def _stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop ``proc``'s process group: SIGTERM, SIGKILL after ``grace`` s."""
    stop_group(proc, grace)


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
        if proc.stdout is not None:
            proc.stdout.close()


def _read_info_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_TIMEOUT):
            raise DemoError(f"the emulator printed nothing within {STARTUP_TIMEOUT:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise DemoError(f"the emulator exited with code {proc.wait()} before it was ready")
    info: dict[str, Any] = json.loads(line)
    return info


class Emulator:
    """The running emulator's admin API (plain HTTPS with its admin token)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def admin(self, action: str, body: Any = None) -> Any:
        """GET ``/_emulator/<action>``, or POST it when there is a body."""
        response = requests.request(
            "POST" if body is not None else "GET",
            f"{self.info['admin_url']}/{action}",
            json=body,
            headers={"Authorization": f"Bearer {self.info['admin_token']}"},
            verify=self.info["ca_bundle"],
            timeout=60,
        )
        response.raise_for_status()
        return response.json()


# ---------------------------------------------------------------------------------------------
# The scenario, through Airflow's REST API


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


def _day(run: dict[str, Any]) -> str:
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
            _say("  SQLite was busy (503 'Database is locked'); asking again ...")
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
    _say(f"backfill {backfill['id']} of {DAYS - 1} days created; the scheduler runs them one by one ...")

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
        _say(f"  {_day(run)} ({run['run_type']}): fetched {load['fetched']}, upserted {load['changed']}")

    db = _warehouse_db(airflow)
    before = _checksum(db)
    middle = runs[DAYS // 2]
    _say(f"clearing {_day(middle)} (POST .../dagRuns/{middle['dag_run_id']}/clear) to rerun it ...")
    rerun_began = time.monotonic()
    airflow.api("POST", f"dags/{WAREHOUSE}/dagRuns/{middle['dag_run_id']}/clear", {"dry_run": False})

    def rerun_done() -> bool:
        airflow.check_running()
        run = airflow.api("GET", f"dags/{WAREHOUSE}/dagRuns/{middle['dag_run_id']}")
        if run["state"] == "failed":
            raise _failed(airflow, WAREHOUSE, run)
        tis = _task_instances(airflow, WAREHOUSE, middle["dag_run_id"])
        return run["state"] == "success" and all(ti["try_number"] >= 2 for ti in tis)

    wait_for(f"the rerun of {_day(middle)}", rerun_done, RUN_TIMEOUT, every=0.5, logs=airflow.logs)
    rerun = _xcom(airflow, WAREHOUSE, middle["dag_run_id"], "load_warehouse")
    return {
        "runs": runs,
        "loads": loads,
        "backfill_id": backfill["id"],
        "seconds": backfill_seconds,
        "rerun": {
            "run": middle,
            "load": rerun,
            "seconds": time.monotonic() - rerun_began,
            "tries": {
                ti["task_id"]: ti["try_number"]
                for ti in _task_instances(airflow, WAREHOUSE, middle["dag_run_id"])
            },
            "checksum_before": before,
            "checksum_after": _checksum(db),
        },
        "db": db,
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
    _say(
        f"follow-up sensor deferred {deferred_after:.1f} s after the trigger; releasing {RELEASED} referrals"
    )
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


# ---------------------------------------------------------------------------------------------
# The summary


def window_ids(emulator: Emulator, runs: list[dict[str, Any]]) -> set[str]:
    """From the emulator's own data: the ids updated in the runs' windows (each with the lookback)."""
    from airflow_provider_partner.instants import sort_key

    referrals = emulator.admin("referrals")  # every referral: 64 MB for 20,000, a few seconds
    ids: set[str] = set()
    for run in runs:
        start = dt.datetime.fromisoformat(run["data_interval_start"]) - LOOKBACK
        low, high = sort_key(start.isoformat()), sort_key(run["data_interval_end"])
        ids |= {r["id"] for r in referrals if low <= sort_key(r["updatedDateTime"]) < high}
    return ids


def journal_states(state_dir: Path) -> dict[str, str]:
    """
    The emulator's journal (``journal.jsonl`` of its state dir): every referral written since
    generation, in order; the last status/substatus of each.
    """
    states: dict[str, str] = {}
    with (state_dir / "journal.jsonl").open(encoding="utf-8") as journal:
        for line in journal:
            if line.strip():
                record = json.loads(line)
                states[record["id"]] = f"{record['status']}/{record['substatus']}"
    return states


def summary(
    airflow: LocalAirflow, loads: dict[str, Any], follow: dict[str, Any], truth: dict[str, Any]
) -> str:
    """The end-of-demo report: Airflow's record of the runs, checked against the data."""
    with closing(sqlite3.connect(loads["db"])) as conn:
        warehouse = {row[0] for row in conn.execute("SELECT id FROM referrals")}
        by_status = conn.execute(
            "SELECT status, COUNT(*) FROM referrals GROUP BY status ORDER BY 2 DESC"
        ).fetchall()
    rule = "=" * 78
    lines = ["", rule, "Partner Center referrals demo: what the scheduler ran (from REST /api/v2)", rule]
    lines.append(
        f"{'data interval (UTC)':<22}{'run type':<11}{'state':<9}"
        f"{'seconds':>8}{'fetched':>9}{'written':>9}{'upserted':>10}"
    )
    for run in loads["runs"]:
        load = loads["loads"][run["dag_run_id"]]
        seconds = (
            dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
        ).total_seconds()
        lines.append(
            f"{_day(run):<22}{run['run_type']:<11}{run['state']:<9}{seconds:>8.1f}"
            f"{load['fetched']:>9}{load['written']:>9}{load['changed']:>10}"
        )
    rerun = loads["rerun"]
    same = rerun["checksum_before"] == rerun["checksum_after"]
    tries = ", ".join(f"{task} try {n}" for task, n in rerun["tries"].items())
    lines.append(
        f"{DAYS} runs in {loads['seconds']:.1f} s: backfill {loads['backfill_id']} and the scheduled run."
    )
    lines.append(
        f"Cleared {_day(rerun['run'])}, rerun by the scheduler in {rerun['seconds']:.1f} s ({tries}): "
        "upserted "
        f"{rerun['load']['changed']}, table still {rerun['load']['rows']} rows, SHA-256 "
        f"{'unchanged (idempotent)' if same else 'CHANGED'}."
    )
    expected = truth["window_ids"]
    lines.append(
        f"Warehouse: {len(warehouse)} rows = the {len(expected)} ids the emulator updated in those {DAYS} "
        f"windows (2 h lookback included): {'OK' if warehouse == expected else 'MISMATCH'}"
    )
    lines.append("  by status: " + ", ".join(f"{status} {count}" for status, count in by_status))
    recorded, released = follow["recorded"], follow["released"]
    lines.append(
        f"Follow-up run {follow['run']['dag_run_id']}: {follow['run']['state']}. {len(released)} referrals "
        f"released while its sensor was deferred in the triggerer;"
    )
    latency = follow["release_to_accept"]
    lines.append(
        f"  accepted {len(recorded['accepted'])} "
        f"({'= the released: OK' if sorted(recorded['accepted']) == sorted(released) else 'MISMATCH'}), "
        f"{follow['updates']} PATCHes at the emulator"
        + (f", first accept task started {latency:.1f} s after the release:" if latency is not None else ":")
    )
    lines.extend(
        f"  {r['id']}  {r['outcome']} (attempts {r['attempts']}); "
        f"emulator journal: {truth['states'].get(r['id'])}"
        for r in follow["results"]
    )
    lines.append(f"  recorded in the warehouse table referral_followups ({recorded['rows']} rows)")
    stats = truth["stats"]
    lines.append(
        f"Token cache {TOKEN_CACHE} ({'written by the hook' if truth['cache_written'] else 'MISSING'}): "
        f"{stats['token_grants']['refresh_token']} refresh-token grant(s) in all, for "
        f"{stats['requests'].get('list', 0)} list and {stats['requests'].get('update', 0)} update requests."
    )
    lines.append(f"Files:         {Path(airflow.env['PARTNER_CENTER_DATA_DIR']) / 'referrals'}")
    dialects = sorted({load["dialect"] for load in loads["loads"].values()})
    lines.append(
        f"Warehouse:     {loads['db']}  (connection {WAREHOUSE_CONN_ID}, {'/'.join(dialects)}; "
        "tables referrals, referral_followups)"
    )
    lines.append(f"Airflow home:  {airflow.home}  (component-logs/, task logs in logs/)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def _airflow(run_dir: Path) -> LocalAirflow:
    data = run_dir / "data"
    data.mkdir(parents=True)
    airflow = LocalAirflow(
        run_dir / "airflow",
        {
            "PARTNER_CENTER_DATA_DIR": str(data),
            "PARTNER_CENTER_POKE_INTERVAL": str(POKE_INTERVAL),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        },
    )
    for dag_file in sorted(EXAMPLE_DAGS.glob("*.py")):
        if dag_file.name not in NOT_DAGS:
            (airflow.dags / dag_file.name).symlink_to(dag_file)
    return airflow


def _connect(airflow: LocalAirflow, info: dict[str, Any]) -> None:
    """The emulator's example connection, with a token cache as production configures it."""
    conn = json.loads(info["airflow_conn"])
    conn["extra"]["credential_store"] = TOKEN_CACHE  # replaces the emulator's own file store
    airflow.env["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"] = json.dumps(conn)
    airflow.env["REQUESTS_CA_BUNDLE"] = info["ca_bundle"]
    # The warehouse load writes through an Airflow connection, as a deployment defines one (a
    # postgres connection works the same: docs/warehouse.md); the follow-ups share the file.
    warehouse = {"conn_type": "sqlite", "host": str(_warehouse_db(airflow))}
    airflow.env[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"] = json.dumps(warehouse)


def _warehouse_db(airflow: LocalAirflow) -> Path:
    return Path(airflow.env["PARTNER_CENTER_DATA_DIR"]) / "warehouse.db"


def _keep_ui(airflow: LocalAirflow, info: dict[str, Any]) -> None:
    """Leave everything running for a look at the UI, until Ctrl-C (or a component exits)."""
    _say(f"Airflow UI: {airflow.url}  user {USER}, password {airflow.password}")
    _say(f"  (the simple auth manager's passwords file: {airflow.passwords_file})")
    _say("  scheduler, triggerer and emulator keep running: trigger referrals_followup in the UI, then")
    _say(
        f"  release referrals: curl --cacert {info['ca_bundle']} -H 'Authorization: Bearer "
        f"{info['admin_token']}' -d '{{\"n\": 2}}' {info['admin_url']}/release_incoming"
    )
    _say("  Ctrl-C stops everything.")
    while True:  # until Ctrl-C or SIGTERM (a KeyboardInterrupt here: the ExitStack stops all)
        airflow.check_running()
        time.sleep(1.0)


def _in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """
    ``function(*args)`` in a daemon thread; its result as a future.

    A daemon thread, not an executor: on Ctrl-C nothing waits for it (the executor's exit would
    wait for a download that is of no use any more before stopping anything).
    """
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits for the result
            future.set_exception(err)

    threading.Thread(target=work, name="demo-ground-truth", daemon=True).start()
    return future


def _ignore_signals() -> None:
    # A second Ctrl-C must not cut the stopping short; every stop is bounded (SIGKILL).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run(keep_ui: bool) -> None:
    """The whole demo; every process it starts is stopped when it returns or raises."""
    began = time.monotonic()
    run_dir = DEMO_DIR / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    airflow = _airflow(run_dir)
    # Exit callbacks run last-in first-out: signals ignored, Airflow stopped, then the emulator
    # (the first airflow.stop covers a migration still running when the emulator fails to start).
    with ExitStack() as stack:
        stack.callback(airflow.stop)
        airflow.prepare_database(DEMO_DIR / "cache")
        _say(f"starting the emulator ({REFERRALS} referrals); Airflow's database: {airflow.db}")
        info = stack.enter_context(emulator_process(run_dir / "emulator-state"))
        stack.callback(airflow.stop)
        stack.callback(_ignore_signals)
        _say(f"emulator ready at {info['api_url']} ({time.monotonic() - began:.1f} s)")
        _connect(airflow, info)
        airflow.start()
        _say("starting api-server, scheduler, dag-processor and triggerer (LocalExecutor, SQLite) ...")
        airflow.wait_ready(DAG_IDS, STARTUP_TIMEOUT)
        _say(f"Airflow healthy, DAGs parsed ({time.monotonic() - began:.1f} s); API and UI at {airflow.url}")
        emulator = Emulator(info)
        loads = warehouse_loads(airflow)
        # The ground truth of the warehouse (a few seconds of JSON) is read while the follow-up
        # runs; nothing writes those windows' referrals any more.
        expected = _in_background(window_ids, emulator, loads["runs"])
        follow = followup(airflow, emulator)
        cached = airflow.api("GET", f"variables/{TOKEN_CACHE.removeprefix('variable://')}")
        truth = {
            "window_ids": expected.result(timeout=RUN_TIMEOUT),
            "states": journal_states(run_dir / "emulator-state"),
            "stats": emulator.admin("stats"),
            "cache_written": bool(cached.get("key")),
        }
        print(summary(airflow, loads, follow, truth), flush=True)
        _say(f"demo done in {time.monotonic() - began:.1f} s")
        if keep_ui:
            _keep_ui(airflow, info)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m example_dags.run_demo", description=__doc__.split("\n")[1]
    )
    parser.add_argument(
        "--keep-ui", action="store_true", help="leave Airflow (and its UI) running until Ctrl-C"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run(args.keep_ui)
    except KeyboardInterrupt:
        _say("interrupted: Airflow and the emulator were stopped")
        return 130
    except DemoError as err:
        _say(f"failed: {err}")
        _say("Airflow and the emulator were stopped; .demo/run/ keeps the logs")
        return 1
    _say(f"everything stopped ({time.monotonic() - began:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
