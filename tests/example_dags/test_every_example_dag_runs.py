"""
Every example DAG runs with ``dag.test()`` against the emulator, on every combination of the matrix.

Three have their own test file with exact expectations; the two without are run here. A new
example DAG fails ``test_every_example_dag_has_a_dag_test`` until it has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dag_loading import dag_bag
from example_dag_helpers import load_dag

from airflow_provider_partner.examples.followup import OUTCOMES

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
HERE = Path(__file__).resolve().parent
# dag_id -> the test file that runs it with dag.test() and checks what it did.
RUN_ELSEWHERE = {
    "referrals_warehouse_load": "test_warehouse_dag.py",
    "referrals_sample_queries": "test_sample_queries_dag.py",
    "referrals_followup": "test_followup_dag.py",
    # In tests/warehouse (the main venv's deltalake; the matrix venvs skip it).
    "referrals_delta_lake": "../warehouse/test_delta_dag.py",
}
RUN_HERE = ("referrals_event_driven", "partner_center_token_keepalive")


def test_every_example_dag_has_a_dag_test(airflow_db: Path) -> None:
    assert set(dag_bag(EXAMPLE_DAGS).dag_ids) == set(RUN_ELSEWHERE) | set(RUN_HERE)
    for dag_id, file in RUN_ELSEWHERE.items():
        text = (HERE / file).read_text()
        assert f'load_dag("{dag_id}")' in text, file
        assert ".test(" in text, file


def test_the_event_driven_dag_runs_without_events(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path
) -> None:
    # A run with no triggering events (a manual run) accepts nothing and records nothing.
    run = load_dag("referrals_event_driven").test()
    assert run.state == "success"
    result = run.get_task_instance("follow_up").xcom_pull(task_ids="follow_up")
    assert result == {**{outcome: [] for outcome in OUTCOMES}, "rows": 0}


def test_the_keepalive_dag_redeems_the_stored_refresh_token(
    partner_center_emulator: Any, airflow_db: Path
) -> None:
    grants = partner_center_emulator.stats()["token_grants"].get("refresh_token", 0)
    run = load_dag("partner_center_token_keepalive").test()
    assert run.state == "success"
    ages = run.get_task_instance("renew_refresh_token").xcom_pull(task_ids="renew_refresh_token")
    assert set(ages) == {"age_days_before", "age_days_after"}
    assert ages["age_days_after"] == 0.0  # a refresh token issued just now
    assert partner_center_emulator.stats()["token_grants"]["refresh_token"] == grants + 1
