"""dag.test() of example_dags/referrals_sample_queries.py: each query equals plain-Python filtering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from example_dag_helpers import load_dag


def _newest_ids(records: list[dict[str, Any]], limit: int | None = None) -> list[str]:
    ordered = sorted(records, key=lambda r: r["createdDateTime"], reverse=True)
    return [r["id"] for r in ordered[:limit]]


def test_the_three_sample_requests(partner_center_emulator: Any, airflow_db: Path) -> None:
    truth = partner_center_emulator.referrals()
    run = load_dag("referrals_sample_queries").test()
    assert run.state == "success"

    def pulled(task_id: str) -> list[str]:
        return [r["id"] for r in run.get_task_instance(task_id).xcom_pull(task_ids=task_id)]

    cosell = [r for r in truth if r["type"] == "Shared" and r["direction"] == "Incoming"]
    leads = [r for r in truth if r["direction"] == "Incoming" and r["substatus"] == "Pending"]
    seller = [
        r
        for r in truth
        if (r["status"], r["direction"], r["type"]) == ("Active", "Outgoing", "Shared")
        and any(m.get("email") == "r2d2@contoso.com" for m in r.get("team") or [])
    ]
    # The operator sorts its output (see docs/operator.md), so compare the sets of ids.
    assert sorted(pulled("top_inbound_cosell")) == sorted(_newest_ids(cosell, 10))
    assert sorted(pulled("unanswered_inbound_leads")) == sorted(_newest_ids(leads, 10))
    assert len(seller) > 0
    assert sorted(pulled("active_outgoing_cosell_by_seller")) == sorted(r["id"] for r in seller)
