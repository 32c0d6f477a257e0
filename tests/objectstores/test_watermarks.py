"""
The event trigger's watermark on an object store, across a triggerer restart.

The watermark folder is on the store's server (``s3://``, ``abfs://``, ``gs://`` with a connection
id, as users write it); the trigger is rebuilt from its serialized form and restarted as the
triggerer does (tests/trigger_watch.py). Each referral fires once, the saved object is the
newest referral's mark, and nothing but that object is left in the folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_partner.triggers.referrals import PartnerCenterNewReferralsEventTrigger


@pytest.fixture
def emu(emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A small emulator wired as the default connection."""
    emulator = emulator_factory(referrals=50, seed=5)
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", emulator.info["airflow_conn"])
    return emulator


def test_each_referral_fires_once_across_a_restart_with_the_watermark_on_the_store(
    emu: Any, object_store: Any, watchers: Any
) -> None:
    folder = object_store.url("marks/")
    trigger = PartnerCenterNewReferralsEventTrigger(
        poke_interval=0.05, watermark_location=folder, watermark_key="followups"
    )
    first = watchers(trigger)
    assert first.no_event_during_polls(emu, 2)  # the seeded referrals are older than the start
    batch1 = [r["id"] for r in emu.release_incoming(3)]
    assert first.next_event()["ids"] == batch1
    first.stop()

    batch2 = [r["id"] for r in emu.release_incoming(2)]  # while the triggerer is down
    second = watchers(trigger)
    assert second.next_event()["ids"] == batch2
    assert second.no_event_during_polls(emu, 2)  # nothing fires twice
    second.stop()

    newest = emu.referrals()[-1]
    assert object_store.listing("marks/") == ["followups.json"]
    assert json.loads(object_store.read("marks/followups.json")) == {
        "created_after": newest["createdDateTime"],
        "ids_at_mark": [newest["id"]],
    }
