"""Two task runs that rotate the Partner Center refresh token through an Airflow Variable cache.

Used by tests/hooks/test_hook_in_task.py (linked into the DAGs folder by that test).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

with DAG(
    dag_id="hook_token_cache_rotation",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):

    @task
    def read_referrals() -> dict[str, int]:
        hook = PartnerCenterHook("pc_in_task")
        records = sum(1 for _ in hook.iter_referrals(top=3))
        return {"records": records, "token_requests": hook.tokens.token_requests}

    read_referrals.override(task_id="run_1")() >> read_referrals.override(task_id="run_2")()
