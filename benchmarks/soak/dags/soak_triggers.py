"""
The soak's DAGs: per connection an ``AssetWatcher`` and a deferred sensor, plus the probe.

``SOAK_CONNECTIONS`` connections ``soak_0`` ... each get an event trigger (the watcher of
``soak_new_referrals_<i>``) and a ``PartnerCenterNewReferralsSensor`` deferred for the whole soak
(no referral ever arrives), both checking every ``SOAK_POKE_INTERVAL`` seconds. ``soak_probe``
defers to :class:`benchmarks.soak.probe.SoakProbeTrigger`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, BaseOperator, task

from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor
from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsEventTrigger

CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "1"))
POKE_INTERVAL = float(os.environ.get("SOAK_POKE_INTERVAL", "0.2"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
START = pendulum.datetime(2026, 1, 1, tz="UTC")


class SoakProbeOperator(BaseOperator):
    """Defer to the probe trigger for the soak's length."""

    def execute(self, context: Any) -> None:
        from benchmarks.soak.probe import SoakProbeTrigger

        self.defer(trigger=SoakProbeTrigger(SECONDS), method_name="done")

    def done(self, context: Any, event: Any = None) -> None:
        """The probe fired: the soak is over."""


with DAG("soak_probe", schedule=None, start_date=START, catchup=False):
    SoakProbeOperator(task_id="probe")

for index in range(CONNECTIONS):
    conn_id = f"soak_{index}"
    asset = Asset(
        name=f"soak_new_referrals_{index}",
        uri=f"partnercenter://soak/{index}",
        watchers=[
            AssetWatcher(
                name=f"soak_watcher_{index}",
                trigger=PartnerCenterNewReferralsEventTrigger(
                    partner_center_conn_id=conn_id, poke_interval=POKE_INTERVAL
                ),
            )
        ],
    )
    with DAG(f"soak_event_{index}", schedule=asset, start_date=START, catchup=False):

        @task
        def noop() -> None:
            """Never runs: no referral arrives during the soak."""

        noop()

    with DAG(f"soak_sensor_{index}", schedule=None, start_date=START, catchup=False):
        PartnerCenterNewReferralsSensor(
            task_id="wait",
            partner_center_conn_id=conn_id,
            deferrable=True,
            poke_interval=POKE_INTERVAL,
            timeout=timedelta(days=1).total_seconds(),
        )
