"""The AssetWatcher trigger: one event per batch, each referral once, across triggerer restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from trigger_watch import rebuilt

from airflow_provider_partner.compat import HAS_ASSET_STATE_STORE
from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsEventTrigger
from airflow_provider_partner.triggers.watermark import Watermark


def _api(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _trigger(tmp_path: Path, **kwargs: Any) -> PartnerCenterNewReferralsEventTrigger:
    return PartnerCenterNewReferralsEventTrigger(
        poke_interval=0.05, watermark_location=f"file://{tmp_path}/marks/", **kwargs
    )


def test_fires_each_new_referral_once_across_a_restart_and_not_again_while_nothing_changes(
    emu: Any, tmp_path: Path, watchers: Any
) -> None:
    trigger = _trigger(tmp_path, watermark_key="followups")
    first = watchers(trigger)
    assert first.no_event_during_polls(emu, 2)  # the seeded referrals are older than the start
    batch1 = [r["id"] for r in emu.release_incoming(3)]

    event = first.next_event()

    assert event["ids"] == batch1
    assert event["count"] == 3
    assert first.no_event_during_polls(emu, 3)  # the condition stays true: no second event
    first.stop()

    # Arrivals while the triggerer is down fire after the restart; nothing fires twice.
    batch2 = [r["id"] for r in emu.release_incoming(2)]
    second = watchers(trigger)
    assert second.next_event()["ids"] == batch2
    batch3 = [r["id"] for r in emu.release_incoming(1)]
    assert second.next_event()["ids"] == batch3

    saved = json.loads((tmp_path / "marks" / "followups.json").read_text())
    newest = emu.referrals()[-1]
    assert saved == {"created_after": newest["createdDateTime"], "ids_at_mark": [newest["id"]]}


def test_referrals_created_at_the_same_instant_are_split_across_batches_without_loss(
    emu: Any, tmp_path: Path, watchers: Any
) -> None:
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
    same = _api(start + dt.timedelta(seconds=1))
    trigger = _trigger(tmp_path, batch_size=2, start_after=_api(start))
    tied = [r["id"] for r in emu.release_incoming(3, createdDateTime=same)]
    later = [r["id"] for r in emu.release_incoming(1, createdDateTime=_api(start + dt.timedelta(seconds=2)))]
    watcher = watchers(trigger)

    fired = [watcher.next_event()["ids"] for _ in range(2)]

    assert sorted(fired[0] + fired[1][:1]) == sorted(tied)
    assert fired[1][1:] == later
    assert [len(ids) for ids in fired] == [2, 2]
    assert watcher.no_event_during_polls(emu, 2)


def test_only_matching_referrals_fire(emu: Any, tmp_path: Path, watchers: Any) -> None:
    watcher = watchers(_trigger(tmp_path, filter="type eq 'Shared'"))
    assert watcher.no_event_during_polls(emu, 1)
    emu.release_incoming(2, type="Independent")
    shared = [r["id"] for r in emu.release_incoming(1, type="Shared")]

    assert watcher.next_event()["ids"] == shared


def test_transient_faults_do_not_lose_or_repeat_events(
    emu: Any, tmp_path: Path, watchers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"].update({"max_retries": 0})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    watcher = watchers(_trigger(tmp_path))
    assert watcher.no_event_during_polls(emu, 1)
    emu.script_faults(["503", "reset", "429"])
    released = [r["id"] for r in emu.release_incoming(2)]

    assert watcher.next_event()["ids"] == released
    assert watcher.no_event_during_polls(emu, 2)
    assert emu.stats()["faults"] == {"503": 1, "reset": 1, "429": 1}


def test_without_a_durable_store_the_trigger_refuses_to_start() -> None:
    trigger = PartnerCenterNewReferralsEventTrigger()
    with pytest.raises(PartnerCenterConfigError, match="nowhere durable to keep its watermark"):
        asyncio.run(trigger.run().__anext__())


class _AssetStateDouble:
    """Stands in for Airflow's asset state accessor (a triggerer sets the real one)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


def test_the_asset_state_store_keeps_the_watermark_when_no_location_is_set(emu: Any) -> None:
    state = _AssetStateDouble()
    trigger = PartnerCenterNewReferralsEventTrigger(poke_interval=0.05, watermark_key="wm")
    trigger.asset_state_store = state

    async def one_event() -> dict[str, Any]:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        while "wm" not in state.values:
            await asyncio.sleep(0.01)
        released.extend(r["id"] for r in emu.release_incoming(1))
        event = await asyncio.wait_for(first, 60)
        await events.aclose()
        return dict(event.payload)

    released: list[str] = []
    assert asyncio.run(one_event())["ids"] == released
    assert state.values["wm"]["ids_at_mark"] == released


def test_an_unreadable_watermark_names_the_store_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "wm.json").write_text("{not json")
    trigger = PartnerCenterNewReferralsEventTrigger(watermark_location=f"file://{tmp_path}/wm.json")
    with pytest.raises(PartnerCenterConfigError, match=r"wm\.json is unreadable .* delete it"):
        asyncio.run(trigger.run().__anext__())


def test_watermark_advances_past_the_newest_fired_instant() -> None:
    mark = Watermark("2026-11-27T10:00:00.0000000Z", ("a",))
    same = mark.advanced([{"id": "b", "createdDateTime": "2026-11-27T10:00:00.0000000Z"}])
    assert same == Watermark("2026-11-27T10:00:00.0000000Z", ("a", "b"))
    later = same.advanced(
        [
            {"id": "c", "createdDateTime": "2026-11-27T10:00:00.0000001Z"},
            {"id": "d", "createdDateTime": "2026-11-27T10:00:01.0000000Z"},
            {"id": "e", "createdDateTime": "2026-11-27T10:00:01.0000000Z"},
        ]
    )
    assert later == Watermark("2026-11-27T10:00:01.0000000Z", ("d", "e"))


def test_a_backlog_larger_than_a_page_fires_oldest_first_without_skipping(
    emu: Any, tmp_path: Path, watchers: Any
) -> None:
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=10)
    tied = _api(start + dt.timedelta(seconds=1))
    trigger = _trigger(tmp_path, batch_size=100, start_after=_api(start))
    released = [r["id"] for r in emu.release_incoming(2, createdDateTime=tied)]
    released += [r["id"] for r in emu.release_incoming(230)]
    watcher = watchers(trigger)

    fired: list[str] = []
    while len(fired) < len(released):
        fired += watcher.next_event()["ids"]

    assert sorted(fired[:2]) == sorted(released[:2])
    assert fired[2:] == released[2:]
    assert watcher.no_event_during_polls(emu, 2)


@pytest.mark.skipif(not HAS_ASSET_STATE_STORE, reason="asset state stores are new in Airflow 3.3")
def test_a_trigger_shared_by_several_assets_is_told_to_set_a_watermark_location() -> None:
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    trigger = PartnerCenterNewReferralsEventTrigger()
    trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset("a"), Asset("b")])

    with pytest.raises(PartnerCenterConfigError, match=r"watches several assets\. Set watermark_location"):
        asyncio.run(trigger.run().__anext__())


def test_the_first_watermark_is_taken_before_the_trigger_first_yields_control(
    emu: Any, tmp_path: Path
) -> None:
    # A referral created while the trigger reads its (empty) store must fire: the starting mark
    # is "when run() began", not "when the store answered".
    trigger = rebuilt(_trigger(tmp_path, watermark_key="unpaused"))
    loop = asyncio.new_event_loop()
    events = trigger.run()
    try:
        pending = asyncio.ensure_future(events.__anext__(), loop=loop)
        loop.run_until_complete(asyncio.sleep(0))  # run() is now at its first await
        assert not pending.done()
        created_meanwhile = [r["id"] for r in emu.release_incoming(1)]

        event = loop.run_until_complete(asyncio.wait_for(pending, 60))

        assert event.payload["ids"] == created_meanwhile
    finally:
        loop.run_until_complete(events.aclose())
        loop.close()
