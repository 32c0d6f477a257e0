"""The sensor's window, pokes and validation, against the emulator without a DAG run."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import PokeReturnValue
from sensor_helpers import list_requests

from airflow_provider_partner.errors import PartnerCenterConfigError, PartnerCenterPermissionError
from airflow_provider_partner.extract.new_referrals import DEFAULT_FIELDS
from airflow_provider_partner.sensors.referrals import PartnerCenterNewReferralsSensor

T0 = pendulum.datetime(2026, 11, 20, tz="UTC")
T1 = pendulum.datetime(2026, 11, 21, tz="UTC")


def _sensor(**kwargs: Any) -> PartnerCenterNewReferralsSensor:
    return PartnerCenterNewReferralsSensor(task_id="wait", **kwargs)


def _window(sensor: PartnerCenterNewReferralsSensor, context: dict[str, Any]) -> tuple[Any, Any]:
    query = sensor.query_for(context)
    return query.created_after, query.created_before


def test_the_window_comes_from_the_data_interval_when_the_run_has_one() -> None:
    context = {"data_interval_start": T0, "data_interval_end": T1, "logical_date": T0}
    assert _window(_sensor(), context) == ("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")


def test_a_run_without_interval_waits_for_arrivals_after_its_logical_date() -> None:
    context = {"data_interval_start": T1, "data_interval_end": T1, "logical_date": T1}
    assert _window(_sensor(), context) == ("2026-11-21T00:00:00Z", None)


def test_a_manual_run_without_logical_date_waits_from_when_it_was_triggered() -> None:
    run = SimpleNamespace(run_after=pendulum.datetime(2026, 11, 22, 9, 30, 15, 250000, tz="UTC"))
    assert _window(_sensor(), {"dag_run": run}) == ("2026-11-22T09:30:15.250000Z", None)


def test_explicit_bounds_win_and_strings_without_offset_are_utc() -> None:
    sensor = _sensor(created_after="2026-11-01T08:00:00", created_before="2026-11-01T10:00:00+01:00")
    context = {"data_interval_start": T0, "data_interval_end": T1}
    assert _window(sensor, context) == ("2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z")


def test_no_anchor_at_all_names_the_fix() -> None:
    with pytest.raises(
        PartnerCenterConfigError, match=r"Set created_after \(e\.g\. '\{\{ data_interval_start \}\}'\)"
    ):
        _sensor().query_for({})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_count": 5, "max_referrals": 3}, "min_count (5) cannot exceed max_referrals (3)."),
        ({"max_referrals": 1001}, "max_referrals must be an integer from 1 to 1000, got 1001."),
        ({"select": ["id", "customerProfile/name"]}, "Invalid $select field 'customerProfile/name'"),
        ({"expiring_within": 3600}, "expiring_within must be a timedelta, got int."),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((PartnerCenterConfigError, ValueError)) as err:
        _sensor(**kwargs)
    assert message in str(err.value)


def test_an_empty_explicit_window_is_refused() -> None:
    sensor = _sensor(created_after="2026-11-02", created_before="2026-11-01")
    with pytest.raises(
        PartnerCenterConfigError, match="The window is empty: created_after 2026-11-02T00:00:00Z"
    ):
        sensor.query_for({})


def test_each_poke_is_one_request_and_returns_the_arrivals_oldest_first(emu: Any) -> None:
    start = emu.now()  # the emulator's clock: what it releases next is created after it
    sensor = _sensor(created_after=start.isoformat(), min_count=2)
    before = list_requests(emu)
    assert sensor.poke({}) is False
    emu.release_incoming(1)
    assert sensor.poke({}) is False
    released = emu.release_incoming(2)

    result = sensor.poke({})

    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert [r["id"] for r in result.xcom_value] == [r["id"] for r in emu.referrals()[-3:]]
    assert result.xcom_value[-1]["id"] == released[-1]["id"]
    assert list_requests(emu) - before == 3


def test_more_matches_than_max_referrals_return_the_oldest_with_a_warning(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    start = emu.now()  # the emulator's clock: what it releases next is created after it
    released = [r["id"] for r in emu.release_incoming(5)]
    sensor = _sensor(created_after=start.isoformat(), max_referrals=3)
    before = list_requests(emu)

    result = sensor.poke({})
    logged = capsys.readouterr().out  # the task logger (structlog) writes to stdout

    assert isinstance(result, PokeReturnValue)
    assert [r["id"] for r in result.xcom_value] == released[:3]
    assert list_requests(emu) - before == 2
    assert "More than 3 referrals match; returning the oldest 3 (they expire first)." in logged


def test_exactly_max_referrals_matching_is_not_reported_as_more(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    start = emu.now()  # the emulator's clock: what it releases next is created after it
    released = [r["id"] for r in emu.release_incoming(3)]
    sensor = _sensor(created_after=start.isoformat(), max_referrals=3)

    result = sensor.poke({})
    logged = capsys.readouterr().out  # the task logger (structlog) writes to stdout

    assert isinstance(result, PokeReturnValue)
    assert [r["id"] for r in result.xcom_value] == released
    assert "More than" not in logged


def test_expiring_within_finds_unanswered_referrals_close_to_their_deadline(emu: Any) -> None:
    now = dt.datetime.now(dt.timezone.utc)

    def expiring_in(hours: float) -> str:
        moment = now + dt.timedelta(hours=hours)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

    soon = emu.release_incoming(1, expirationDateTime=expiring_in(10), type="Shared")
    emu.release_incoming(1, expirationDateTime=expiring_in(30), type="Shared")
    expected = [
        r["id"]
        for r in emu.referrals()
        if r["direction"] == "Incoming"
        and r["status"] == "New"
        and r["type"] == "Shared"
        and (r.get("expirationDateTime") or "9") < expiring_in(24)
    ]
    sensor = _sensor(expiring_within=dt.timedelta(hours=24), filter="type eq 'Shared'", max_referrals=1000)

    result = sensor.poke({})

    assert isinstance(result, PokeReturnValue)
    assert soon[0]["id"] in expected
    assert sorted(r["id"] for r in result.xcom_value) == sorted(expected)


def test_a_user_without_a_referrals_role_gets_the_cause(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"]["refresh_token"] = emu.issue_refresh_token(emu.users["norole"]["username"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))

    with pytest.raises(PartnerCenterPermissionError, match="HTTP 403"):
        _sensor(created_after="2026-11-01").poke({})


def test_trigger_events_end_the_deferred_wait_as_airflow_users_expect() -> None:
    from airflow.sdk.exceptions import AirflowException

    from airflow_provider_partner.compat import AirflowSensorTimeout, AirflowSkipException

    sensor = _sensor(deferrable=True)
    found = [{"id": "a", "createdDateTime": "2026-11-27T10:00:00.0000000Z"}]
    assert sensor.execute_complete({}, {"status": "success", "referrals": found, "more": False}) == found
    with pytest.raises(AirflowSensorTimeout, match=r"^No 1 new referral\(s\) by 2026"):
        sensor.execute_complete({}, {"status": "timeout", "message": "No 1 new referral(s) by 2026-11-27"})
    with pytest.raises(AirflowSkipException, match=r"Sensor timed out \(soft_fail\): No 1"):
        _sensor(deferrable=True, soft_fail=True).execute_complete(
            {}, {"status": "timeout", "message": "No 1 new referral(s) by 2026-11-27"}
        )
    with pytest.raises(AirflowException, match=r"^Waiting for new referrals failed: HTTP 403"):
        sensor.execute_complete({}, {"status": "error", "message": "HTTP 403"})


def test_more_than_a_page_of_matches_returns_the_oldest_across_pages(emu: Any) -> None:
    start = emu.now()  # the emulator's clock: what it releases next is created after it
    released = [r["id"] for r in emu.release_incoming(160)]
    sensor = _sensor(created_after=start.isoformat(), max_referrals=150)

    result = sensor.poke({})

    assert isinstance(result, PokeReturnValue)
    assert [r["id"] for r in result.xcom_value] == released[:150]


def test_a_poke_asks_for_the_newest_few_with_a_small_select(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    asked: list[dict[str, Any]] = []
    original = PartnerCenterHook.iter_pages

    def recording(self: PartnerCenterHook, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(PartnerCenterHook, "iter_pages", recording)
    sensor = _sensor(created_after="2026-11-27T10:00:00Z", filter="type eq 'Shared'", max_referrals=10)

    sensor.poke({})

    assert asked == [
        {
            "filter": "direction eq 'Incoming' and status eq 'New' and type eq 'Shared' "
            "and createdDateTime ge 2026-11-27T10:00:00Z",
            "orderby": "createdDateTime desc",
            "select": DEFAULT_FIELDS,
            "top": 10,
        }
    ]


def _logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    # Task loggers go through stdlib logging, or to stdout once Airflow has set up structlog.
    return caplog.text + capsys.readouterr().out


def test_soft_fail_skips_a_timed_out_wait_but_an_error_fails_the_task(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk.exceptions import AirflowException

    from airflow_provider_partner.compat import AirflowSkipException, TaskDeferralError

    sensor = _sensor(deferrable=True, soft_fail=True)
    error = {"event": {"status": "error", "message": "Expected JSON for page 1 but got text/html"}}
    with pytest.raises(AirflowException, match=r"^Waiting for new referrals failed: Expected JSON") as failed:
        sensor.resume_execution("execute_complete", error, {})
    assert not isinstance(failed.value, AirflowSkipException)
    assert "Waiting for new referrals failed: Expected JSON for page 1 but got text/html" in _logged(
        caplog, capsys
    )

    timeout = {"event": {"status": "timeout", "message": "No 1 new referral(s) by 2026-11-27"}}
    with pytest.raises(AirflowSkipException, match=r"^Sensor timed out \(soft_fail\): No 1 new referral"):
        sensor.resume_execution("execute_complete", timeout, {})
    assert "Skipping (soft_fail): No 1 new referral(s) by 2026-11-27" in _logged(caplog, capsys)

    # The triggerer's own backstop timeout is a timeout too; a crashed trigger is an error.
    with pytest.raises(AirflowSkipException, match=r"The deferred wait timed out"):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, {})
    with pytest.raises(TaskDeferralError, match="boom"):
        sensor.resume_execution("__fail__", {"error": "boom"}, {})


def test_never_fail_still_skips_an_error_and_logs_why(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_partner.compat import AirflowSkipException

    sensor = _sensor(deferrable=True, never_fail=True)
    error = {"event": {"status": "error", "message": "HTTP 403"}}
    with pytest.raises(AirflowSkipException, match=r"never_fail.*HTTP 403"):
        sensor.resume_execution("execute_complete", error, {})
    logged = _logged(caplog, capsys)
    assert "Skipping (never_fail) after an error: Waiting for new referrals failed: HTTP 403" in logged


def test_filter_params_keep_the_sensors_own_conditions(emu: Any) -> None:
    start = emu.now()  # the emulator's clock: what it releases next is created after it
    shared = [r["id"] for r in emu.release_incoming(2, type="Shared")]
    emu.release_incoming(1, type="Independent")
    escape = "Shared' or 'a' eq 'a') or ('a' eq 'a"

    bound = _sensor(created_after=start.isoformat(), filter="type eq :kind", filter_params={"kind": "Shared"})
    escaped = _sensor(created_after=start.isoformat(), filter="type eq :kind", filter_params={"kind": escape})
    result = bound.poke({})
    assert isinstance(result, PokeReturnValue)
    assert [r["id"] for r in result.xcom_value] == shared
    assert escaped.poke({}) is False  # the whole value is one literal: nothing matches it
    # Written into the text, the same value is refused when the DAG is parsed.
    with pytest.raises(
        PartnerCenterConfigError, match=r"^The '\)' at character 31 of \$filter \"type eq 'Shared'"
    ):
        _sensor(created_after=start.isoformat(), filter=f"type eq '{escape}'")
