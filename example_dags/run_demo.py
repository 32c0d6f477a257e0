"""
The README's main command (``make demo``): the example DAGs under a real Airflow, end to end.

1. Starts the Partner Center emulator (20,000 referrals over 60 days) and, meanwhile, migrates
   a fresh SQLite ``AIRFLOW_HOME`` under ``.demo/run/`` with the example DAGs linked into its
   DAGs folder.
2. Starts Airflow's ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``
   (LocalExecutor, no log servers: every socket on 127.0.0.1); waits until all report healthy and
   the DAGs are parsed. Stores the example connection (the emulator, a token cache in the
   Variable ``partner_center_token_cache``) and the warehouse's in the metadata database
   (``POST /api/v2/connections``) and presses the connection's Test button
   (``POST /api/v2/connections/test``, the fields as the UI's connection list sends them).
3. ``referrals_warehouse_load`` for the last 7 complete UTC days, into the SQLite warehouse of
   the connection ``partner_center_warehouse``: unpausing it makes the scheduler run yesterday, a
   backfill (``POST /api/v2/backfills``) the 6 days before; then one day is cleared and runs
   again, which changes nothing.
4. Triggers ``referrals_followup``; once its sensor is ``deferred`` in the triggerer, the emulator
   releases 3 new incoming referrals (``POST /_emulator/release_incoming``); the trigger finds
   them and one mapped task accepts each (``If-Match``).
5. Checks that the UI's log view shows a task's log and the deferred sensor's trigger log, and
   prints a summary read back from Airflow's REST API (JWT from ``/auth/token``), the warehouse
   and the emulator's own data, then stops every process (``--keep-ui``: prints the UI pages
   worth opening and waits for Ctrl-C first, the UI running).

Every process runs in a session of its own and is stopped by its process group (SIGTERM, then
SIGKILL), on success, on failure, on Ctrl-C and on SIGTERM. Every wait is bounded and fails
with the relevant log tails.

This module is the entry point and its signal handling; the rest lives in ``example_dags/demo/``:
``deployment.py`` (Airflow's processes and REST API), ``emulator.py`` (the emulator's process and
admin API), ``scenario.py`` (the connections, steps 3 and 4), ``ui.py`` (the stored connections,
the Test button, the pages and the log view) and ``summary.py`` (step 5's report).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from example_dags.demo.deployment import USER, DemoError, LocalAirflow
from example_dags.demo.emulator import REFERRALS, STARTUP_TIMEOUT, Emulator, emulator_process
from example_dags.demo.emulator import _stop as _stop  # re-exported: the tests stop a child with it
from example_dags.demo.scenario import (
    CONN_ID,
    FOLLOWUP,
    RUN_TIMEOUT,
    TOKEN_CACHE,
    WAREHOUSE,
    WAREHOUSE_CONN_ID,
    connections,
    followup,
    say,
    warehouse_loads,
)
from example_dags.demo.summary import journal_states, summary, window_ids
from example_dags.demo.ui import check_log, pages, store_connections, test_button

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
POKE_INTERVAL = 1.0  # seconds between the follow-up trigger's checks (production default: 60)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same path as Ctrl-C, so every ``finally`` below runs.
    raise KeyboardInterrupt(f"signal {signum}")


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


def _keep_ui(airflow: LocalAirflow, info: dict[str, Any]) -> None:
    """Leave everything running for a look at the UI, until Ctrl-C (or a component exits)."""
    say(f"Airflow UI: {airflow.url}  user {USER}, password {airflow.password}")
    say(f"  (the simple auth manager's passwords file: {airflow.passwords_file})")
    say("  pages worth opening (everything listens on 127.0.0.1 only):")
    for page in pages(airflow, CONN_ID, [WAREHOUSE, FOLLOWUP], WAREHOUSE):
        say(f"    {page.url}  {page.title}")
    say("  scheduler, triggerer and emulator keep running: trigger referrals_followup in the UI, then")
    say(
        f"  release referrals: curl --cacert {info['ca_bundle']} -H 'Authorization: Bearer "
        f"{info['admin_token']}' -d '{{\"n\": 2}}' {info['admin_url']}/release_incoming"
    )
    say("  Ctrl-C stops everything.")
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


def deploy(
    stack: ExitStack, run_dir: Path, cache: Path, ignore_signals: bool = False
) -> tuple[LocalAirflow, dict[str, Any]]:
    """
    Steps 1 and 2: the emulator and Airflow running, the connections stored and tested.

    :param stack: stops every process started here when it closes.
    :param run_dir: an empty folder for Airflow's home, the emulator's state and the data.
    :param cache: where a migrated empty database of this Airflow version is kept.
    :param ignore_signals: the stack ignores SIGINT and SIGTERM while it stops the processes.
    :return: the deployment and the emulator's info line.
    """
    began = time.monotonic()
    airflow = _airflow(run_dir)
    # Exit callbacks run last-in first-out: signals ignored, Airflow stopped, then the emulator
    # (the first airflow.stop covers a migration still running when the emulator fails to start).
    stack.callback(airflow.stop)
    airflow.prepare_database(cache)
    say(f"starting the emulator ({REFERRALS} referrals); Airflow's database: {airflow.db}")
    info = stack.enter_context(emulator_process(run_dir / "emulator-state"))
    stack.callback(airflow.stop)
    if ignore_signals:
        stack.callback(_ignore_signals)
    say(f"emulator ready at {info['api_url']} ({time.monotonic() - began:.1f} s)")
    airflow.env["REQUESTS_CA_BUNDLE"] = info["ca_bundle"]
    airflow.start()
    say("starting api-server, scheduler, dag-processor and triggerer (LocalExecutor, SQLite) ...")
    airflow.wait_ready(DAG_IDS, STARTUP_TIMEOUT)
    say(f"Airflow healthy, DAGs parsed ({time.monotonic() - began:.1f} s); API and UI at {airflow.url}")
    # In the metadata database, as a user creates them: Admin -> Connections lists them.
    store_connections(airflow, connections(airflow, info))
    say(f"connections {CONN_ID} and {WAREHOUSE_CONN_ID} stored (POST /api/v2/connections)")
    say(f"Test button: ok ({test_button(airflow, CONN_ID)})")
    return airflow, info


def run(keep_ui: bool) -> None:
    """The whole demo; every process it starts is stopped when it returns or raises."""
    began = time.monotonic()
    run_dir = DEMO_DIR / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    with ExitStack() as stack:
        airflow, info = deploy(stack, run_dir, DEMO_DIR / "cache", ignore_signals=True)
        emulator = Emulator(info)
        loads = warehouse_loads(airflow)
        # The ground truth of the warehouse (a few seconds of JSON) is read while the follow-up
        # runs; nothing writes those windows' referrals any more.
        expected = _in_background(window_ids, emulator, loads["runs"])
        follow = followup(airflow, emulator)
        say(
            "task logs in the UI (GET .../logs/{try}): "
            + check_log(airflow, WAREHOUSE, loads["runs"][0]["dag_run_id"], "load_warehouse")
            + "; "
            + check_log(
                airflow, FOLLOWUP, follow["run"]["dag_run_id"], "wait_for_new_referrals", trigger=True
            )
        )
        cached = airflow.api("GET", f"variables/{TOKEN_CACHE.removeprefix('variable://')}")
        truth = {
            "window_ids": expected.result(timeout=RUN_TIMEOUT),
            "states": journal_states(run_dir / "emulator-state"),
            "stats": emulator.admin("stats"),
            "cache_written": bool(cached.get("key")),
        }
        print(summary(airflow, loads, follow, truth), flush=True)
        say(f"demo done in {time.monotonic() - began:.1f} s")
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
        say("interrupted: Airflow and the emulator were stopped")
        return 130
    except DemoError as err:
        say(f"failed: {err}")
        say("Airflow and the emulator were stopped; .demo/run/ keeps the logs")
        return 1
    say(f"everything stopped ({time.monotonic() - began:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
