"""
Scenarios on one LocalExecutor deployment (PostgreSQL, scheduler, dag-processor, triggerer,
api-server), in order: the warehouse backfill, the deferrable follow-up, the connection test,
then the AssetWatcher across triggerer restarts (its watermark an S3 object). Every assertion is
against the emulator's own data read over its admin API, the warehouse file, Airflow's REST API,
or the bucket read with boto3.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from typing import Any

import pytest
from objectstores.servers import ObjectStore
from system_checks import (
    EVENT_WATERMARK_OBJECT,
    LOOKBACK,
    backfill_and_wait,
    blocked_loop_seconds,
    ids_updated_in,
    jsonl_ids,
    parse_time,
    record_figure,
    referral_states,
    rerun_cleared,
    wait_faults_served,
    wait_task_state,
    warehouse_checksum,
    warehouse_ids,
)
from system_deployment import Airflow, EmulatorProcess, wait_until

WAREHOUSE = "referrals_warehouse_load"
FOLLOWUP = "referrals_followup"
EVENT_DRIVEN = "referrals_event_driven"
DAYS = 5


def _utc_midnight() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _runs(airflow: Airflow, dag_id: str) -> list[dict[str, Any]]:
    return list(airflow.api("GET", f"dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"])


@pytest.mark.timeout(600)
def test_warehouse_backfill_matches_the_emulator_and_a_rerun_changes_nothing(
    local_airflow: Airflow, emu: EmulatorProcess
) -> None:
    airflow = local_airflow
    today = _utc_midnight()
    first = today - dt.timedelta(days=DAYS + 1)
    # A paused DAG's backfill does not run; unpaused, the scheduler also makes the latest
    # scheduled interval's run, so the ground truth is the union of every run's window.
    runs, seconds = backfill_and_wait(airflow, WAREHOUSE, first, DAYS)

    # Ground truth: what the emulator holds for the union of the windows (each with its lookback).
    referrals = emu.referrals()
    expected: set[str] = set()
    per_day = {}
    for run in runs:
        start, end = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
        assert start is not None
        assert end is not None
        in_window = ids_updated_in(referrals, start - LOOKBACK, end)
        expected |= in_window
        written = jsonl_ids(airflow.home / "data" / "referrals" / f"{start:%Y-%m-%d}.jsonl")
        assert sorted(written) == sorted(in_window), f"the file of {start:%Y-%m-%d} differs from the emulator"
        per_day[f"{start:%Y-%m-%d} ({run['run_type']})"] = len(written)
    db = airflow.home / "data" / "warehouse.db"
    assert warehouse_ids(db) == expected
    middle = next(
        r
        for r in runs
        if r["run_type"] == "backfill"
        and r["logical_date"].startswith(f"{first + dt.timedelta(days=DAYS // 2):%Y-%m-%d}")
    )
    checksum = warehouse_checksum(db)

    # Clear one interval and let the scheduler run it again: the table is byte-for-byte the same.
    rerun_seconds = rerun_cleared(airflow, WAREHOUSE, middle["dag_run_id"])
    assert warehouse_checksum(db) == checksum
    assert warehouse_ids(db) == expected
    record_figure(
        "warehouse_backfill",
        {
            "intervals": DAYS,
            "seconds": round(seconds, 1),
            "rows": len(expected),
            "per_day_file_rows": per_day,
            "rerun_seconds": round(rerun_seconds, 1),
            "checksum_unchanged": True,
        },
    )


def _trigger(airflow: Airflow, dag_id: str) -> str:
    run = airflow.api(
        "POST", f"dags/{dag_id}/dagRuns", {"logical_date": dt.datetime.now(dt.timezone.utc).isoformat()}
    )
    return str(run["dag_run_id"])


def _followup_round(
    airflow: Airflow, emu: EmulatorProcess, faults: list[str] | None = None
) -> dict[str, Any]:
    """Trigger the follow-up, see it deferred, (script faults,) release 3, check each accepted once."""
    run_id = _trigger(airflow, FOLLOWUP)
    wait_task_state(airflow, FOLLOWUP, run_id, "wait_for_new_referrals", "deferred", 120)
    if faults:
        before = dict(emu.stats()["faults"])
        emu.admin("script_faults", faults)
        wait_faults_served(emu, before, faults, 60)  # served to the deferred trigger's polls
    updates_before = emu.stats()["requests"].get("update", 0)
    released_at = dt.datetime.now(dt.timezone.utc)
    released = {r["id"] for r in emu.admin("release_incoming", {"n": 3})}
    run = airflow.wait_run_done(FOLLOWUP, run_id, 180)
    assert run["state"] == "success", airflow.diagnostics()

    tis = airflow.task_instances(FOLLOWUP, run_id)
    accepts = [ti for ti in tis if ti["task_id"] == "accept_referral"]
    assert len(accepts) == 3
    assert all(ti["state"] == "success" for ti in accepts)
    outcomes = airflow.xcom(FOLLOWUP, run_id, "record_outcomes")
    assert sorted(outcomes["accepted"]) == sorted(released)
    assert outcomes["skipped"] == []
    assert outcomes["conflict"] == []
    # The emulator's own record: each accepted, by exactly one PATCH each.
    states = referral_states(emu, released)
    assert {(s["status"], s["substatus"]) for s in states.values()} == {("Active", "Accepted")}
    assert emu.stats()["requests"].get("update", 0) - updates_before == 3
    starts = [parse_time(ti["start_date"]) for ti in accepts]
    sensor = next(ti for ti in tis if ti["task_id"] == "wait_for_new_referrals")
    return {
        "released": sorted(released),
        "latency_release_to_first_accept_s": round(
            min((s - released_at).total_seconds() for s in starts if s), 2
        ),
        "latency_release_to_last_accept_s": round(
            max((s - released_at).total_seconds() for s in starts if s), 2
        ),
        "sensor_tries": sensor["try_number"],
        "faults": faults or [],
    }


@pytest.mark.timeout(600)
def test_followup_defers_in_the_triggerer_and_accepts_each_referral_once(
    local_airflow: Airflow, emu: EmulatorProcess
) -> None:
    airflow = local_airflow
    airflow.unpause(FOLLOWUP)
    try:
        clean = _followup_round(airflow, emu)
        faulty = _followup_round(airflow, emu, ["html", "truncated", "503", "reset"])
    finally:
        airflow.unpause(FOLLOWUP, paused=True)
    blocked = blocked_loop_seconds(airflow.services["triggerer"].log_path)
    record_figure("followup", {"clean": clean, "with_faults": faulty})
    record_figure("triggerer_blocked_loop", {"count": len(blocked), "max_s": max(blocked, default=0.0)})


def _connection_body(emu: EmulatorProcess, case: str, **changes: Any) -> dict[str, Any]:
    # One token cache per case (test_connection now redeems the refresh token, so a shared cache
    # would also do; separate caches keep the cases independent).
    conn = json.loads(emu.info["airflow_conn"])
    store = f"variable://partner_center_connection_test_{case}_token_cache"
    extra = {**conn["extra"], "credential_store": store}
    extra.update(changes.pop("extra", {}))
    body = {
        "connection_id": "partner_center_test",
        "conn_type": conn["conn_type"],
        "host": conn["host"],
        "login": conn["login"],
        "password": conn["password"],
        "extra": json.dumps(extra),
    }
    body.update(changes)
    return body


def test_connection_test_through_the_rest_api(local_airflow: Airflow, emu: EmulatorProcess) -> None:
    airflow = local_airflow
    good = airflow.api("POST", "connections/test", _connection_body(emu, "good"))
    assert good["status"] is True, good
    wrong_secret = airflow.api(
        "POST", "connections/test", _connection_body(emu, "wrong_secret", password="not-the-secret")
    )
    assert wrong_secret["status"] is False
    assert "AADSTS7000215" in wrong_secret["message"] or "secret" in wrong_secret["message"].lower()
    conn = json.loads(emu.info["airflow_conn"])
    typo_extra = {**conn["extra"], "tenant_idd": conn["extra"]["tenant_id"]}
    del typo_extra["tenant_id"]
    typo = airflow.api(
        "POST", "connections/test", {**_connection_body(emu, "typo"), "extra": json.dumps(typo_extra)}
    )
    assert typo["status"] is False
    assert "tenant_idd" in typo["message"], typo
    record_figure(
        "connection_test",
        {"ok": good["message"], "wrong_secret": wrong_secret["message"], "typo": typo["message"]},
    )


def _asset_event_ids(airflow: Airflow) -> list[str]:
    asset = next(
        a
        for a in airflow.api("GET", "assets?limit=100")["assets"]
        if a["name"] == "partner_center_new_referrals"
    )
    events = airflow.api("GET", f"assets/events?asset_id={asset['id']}&limit=1000")["asset_events"]
    ids: list[str] = []
    for event in events:
        payload = (event.get("extra") or {}).get("payload") or {}
        ids.extend(payload.get("ids") or [])
    return ids


def _wait_accepted(airflow: Airflow, emu: EmulatorProcess, ids: set[str], timeout: float) -> float:
    began = time.monotonic()

    def probe() -> bool:
        states = referral_states(emu, ids)
        runs = _runs(airflow, EVENT_DRIVEN)
        failed = [r for r in runs if r["state"] == "failed"]
        if failed:
            raise AssertionError(f"event-driven runs failed: {failed}")
        return all(s["status"] == "Active" for s in states.values()) and all(
            r["state"] == "success" for r in runs
        )

    wait_until(f"the event-driven DAG to accept {sorted(ids)}", probe, timeout, 0.5, airflow.diagnostics)
    return time.monotonic() - began


def _stop_triggerer(airflow: Airflow, sig: int) -> None:
    """Stop the triggerer by SIGTERM (graceful) or SIGKILL (its whole process group)."""
    triggerer = airflow.services.pop("triggerer")
    if sig == signal.SIGTERM:
        triggerer.stop(grace=60)
    else:
        triggerer.signal_group(signal.SIGKILL)
        assert triggerer.proc is not None
        triggerer.proc.wait(timeout=30)


@pytest.mark.timeout(900)
def test_asset_watcher_fires_each_referral_once_across_triggerer_restarts(
    local_airflow: Airflow, emu: EmulatorProcess, local_s3: ObjectStore
) -> None:
    airflow = local_airflow
    list_before = emu.stats()["requests"].get("list", 0)
    updates_before = emu.stats()["requests"].get("update", 0)
    airflow.unpause(EVENT_DRIVEN)
    # The watcher takes its first watermark before its first poll: once it polled, what is
    # released from now on must fire.
    wait_until(
        "the AssetWatcher's first poll",
        lambda: emu.stats()["requests"].get("list", 0) > list_before,
        120,
        0.3,
        airflow.diagnostics,
    )
    released: list[str] = []
    figures: dict[str, Any] = {}

    def release(n: int, label: str) -> set[str]:
        ids = {r["id"] for r in emu.admin("release_incoming", {"n": n})}
        released.extend(sorted(ids))
        figures[label] = {"ids": len(ids)}
        return ids

    try:
        batch = release(2, "1_running")
        figures["1_running"]["seconds_to_accepted"] = round(_wait_accepted(airflow, emu, batch, 180), 1)

        _stop_triggerer(airflow, signal.SIGTERM)
        batch = release(2, "2_released_while_stopped_by_sigterm")
        airflow.start("triggerer", "triggerer")  # the same log file, appended
        figures["2_released_while_stopped_by_sigterm"]["seconds_to_accepted"] = round(
            _wait_accepted(airflow, emu, batch, 240), 1
        )

        batch = release(1, "3_running_after_restart")
        figures["3_running_after_restart"]["seconds_to_accepted"] = round(
            _wait_accepted(airflow, emu, batch, 180), 1
        )

        _stop_triggerer(airflow, signal.SIGKILL)
        batch = release(2, "4_released_while_killed_by_sigkill")
        airflow.start("triggerer", "triggerer")
        figures["4_released_while_killed_by_sigkill"]["seconds_to_accepted"] = round(
            _wait_accepted(airflow, emu, batch, 300), 1
        )
    finally:
        airflow.unpause(EVENT_DRIVEN, paused=True)

    fired = _asset_event_ids(airflow)
    assert sorted(fired) == sorted(released), f"fired {fired}, released {released}"
    assert emu.stats()["requests"].get("update", 0) - updates_before == len(released)

    # The watermark lives in the bucket (read with boto3, not through the filesystem under test):
    # the newest referral fired (the emulator stamps each release distinctly) and only its id. The
    # watermark is saved without a lease: the prefix holds that one object, no `.lease/` folder.
    newest = max(referral_states(emu, set(released)).values(), key=lambda r: r["createdDateTime"])
    assert local_s3.listing() == [EVENT_WATERMARK_OBJECT]
    assert json.loads(local_s3.read(EVENT_WATERMARK_OBJECT)) == {
        "created_after": newest["createdDateTime"],
        "ids_at_mark": [newest["id"]],
    }
    # Neither the Variable of Airflow before 3.3 nor anything else took it.
    airflow.api("GET", "variables/partner_center_new_referrals_watermark", ok=(404,))
    figures["watermark"] = local_s3.url(EVENT_WATERMARK_OBJECT)
    figures["asset_events_ids"] = len(fired)
    figures["runs"] = len(_runs(airflow, EVENT_DRIVEN))
    record_figure("event_driven", figures)
