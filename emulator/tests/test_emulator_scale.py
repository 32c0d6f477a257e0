"""SCALE TEST (~20-30 s on the 2-core CI machine): 200k referrals page through exactly once
while another thread keeps updating referrals and new ones arrive."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest


@pytest.mark.timeout(120)
def test_200k_page_through_exactly_once_while_data_changes(emulator_factory, make_api, fixed_now) -> None:
    started = time.perf_counter()
    emu = emulator_factory(referrals=200_000, seed=7, now=fixed_now, page_size=1000)
    startup = time.perf_counter() - started
    api = make_api(emu)
    writer = make_api(emu, token=api.token)
    before = emu.referral_ids()
    assert len(before) == 200_000

    # Ordered by updatedDateTime: every update moves a referral to the end of the order, the
    # worst case for offset or keyset paging; the snapshot must still serve each id once.
    first = api.list(orderby="updatedDateTime asc", select="id,updatedDateTime")
    pages = [first.json()]
    stop = threading.Event()
    updates = Counter[str]()

    def keep_updating() -> None:
        rng = random.Random(1)
        while not stop.is_set():
            referral_id = before[rng.randrange(len(before))]
            response = writer.request(
                "PATCH",
                f"/v1.0/engagements/referrals/{referral_id}",
                json=[{"op": "replace", "path": "/statusReason", "value": f"touched {updates.total()}"}],
            )
            assert response.status_code == 204
            updates["patched"] += 1
            emu.release_incoming(1)
            updates["arrived"] += 1

    thread = threading.Thread(target=keep_updating)
    thread.start()
    try:
        paging = time.perf_counter()
        while "@odata.nextLink" in pages[-1]:
            response = api.get(pages[-1]["@odata.nextLink"])
            assert response.status_code == 200, response.text[:300]
            pages.append(response.json())
        paging = time.perf_counter() - paging
    finally:
        stop.set()
        thread.join(timeout=30)
    ids = [r["id"] for page in pages for r in page["value"]]
    assert len(pages) == 200
    assert all(page["@odata.count"] == 200_000 for page in pages)
    assert len(ids) == len(set(ids)) == 200_000
    assert set(ids) == set(before)
    assert updates["patched"] >= 10
    assert len(emu.referral_ids()) == 200_000 + updates["arrived"]
    print(f"\n200k: startup {startup:.1f} s, 200 pages of 1000 in {paging:.1f} s "
          f"({len(pages) / paging:.1f} pages/s) during {updates['patched']} updates")  # fmt: skip
