"""
Keep the stored refresh token alive: redeem it once a week, whatever else runs.

Entra ID lets a refresh token die after 90 days unused (AADSTS700082); a connection used only
by a quarterly job, or paused DAGs, would need a person to sign in again. This task redeems the
token in the connection's credential store (under the store's lease, like any task), saves the
rotated cache and returns the token's age before and after, in days. The same from a shell:
``partner-center-login --conn-id partner_center_default --refresh``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

with DAG(
    dag_id="partner_center_token_keepalive",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["partner_center", "example", "maintenance"],
):

    @task(retries=3, retry_delay=pendulum.duration(hours=1))
    def renew_refresh_token(conn_id: str = "partner_center_default") -> dict[str, float | None]:
        """Redeem the stored refresh token once; return its age (days) before and after."""
        tokens = PartnerCenterHook(conn_id).tokens
        before = tokens.stored_refresh_token_age()
        tokens.refresh()
        after = tokens.refresh_token_age

        def days(age: timedelta | None) -> float | None:
            return None if age is None else round(age.total_seconds() / 86_400, 2)

        return {"age_days_before": days(before), "age_days_after": days(after)}

    renew_refresh_token()
