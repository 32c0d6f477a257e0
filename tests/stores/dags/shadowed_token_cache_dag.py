"""One task that renews the refresh token of connection ``pc_shadow`` and reads three referrals.

Used by tests/stores/test_variable_shadowing.py (linked into the DAGs folder by that test): the
connection's credential store is a ``variable://`` key that a secrets backend may shadow.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

with DAG(
    dag_id="shadowed_token_cache",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    # A retry runs in the same process (dag.test()): it must be refused as well, without a grant.
    @task(retries=1, retry_delay=dt.timedelta(0))
    def renew_and_read() -> dict[str, int]:
        hook = PartnerCenterHook("pc_shadow")
        # A renewal saves a rotated cache, as every run does once its access token is old.
        hook.tokens.refresh()
        records = sum(1 for _ in hook.iter_referrals(top=3))
        return {"records": records, "token_requests": hook.tokens.token_requests}

    renew_and_read()
