"""
The credential store on S3, Azure Blob Storage and GCS servers: its value and its lease.

The lease is numbered records in ``<key>.lease/``, each created at most once (airflow_provider_
partner/stores/epochs.py): exclusive, and an expired one is taken over by exactly one waiter.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from airflow_provider_partner.stores import LeaseGuarantee, open_store
from airflow_provider_partner.stores.epochs import EpochLease
from airflow_provider_partner.stores.objects import ObjectStorageTextStore


def _record(number: int) -> str:
    return f"{number:020d}"


def test_a_value_is_replaced_in_one_upload_and_nothing_is_left_beside_it(object_store: Any) -> None:
    store = open_store(object_store.url("state/credentials.json"))
    assert store.load() is None
    store.save('{"first": 1}')
    store.save('{"second": 2}')
    assert store.load() == '{"second": 2}'
    assert object_store.listing("state/") == ["credentials.json"]


def test_the_lease_is_exclusive_until_released(object_store: Any) -> None:
    url = object_store.url("exclusive/credentials.json")
    first, second = open_store(url), open_store(url)
    with first.lease(5) as held:  # type: ignore[attr-defined]
        assert held is LeaseGuarantee.EXCLUSIVE
        with second.lease(0.5) as waited:  # type: ignore[attr-defined]
            assert waited is LeaseGuarantee.NONE  # timed out: the first holds it
    with second.lease(5) as held:  # type: ignore[attr-defined]
        assert held is LeaseGuarantee.EXCLUSIVE
    records = object_store.listing("exclusive/credentials.json.lease/")
    assert records == [_record(1), _record(2)]
    assert all(
        json.loads(object_store.read(f"exclusive/credentials.json.lease/{r}"))["released"] for r in records
    )


def test_an_expired_lease_is_taken_over_by_one_waiter_at_a_time(object_store: Any) -> None:
    # A holder died with record 1: expired, never released. Eight waiters arrive together.
    dead = json.dumps({"owner": "dead", "expires": time.time() - 60})
    object_store.write(f"takeover/credentials.json.lease/{_record(1)}", dead.encode())
    url = object_store.url("takeover/credentials.json")
    barrier = threading.Barrier(8)
    spans: list[tuple[float, float, LeaseGuarantee]] = []
    lock = threading.Lock()

    def waiter() -> None:
        store = ObjectStorageTextStore(url)
        barrier.wait(timeout=60)
        with store.lease(60) as held:
            began = time.monotonic()
            time.sleep(0.05)  # the holder's work: re-read, refresh, save
            with lock:
                spans.append((began, time.monotonic(), held))

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    spans.sort()
    assert [held for _, _, held in spans] == [LeaseGuarantee.EXCLUSIVE] * 8
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlaps == []
    # Nine records were created; each holder removed those older than its predecessor's.
    assert object_store.listing("takeover/credentials.json.lease/") == [_record(8), _record(9)]


class _StaleFirstLook(EpochLease):
    """A waiter whose first look at the records is stale (it saw the folder long ago)."""

    def __init__(self, fs: Any, key: str, stale: list[int]) -> None:
        super().__init__(fs, key)
        self.stale: list[int] | None = stale

    def _numbers(self) -> list[int]:
        if self.stale is not None:
            seen, self.stale = self.stale, None
            return seen
        return super()._numbers()


def test_a_waiter_whose_look_was_stale_steps_back_from_the_record_it_created(object_store: Any) -> None:
    # Now: record 4 released, record 5 held by a live process; 1 to 3 long forgotten.
    folder = "stale/credentials.json.lease"
    released = json.dumps({"owner": "a", "expires": time.time(), "released": True})
    held = json.dumps({"owner": "live", "expires": time.time() + 60})
    object_store.write(f"{folder}/{_record(4)}", released.encode())
    object_store.write(f"{folder}/{_record(5)}", held.encode())
    store = ObjectStorageTextStore(object_store.url("stale/credentials.json"))
    _, fs, key = store._target()
    # It saw record 2, gone since, so "free": it creates record 3, which no longer exists either.
    lease = _StaleFirstLook(fs, key, stale=[2])

    assert lease.acquire("stale-waiter", timeout=0.5) is None  # then it waits on 5, in vain

    assert object_store.listing(f"{folder}/") == [_record(3), _record(4), _record(5)]
    assert json.loads(object_store.read(f"{folder}/{_record(3)}"))["released"] is True
    assert object_store.read(f"{folder}/{_record(5)}").decode() == held
