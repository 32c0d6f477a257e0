"""Streaming: what the hook holds while paging does not grow with the number of pages read."""

from __future__ import annotations

import tracemalloc

import pytest

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow


def _held_by_the_hook() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(True, "*/airflow_provider_partner/hooks/*", all_frames=True),
            tracemalloc.Filter(False, "*/partner_center_emulator/*", all_frames=True),
        ]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_memory_held_while_paging_stays_flat(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator  # 2000 referrals, 20 pages
    hook = PartnerCenterHook(connect(emu, "pc_mem"), log_every_pages=0)
    hook.tokens.get_token()
    held: dict[int, int] = {}
    count = 0
    tracemalloc.start(6)  # deep enough to reach paging.py from json's frames
    try:
        for page in hook.iter_pages():
            count += len(page.records)
            if page.number in (4, 20):
                held[page.number] = _held_by_the_hook()
    finally:
        tracemalloc.stop()
    assert count == 2_000
    # One page of 100 referrals is ~100-300 kB of dicts; 16 more pages read must not add up.
    assert held[20] < 2 * held[4] + 256 * 1024, held
    assert held[20] < 4 * 1024 * 1024, held
