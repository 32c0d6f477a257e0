"""
The waiting logs a person reads: INFO only on news, a heartbeat hourly, DEBUG for the rest.

:class:`QuietWaitLog` with a fake clock (a day of checks in a millisecond), then the real
deferrable sensor's trigger and the ``AssetWatcher`` event trigger against the emulator, their
exact INFO and WARNING lines captured from Airflow's structlog loggers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from sensor_helpers import list_requests

from airflow_provider_partner.extract.new_referrals import NewReferralsQuery
from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor
from airflow_provider_partner.triggers.referrals import (
    PartnerCenterNewReferralsEventTrigger,
    PartnerCenterNewReferralsTrigger,
)
from airflow_provider_partner.triggers.wait_log import QuietWaitLog
from airflow_provider_partner.triggers.watermark import Watermark

START = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)


class FakeClock:
    """A UTC clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "wait"]


@pytest.fixture
def wait(caplog: pytest.LogCaptureFixture) -> tuple[QuietWaitLog, FakeClock]:
    caplog.set_level(logging.DEBUG, logger="wait")
    clock = FakeClock()
    return QuietWaitLog(logging.getLogger("wait"), clock=clock), clock


def test_a_day_of_checks_at_60_s_writes_24_info_lines(
    wait: tuple[QuietWaitLog, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    log, clock = wait
    for _ in range(1440):
        log.check("0 of 1 referral(s) so far", 0, 60)
        clock.advance(60)

    info = _lines(caplog, logging.INFO)
    assert len(info) == 24
    assert info[0] == (
        "0 of 1 referral(s) so far; next check in 60 s (INFO again when this changes, after a "
        "failed check, and every 1 h)"
    )
    assert info[1] == (
        "Still waiting (61 checks since 2026-12-01T08:00:00Z, 1 h): 0 of 1 referral(s) so far; "
        "next check in 60 s"
    )
    assert info[23] == (
        "Still waiting (1381 checks since 2026-12-01T08:00:00Z, 23 h): 0 of 1 referral(s) so far; "
        "next check in 60 s"
    )
    assert len(_lines(caplog, logging.DEBUG)) == 1440 - 24


def test_changes_failures_and_recovery_are_info_and_restart_the_hour(
    wait: tuple[QuietWaitLog, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    log, clock = wait
    for found in (0, 0, 1, 1):
        log.check(f"{found} of 3 referral(s) so far", found, 60)
        clock.advance(60)
    log.failed("Check failed (%d of %d tolerated in a row), will try again: %s", 1, 4, "HTTP 503")
    clock.advance(60)
    log.check("1 of 3 referral(s) so far", 1, 60)
    clock.advance(3540)  # 59 min after the last INFO line: no heartbeat yet
    log.check("1 of 3 referral(s) so far", 1, 60)
    clock.advance(60)
    log.check("1 of 3 referral(s) so far", 1, 60)

    assert _lines(caplog, logging.INFO) == [
        "0 of 3 referral(s) so far; next check in 60 s (INFO again when this changes, after a failed "
        "check, and every 1 h)",
        "1 of 3 referral(s) so far (changed); next check in 60 s",
        "Checks work again after 1 failed check(s): 1 of 3 referral(s) so far; next check in 60 s",
        "Still waiting (8 checks since 2026-12-01T08:00:00Z, 1 h 5 min): 1 of 3 referral(s) so far; "
        "next check in 60 s",
    ]
    assert _lines(caplog, logging.WARNING) == [
        "Check failed (1 of 4 tolerated in a row), will try again: HTTP 503"
    ]
    assert _lines(caplog, logging.DEBUG) == [
        "0 of 3 referral(s) so far; next check in 60 s",
        "1 of 3 referral(s) so far; next check in 60 s",
        "1 of 3 referral(s) so far; next check in 60 s",
    ]


def test_a_rescheduled_sensor_writes_the_heartbeat_on_the_first_poke_past_each_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wait")
    clock = FakeClock()
    # Each poke of a rescheduled sensor is a process of its own: a fresh log per poke.
    for _ in range(1, 150):
        clock.advance(60)
        poke = QuietWaitLog.resume(logging.getLogger("wait"), since=START, interval=60, clock=clock)
        poke.check("0 of 1 referral(s) so far", 0, 60)

    assert _lines(caplog, logging.INFO) == [
        "Still waiting (since 2026-12-01T08:00:00Z, 1 h): 0 of 1 referral(s) so far; next check in 60 s",
        "Still waiting (since 2026-12-01T08:00:00Z, 2 h): 0 of 1 referral(s) so far; next check in 60 s",
    ]


# -- the real triggers against the emulator ------------------------------------------------------


def _emitted(logs: list[dict[str, Any]], level: str) -> list[str]:
    return [str(entry["event"]) for entry in logs if entry["log_level"] == level]


async def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    # A readiness condition (the emulator's request counter), with a wide deadline for busy CI.
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def test_the_sensors_trigger_logs_the_first_check_a_change_and_a_recovery_at_info(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.05, "max_retries": 0})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    trigger = PartnerCenterNewReferralsTrigger(
        query=NewReferralsQuery(created_after=emu.now(), min_count=3).serialize(),
        poke_interval=0.05,
        max_consecutive_errors=4,
    )

    async def scenario() -> dict[str, Any]:
        events = trigger.run()
        fired = asyncio.ensure_future(events.__anext__())
        try:
            await _until(lambda: list_requests(emu) >= 5)  # five checks with nothing new
            first = emu.release_incoming(1)
            seen = list_requests(emu) + 2  # a check that began after the release has ended
            await _until(lambda: list_requests(emu) >= seen)
            emu.script_faults(["503"])  # the next check fails once, then checking goes on
            await _until(lambda: emu.stats()["faults"] == {"503": 1})
            seen = list_requests(emu) + 2
            await _until(lambda: list_requests(emu) >= seen)
            rest = emu.release_incoming(2)
            event = await asyncio.wait_for(fired, 60)
        finally:
            fired.cancel()
            await asyncio.gather(fired, return_exceptions=True)
            await events.aclose()  # type: ignore[attr-defined]
        payload = dict(event.payload)
        assert [r["id"] for r in payload["referrals"]] == [r["id"] for r in first + rest]
        return payload

    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(scenario())["status"] == "success"

    assert _emitted(logs, "info") == [
        "0 of 3 referral(s) so far; next check in 0 s (INFO again when this changes, after a failed "
        "check, and every 1 h)",
        "1 of 3 referral(s) so far (changed); next check in 0 s",
        "Checks work again after 1 failed check(s): 1 of 3 referral(s) so far; next check in 0 s",
    ]
    # Airflow 3.1 adds one of its own about the connection type's name: only the wait's count here.
    warnings = [line for line in _emitted(logs, "warning") if "referral" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "Check for new referrals failed (1 of 3 tolerated in a row), will try again: The API kept "
        "answering with a transient error after all retries; "
    )
    assert '"description":"Injected fault: try again later."' in warnings[0]
    # Every other check (at least the four quiet ones before the first arrival) wrote DEBUG only.
    assert list_requests(emu) >= 9


def test_the_event_trigger_logs_its_watermark_and_each_event_at_info_and_no_quiet_check(
    emu: Any, tmp_path: Any
) -> None:
    start = Watermark.start(None, emu.now()).created_after
    trigger = PartnerCenterNewReferralsEventTrigger(
        start_after=start,
        poke_interval=0.05,
        watermark_location=f"file://{tmp_path}/",
    )

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        events = trigger.run()
        fired = asyncio.ensure_future(events.__anext__())
        try:
            await _until(lambda: list_requests(emu) >= 5)
            made = emu.release_incoming(2)
            event = await asyncio.wait_for(fired, 60)
            fired = asyncio.ensure_future(events.__anext__())
            seen = list_requests(emu) + 3
            await _until(lambda: list_requests(emu) >= seen)
        finally:
            fired.cancel()
            await asyncio.gather(fired, return_exceptions=True)
            await events.aclose()  # type: ignore[attr-defined]
        return dict(event.payload), made

    with structlog.testing.capture_logs() as logs:
        payload, made = asyncio.run(scenario())

    assert payload["ids"] == [r["id"] for r in made]
    mark = json.loads((tmp_path / "partner_center_new_referrals.json").read_text())["created_after"]
    info = _emitted(logs, "info")
    assert info == [
        f"Watching for referrals created from {start} on (watermark in file://{tmp_path}/"
        "partner_center_new_referrals.json); a check every 0 s (INFO for each event, after a failed "
        "check, and every 1 h)",
        f"Firing an event for 2 new referral(s) created {made[0]['createdDateTime']} .. "
        f"{made[1]['createdDateTime']}",
    ]
    # The watermark moved to the newest referral fired; no check after it was news.
    assert mark == made[1]["createdDateTime"]


def test_a_poking_sensor_logs_its_window_and_first_check_at_info_then_only_news(emu: Any) -> None:
    sensor = PartnerCenterNewReferralsSensor(task_id="wait", created_after=emu.now(), min_count=2)
    context: dict[str, Any] = {}

    with structlog.testing.capture_logs() as logs:
        pokes = [sensor.poke(context) for _ in range(5)]  # type: ignore[arg-type]
        made = emu.release_incoming(1)
        pokes.append(sensor.poke(context))  # type: ignore[arg-type]

    assert pokes == [False] * 6
    query = sensor.query_for({}, announce=False)
    assert _emitted(logs, "info") == [
        f"Window on createdDateTime from created_after/created_before: [{query.created_after}, open)",
        f"0 of 2 referral(s) so far matching direction eq 'Incoming' and status eq 'New' and "
        f"createdDateTime ge {query.created_after}; next check in 60 s (INFO again when this changes, "
        "after a failed check, and every 1 h)",
        "1 of 2 referral(s) so far (changed); next check in 60 s",
    ]
    assert made[0]["createdDateTime"] > query.created_after
