"""The new-referrals sensor in each mode, with a follow-up task mapped over what it returns.

tests/sensors/test_sensor_dags.py runs these with dag.test() while the emulator releases arrivals.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_partner.compat import CronDataIntervalTimetable
from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor


@task
def follow_up(referral: dict) -> str:
    """Stand-in for the real follow-up: returns the referral id it was given."""
    return f"{referral['id']}:{referral['status']}"


for mode in ("poke", "reschedule", "deferrable"):
    with DAG(
        dag_id=f"test_sensor_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["test"],
    ):
        wait = PartnerCenterNewReferralsSensor(
            task_id="wait",
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=1 if mode == "reschedule" else 0.2,
            timeout=120,
            min_count=2,
        )
        follow_up.expand(referral=wait.output)

with DAG(
    dag_id="test_sensor_hourly_intervals",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    hourly = PartnerCenterNewReferralsSensor(
        task_id="wait",
        filter="type eq 'Shared'",
        timeout=dt.timedelta(seconds=5),
        poke_interval=0.5,
        soft_fail=True,
    )
    follow_up.expand(referral=hourly.output)
