"""The example DAGs folder parses cleanly, and the demo's emulator process never outlives it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dag_loading import dag_bag

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_example_dags_folder_parses_without_errors(airflow_db: Path) -> None:
    bag = dag_bag(REPO_ROOT / "example_dags")
    assert bag.import_errors == {}
    # .airflowignore keeps the helpers and the demo runner out of the DAG bag.
    dag_ids = {
        "referrals_warehouse_load",
        "referrals_delta_lake",
        "referrals_sample_queries",
        "referrals_followup",
        "referrals_event_driven",
        "partner_center_token_keepalive",
    }
    assert {Path(f).name for f in bag.file_last_changed} == {f"{dag_id}.py" for dag_id in dag_ids}
    assert set(bag.dag_ids) == dag_ids
    load = bag.get_dag("referrals_warehouse_load")
    assert [o.name for o in load.get_task("load_warehouse").outlets] == ["partner_center_referrals_warehouse"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone once reaped (Popen.wait in _stop reaps it).
    return True


def test_demo_emulator_process_stops_even_on_errors(tmp_path: Path) -> None:
    from example_dags.run_demo import emulator_process

    seen: dict[str, int] = {}

    def run_and_fail() -> None:
        with emulator_process(tmp_path / "state", referrals=50) as info:
            seen["pid"] = info["pid"]
            assert info["api_url"].startswith("https://127.0.0.1:")
            assert _alive(info["pid"])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_and_fail()
    assert not _alive(seen["pid"])


def test_demo_kills_a_child_that_ignores_sigterm() -> None:
    # Airflow's in-process task runner takes over SIGTERM in the demo's DAG-runs child.
    import signal
    import subprocess
    import sys

    from example_dags.run_demo import _stop

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    code += "time.sleep(60)"
    command = [sys.executable, "-c", code]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"

    _stop(child, grace=0.2)

    assert child.returncode == -signal.SIGKILL
    child.stdout.close()
