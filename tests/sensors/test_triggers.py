"""The triggers' run() driven with asyncio against the emulator (as the triggerer would)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sensor_helpers import list_requests

from airflow_provider_partner.compat import import_string
from airflow_provider_partner.extract.new_referrals import NewReferralsQuery
from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsTrigger


async def _first_event(trigger: Any, timeout: float = 60) -> dict[str, Any]:
    events: AsyncIterator[Any] = trigger.run()
    try:
        event = await asyncio.wait_for(events.__anext__(), timeout)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return dict(event.payload)


def _rebuilt(trigger: Any) -> Any:
    # What the triggerer does: classpath + kwargs through JSON, then import and construct.
    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**json.loads(json.dumps(kwargs)))


def _query(start: dt.datetime, **overrides: Any) -> dict[str, Any]:
    # `start` is the emulator's now: referrals it releases next are created after it.
    return NewReferralsQuery(created_after=start, **overrides).serialize()


def _retry_once_conn(emu: Any, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.05, **extra})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))


def test_serialized_trigger_rebuilds_to_the_same_kwargs() -> None:
    trigger = PartnerCenterNewReferralsTrigger(
        query=_query(
            dt.datetime(2026, 11, 27, 9, tzinfo=dt.timezone.utc), filter="type eq 'Shared'", min_count=2
        ),
        partner_center_conn_id="pc",
        poke_interval=5,
        exponential_backoff=True,
        max_wait=60,
        timeout_at="2026-11-27T10:00:00+00:00",
    )
    rebuilt = _rebuilt(trigger)
    assert type(rebuilt) is PartnerCenterNewReferralsTrigger
    assert rebuilt.serialize() == trigger.serialize()
    assert (
        trigger.serialize()[0]
        == "airflow_provider_partner.triggers.referrals.PartnerCenterNewReferralsTrigger"
    )


def test_fires_success_with_exactly_the_arrivals(emu: Any, arrivals_after_pokes: Any) -> None:
    trigger = _rebuilt(
        PartnerCenterNewReferralsTrigger(query=_query(emu.now(), min_count=3), poke_interval=0.05)
    )
    arrivals = arrivals_after_pokes(emu, 3, after_requests=2)

    event = asyncio.run(_first_event(trigger))

    assert event["status"] == "success"
    assert [r["id"] for r in event["referrals"]] == arrivals.ids
    assert event["more"] is False
    assert "direction eq 'Incoming' and status eq 'New' and createdDateTime ge " in event["filter"]


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(["503", "500", "reset"], id="network-and-server"),
        # A proxy's HTML page, a page cut off in transit and a malformed one: each fails one check.
        pytest.param(["html", "truncated", "malformed"], id="unusable-pages"),
    ],
)
def test_transient_failures_are_tolerated_then_the_wait_goes_on(
    emu: Any, monkeypatch: pytest.MonkeyPatch, arrivals_after_pokes: Any, faults: list[str]
) -> None:
    _retry_once_conn(emu, monkeypatch, max_retries=0)
    emu.script_faults(faults)
    trigger = _rebuilt(
        PartnerCenterNewReferralsTrigger(
            query=_query(emu.now()), poke_interval=0.05, max_consecutive_errors=4
        )
    )
    arrivals = arrivals_after_pokes(emu, 1, after_requests=4)

    event = asyncio.run(_first_event(trigger))

    assert event["status"] == "success"
    assert [r["id"] for r in event["referrals"]] == arrivals.ids
    assert emu.stats()["faults"] == dict.fromkeys(faults, 1)


def test_too_many_transient_failures_in_a_row_fail_with_the_last_cause(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retry_once_conn(emu, monkeypatch, max_retries=0)
    emu.script_faults(["503", "503", "503"])
    trigger = PartnerCenterNewReferralsTrigger(
        query=_query(emu.now()), poke_interval=0.01, max_consecutive_errors=3
    )

    event = asyncio.run(_first_event(trigger))

    assert event["status"] == "error"
    assert event["message"].startswith("Gave up after 3 failed checks in a row; the last one: ")
    assert "HTTP 503 on GET" in event["message"]
    assert list_requests(emu) == 3


def test_a_missing_role_fails_at_once_with_the_cause(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"]["refresh_token"] = emu.issue_refresh_token(emu.users["norole"]["username"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    trigger = PartnerCenterNewReferralsTrigger(query=_query(emu.now()), poke_interval=0.01)

    event = asyncio.run(_first_event(trigger))

    assert event["status"] == "error"
    assert "HTTP 403" in event["message"]
    assert "role" in event["message"].lower()
    assert list_requests(emu) == 1


def test_times_out_with_a_clear_event(emu: Any) -> None:
    timeout_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.3)).isoformat()
    trigger = PartnerCenterNewReferralsTrigger(
        query=_query(emu.now()), poke_interval=0.05, timeout_at=timeout_at
    )

    event = asyncio.run(_first_event(trigger))

    assert event == {"status": "timeout", "message": f"No 1 new referral(s) by {timeout_at}."}
    assert list_requests(emu) >= 1  # how many checks fit before the deadline depends on the machine


def test_an_invalid_query_fails_with_the_reason() -> None:
    trigger = PartnerCenterNewReferralsTrigger(
        query={**_query(dt.datetime(2026, 11, 27, 9, tzinfo=dt.timezone.utc)), "min_count": 0},
        poke_interval=0.01,
    )

    event = asyncio.run(_first_event(trigger))

    assert event == {"status": "error", "message": "min_count must be an integer from 1 to 1000, got 0."}


def test_exponential_backoff_doubles_the_interval_up_to_max_wait() -> None:
    from airflow_provider_partner.triggers.referrals import _next_interval

    assert [_next_interval(5, False, n, None) for n in range(4)] == [5, 5, 5, 5]
    assert [_next_interval(5, True, n, None) for n in range(4)] == [5, 10, 20, 40]
    assert [_next_interval(5, True, n, 30) for n in range(5)] == [5, 10, 20, 30, 30]


def test_bad_pages_in_a_row_still_end_the_wait_with_the_cause(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retry_once_conn(emu, monkeypatch, max_retries=0)
    emu.script_faults(["html", "html"])
    trigger = PartnerCenterNewReferralsTrigger(
        query=_query(emu.now()), poke_interval=0.01, max_consecutive_errors=2
    )

    event = asyncio.run(_first_event(trigger))

    assert event["status"] == "error"
    assert event["message"].startswith("Gave up after 2 failed checks in a row; the last one: Expected JSON")
    assert "Content-Type 'text/html" in event["message"]
    assert list_requests(emu) == 2
