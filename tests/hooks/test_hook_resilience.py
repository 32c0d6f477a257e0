"""50k referrals through 20% injected faults and a token expiry: every referral exactly once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow


def test_50k_referrals_exactly_once_through_faults_and_token_expiry(emulator_factory, connect) -> None:
    emu = emulator_factory(referrals=50_000, seed=11)
    emu.configure(fault_rate=0.2, fault_kinds=["429", "500", "503", "reset"], fault_seed=5)
    hook = PartnerCenterHook(connect(emu, "pc_50k", max_retries=12), log_every_pages=100)
    ids: list[str] = []
    started = time.monotonic()
    for page in hook.iter_pages():
        ids.extend(r["id"] for r in page.records)
        if page.number == 250:
            emu.expire_access_tokens()
    elapsed = time.monotonic() - started

    assert len(ids) == 50_000
    assert Counter(ids) == Counter(emu.referral_ids())
    stats = emu.stats()
    assert stats["pages_served"] == 500
    assert all(stats["faults"].get(kind, 0) > 0 for kind in ("429", "500", "503", "reset")), stats["faults"]
    assert stats["token_grants"]["refresh_token"] == 2  # the first token and the refresh after expiry
    assert hook.tokens.token_requests == 2
    print(
        f"50k referrals with faults: {elapsed:.1f} s, {len(ids) / elapsed:.0f} referrals/s, {stats['faults']}"
    )
