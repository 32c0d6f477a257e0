"""Inside real task runs (dag.test): the Variable token cache goes through the Task SDK."""

from __future__ import annotations

import json
from pathlib import Path

from dag_loading import load_dag

from airflow_provider_partner.stores import open_store
from airflow_provider_partner.stores.variables import ENCRYPTED_PREFIX

DAG_FILE = Path(__file__).parent / "dags" / "hook_token_cache_dag.py"


def test_two_task_runs_rotate_the_token_through_an_sdk_variable(
    partner_center_emulator, connect, airflow_db, airflow_home: Path
) -> None:
    from airflow.models.variable import Variable

    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=60)
    connect(emu, "pc_in_task", credential_store="variable://partner_center_in_task_token_cache")
    link = airflow_home / "dags" / DAG_FILE.name
    if not link.exists():
        link.symlink_to(DAG_FILE)
    dag = load_dag("hook_token_cache_rotation", link)

    run = dag.test()

    assert run.state == "success"
    results = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    # run_2 uses the access token run_1 got (still valid): no second grant.
    assert results == {
        "run_1": {"records": 3, "token_requests": 1},
        "run_2": {"records": 3, "token_requests": 0},
    }
    assert emu.stats()["token_grants"]["refresh_token"] == 1
    raw = Variable.get("partner_center_in_task_token_cache")
    assert raw.startswith(ENCRYPTED_PREFIX)  # written through the Task SDK as ciphertext only
    stored = json.loads(open_store("variable://partner_center_in_task_token_cache").load() or "")
    assert len(stored["RefreshToken"]) == 1
    Variable.delete("partner_center_in_task_token_cache")
