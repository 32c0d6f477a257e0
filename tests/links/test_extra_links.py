"""The operator's and the sensor's extra links after real dag.test() runs, read as the API server does."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lineage_helpers import dag_from_folder

from airflow_provider_partner.links import (
    REFERRALS_WORKSPACE_URL,
    NewestReferralLink,
    ReferralsWorkspaceLink,
    newest_referral_id,
    referral_url,
)

pytestmark = pytest.mark.dag

WORKSPACE = "https://partner.microsoft.com/dashboard/referrals/v2/leads"


def _links(run, task_id: str) -> dict[str, str | None]:
    """The task instance's links as ``GET .../taskInstances/{task_id}/links`` computes them."""
    from airflow.models.serialized_dag import SerializedDagModel

    ti = run.get_task_instance(task_id)
    task = SerializedDagModel.get_dag(run.dag_id).get_task(task_id)
    return {name: task.get_extra_links(ti, name) or None for name in sorted(task.extra_links)}


def _midnight(days_ago: int) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days_ago)


def test_the_operator_links_to_the_referrals_workspace(partner_center_emulator, airflow_db, out_dir):
    run = dag_from_folder("test_lineage_referrals").test(logical_date=_midnight(1))

    assert run.state == "success"
    assert _links(run, "extract") == {"Partner Center referrals": WORKSPACE}


def test_the_sensor_links_to_the_workspace_and_to_the_newest_referral_it_returned(
    partner_center_emulator, airflow_db
):
    emu = partner_center_emulator
    run = dag_from_folder("test_lineage_new_referrals").test()

    assert run.state == "success"
    returned = run.get_task_instance("wait").xcom_pull(task_ids="wait")
    waiting = {r["id"]: r for r in emu.referrals() if (r["direction"], r["status"]) == ("Incoming", "New")}
    assert len(returned) == 10 < len(waiting)
    assert {r["id"] for r in returned} <= set(waiting)
    newest = max(returned, key=lambda r: (waiting[r["id"]]["createdDateTime"], r["id"]))
    assert _links(run, "wait") == {
        "Newest referral": f"{WORKSPACE}/{newest['id']}",
        "Partner Center referrals": WORKSPACE,
    }


def test_a_run_that_returned_no_referral_has_no_newest_referral_link():
    class Ran:
        newest_referral_id = None

    assert NewestReferralLink().get_link(Ran(), ti_key=None) == ""  # type: ignore[arg-type]
    assert ReferralsWorkspaceLink().get_link(Ran(), ti_key=None) == REFERRALS_WORKSPACE_URL  # type: ignore[arg-type]


def test_newest_referral_compares_instants_not_text():
    referrals = [
        {"id": "b", "createdDateTime": "2026-11-30T10:00:00Z"},
        {"id": "a", "createdDateTime": "2026-11-30T10:00:00.5Z"},
        {"id": "c"},
    ]

    assert newest_referral_id(referrals) == "a"
    assert newest_referral_id([]) is None
    assert referral_url("id/with space") == f"{WORKSPACE}/id%2Fwith%20space"


def test_airflow_lists_the_link_classes_of_the_provider():
    airflow = str(Path(sys.executable).with_name("airflow"))
    out = subprocess.run(
        [airflow, "providers", "links", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = {row["extra_link_class_name"] for row in json.loads(out.stdout)}
    assert {n for n in names if n.startswith("airflow_provider_partner.")} == {
        "airflow_provider_partner.links.NewestReferralLink",
        "airflow_provider_partner.links.ReferralsWorkspaceLink",
    }
