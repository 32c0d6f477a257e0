"""The follow-up's accept step against the emulator: If-Match, 412 re-read, retry once or skip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_partner.examples.followup import accept_referral, record_followups


def _hook() -> Any:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    return PartnerCenterHook()


def test_accept_fresh_stale_and_answered_elsewhere(partner_center_emulator: Any, tmp_path: Path) -> None:
    emu = partner_center_emulator
    fresh, stale, answered = emu.release_incoming(3)
    hook = _hook()

    # Someone edits one referral after we read it (new eTag), and declines another.
    hook.update_referral(stale["id"], [{"op": "replace", "path": "/statusReason", "value": "edited"}])
    hook.update_referral(
        answered["id"],
        [
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Declined"},
        ],
    )

    results = [accept_referral(hook, r) for r in (fresh, stale, answered)]
    assert results == [
        {
            "id": fresh["id"],
            "outcome": "accepted",
            "attempts": 1,
            "status": "Active",
            "substatus": "Accepted",
        },
        {
            "id": stale["id"],
            "outcome": "accepted",
            "attempts": 2,
            "status": "Active",
            "substatus": "Accepted",
        },
        {
            "id": answered["id"],
            "outcome": "skipped",
            "attempts": 2,
            "status": "Closed",
            "substatus": "Declined",
        },
    ]
    truth = {r["id"]: r for r in emu.referrals()}
    assert [(truth[r["id"]]["status"], truth[r["id"]]["substatus"]) for r in results] == [
        ("Active", "Accepted"),
        ("Active", "Accepted"),
        ("Closed", "Declined"),
    ]
    # Accepting again is a no-op: it is no longer new.
    assert accept_referral(hook, {"id": fresh["id"]})["outcome"] == "skipped"

    db = tmp_path / "warehouse.db"
    assert record_followups(results, db) == 3
    assert record_followups(results[:1], db) == 3
