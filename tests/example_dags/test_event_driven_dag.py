"""example_dags/referrals_event_driven.py: its serialized AssetWatcher, its trigger, its follow-up task."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from example_dag_helpers import ids_of, load_dag, release_on_poll

from airflow_provider_partner.compat import HAS_ASSET_STATE_STORE

TRIGGER = "airflow_provider_partner.triggers.referrals.PartnerCenterNewReferralsEventTrigger"


def _asset(dag: Any) -> Any:
    asset = dag.timetable.asset_condition
    assert asset.name == "partner_center_new_referrals"
    return asset


def test_the_dag_is_scheduled_on_the_watched_asset_and_serializes_the_trigger(airflow_db: Path) -> None:
    from airflow_provider_partner.compat import dag_serialization

    serialization = dag_serialization()

    dag = load_dag("referrals_event_driven")
    asset = _asset(dag)
    [watcher] = asset.watchers
    assert watcher.name == "partner_center_new_referrals_watcher"
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == TRIGGER
    # Documented choice: on 3.3 no watermark_location, so the asset's state store keeps the watermark.
    assert kwargs["watermark_location"] == (
        None if HAS_ASSET_STATE_STORE else "variable://partner_center_new_referrals_watermark"
    )
    assert (kwargs["direction"], kwargs["status"], kwargs["batch_size"]) == ("Incoming", "New", 50)

    # What the scheduler stores and the triggerer reads: plain JSON, trigger by classpath + kwargs.
    stored = json.loads(json.dumps(serialization.to_dict(dag)))
    [restored] = serialization.from_dict(stored).timetable.asset_condition.watchers
    assert restored.name == watcher.name
    assert restored.trigger["classpath"] == TRIGGER
    assert restored.trigger["kwargs"] == kwargs
    # The triggerer rebuilds the trigger from them: the same trigger.
    module, _, name = TRIGGER.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**restored.trigger["kwargs"])
    assert rebuilt.serialize() == (classpath, kwargs)


def _first_event(trigger: Any) -> dict[str, Any]:
    """Run the trigger as the triggerer would, until its first event; return the payload."""

    async def first() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(anext(events), timeout=60)
        finally:
            await events.aclose()
        payload: dict[str, Any] = event.payload
        return payload

    return asyncio.run(first())


def test_the_dags_trigger_fires_the_arrivals_once_and_resumes_from_its_watermark(
    partner_center_emulator: Any, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = partner_center_emulator
    trigger = _asset(load_dag("referrals_event_driven")).watchers[0].trigger
    # Outside a triggerer there is no asset state store: keep the watermark in a file instead.
    monkeypatch.setattr(trigger, "watermark_location", f"file://{tmp_path}/watermarks/")
    monkeypatch.setattr(trigger, "poke_interval", 0.05)
    watermark = tmp_path / "watermarks" / f"{trigger.watermark_key}.json"

    # Only referrals created after the trigger starts fire: these arrive once it has looked.
    with release_on_poll(emu, 2) as arrivals:
        payload = _first_event(trigger)

    ids = ids_of(arrivals)
    oldest, newest = arrivals[0]["createdDateTime"], arrivals[-1]["createdDateTime"]
    assert payload == {"ids": ids, "count": 2, "created_from": oldest, "created_to": newest}
    assert json.loads(watermark.read_text()) == {"created_after": newest, "ids_at_mark": [ids[-1]]}

    # A restarted trigger (same kwargs, same watermark) fires only what arrived since.
    later = emu.release_incoming(1)
    _, kwargs = trigger.serialize()
    assert _first_event(type(trigger)(**kwargs))["ids"] == ids_of(later)


def _event(asset: Any, payload: dict[str, Any] | None) -> Any:
    """An asset event as a run triggered by the watcher sees it in ``triggering_asset_events``."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    # What the triggerer's TriggerEvent becomes (Trigger.submit_event -> register_asset_change).
    extra = {"from_trigger": True, "payload": payload} if payload is not None else {}
    return AssetEventDagRunReferenceResult(
        asset={"name": asset.name, "uri": asset.uri, "extra": {}},
        extra=extra,
        source_task_id=None,
        source_dag_id=None,
        source_run_id=None,
        source_map_index=None,
        source_aliases=[],
        timestamp=dt.datetime.now(dt.timezone.utc),
    )


def _payload(referrals: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ids": [r["id"] for r in referrals],
        "count": len(referrals),
        "created_from": referrals[0]["createdDateTime"],
        "created_to": referrals[-1]["createdDateTime"],
    }


def test_the_follow_up_task_accepts_every_referral_of_the_triggering_events(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path
) -> None:
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    emu = partner_center_emulator
    first, second, declined = emu.release_incoming(3)
    PartnerCenterHook().update_referral(
        declined["id"],
        [
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/substatus", "value": "Declined"},
        ],
    )
    # Two events folded into one run (the second delivered again with one more id), and an
    # event posted by hand without the trigger's payload.
    dag = load_dag("referrals_event_driven")
    asset = _asset(dag)
    events = TriggeringAssetEventsAccessor.build(
        [
            _event(asset, _payload([first, second])),
            _event(asset, _payload([second, declined])),
            _event(asset, None),
        ]
    )
    follow_up = dag.get_task("follow_up").python_callable

    summary = follow_up(triggering_asset_events=events)

    ids = [first["id"], second["id"]]
    assert summary == {"accepted": ids, "skipped": [declined["id"]], "conflict": [], "rows": 3}
    truth = {r["id"]: r for r in emu.referrals()}
    assert [(truth[i]["status"], truth[i]["substatus"]) for i in ids] == [("Active", "Accepted")] * 2
    assert (truth[declined["id"]]["status"], truth[declined["id"]]["substatus"]) == ("Closed", "Declined")

    # A retry of the task finds them answered: it skips them and keeps the record of acceptance.
    again = follow_up(triggering_asset_events=events)
    assert again == {"accepted": [], "skipped": [*ids, declined["id"]], "conflict": [], "rows": 3}
    conn = sqlite3.connect(data_dir / "warehouse.db")
    try:
        rows = dict(conn.execute("SELECT id, outcome FROM referral_followups").fetchall())
    finally:
        conn.close()
    assert rows == {first["id"]: "accepted", second["id"]: "accepted", declined["id"]: "skipped"}
