"""
Both readings of ``$top`` (the emulator's ``top_mode``): no provider path truncates a result.

``total`` is the connector's reading ($top = entries in all), ``page_size`` the docs page's
($top = the size of each page, paging goes on). The hook sends ``$top`` only up to 100 and always
caps client-side, so every path below returns exactly the first N matches, or all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_partner.extract.new_referrals import NewReferralsQuery, check_new_referrals
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
#: A fixed clock: the emulator's data and the windows below are the same on every run.
NOW = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
MODES = [("total", 100), ("total", 30), ("page_size", 100), ("page_size", 30)]


@pytest.fixture(params=MODES, ids=[f"{mode}-{size}" for mode, size in MODES])
def emu(request: pytest.FixtureRequest, emulator_factory: Any, connect: Any, monkeypatch) -> Any:
    mode, size = request.param
    emulator = emulator_factory(referrals=2000, seed=7, now=NOW, page_size=size, top_mode=mode)
    connect(emulator)
    return emulator


def _created_order(emu: Any) -> list[str]:
    return [r["id"] for r in sorted(emu.referrals(), key=lambda r: r["createdDateTime"])]


@pytest.mark.parametrize("top", [1, 7, 30, 99, 100, 101, 250, None])
def test_iter_pages_and_referrals_give_exactly_the_first_top(emu, top: int | None) -> None:
    hook = PartnerCenterHook()
    expected = _created_order(emu)[:top]
    pages = list(hook.iter_pages(orderby="createdDateTime asc", select=["id"], top=top))
    assert [r["id"] for p in pages for r in p.records] == expected
    assert {p.count for p in pages} == {2000}  # the number of matches, whatever $top
    referrals = hook.iter_referrals(orderby="createdDateTime asc", select="id", top=top)
    assert [r["id"] for r in referrals] == expected


@pytest.mark.parametrize("top", [5, 120, None])
def test_operator_full_extraction_and_sample(emu, top: int | None) -> None:
    start, end = NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=1)
    low, high = (f"{m:%Y-%m-%dT%H:%M:%S}.0000000Z" for m in (start, end))
    expected = sorted(
        (r for r in emu.referrals() if low <= r["updatedDateTime"] < high),
        key=lambda r: (r["updatedDateTime"], r["id"]),
    )
    assert len(expected) == 178
    op = PartnerCenterReferralsOperator(task_id="sample", top=top)
    context = {
        "data_interval_start": start,
        "data_interval_end": end,
        "params": {},
        "outlet_events": OutletEventAccessors(),
    }
    assert op.execute(context) == expected[:top]


@pytest.mark.parametrize("max_referrals", [1, 3, 50, 84, 150])
def test_the_sensor_check_finds_every_match_oldest_first(emu, max_referrals: int) -> None:
    since = NOW - dt.timedelta(days=10)
    query = NewReferralsQuery(
        created_after=f"{since:%Y-%m-%dT%H:%M:%SZ}", select=("id",), max_referrals=max_referrals
    )
    low = f"{since:%Y-%m-%dT%H:%M:%S}.0000000Z"
    matching = sorted(
        (r for r in emu.referrals()
         if r["createdDateTime"] >= low and r["direction"] == "Incoming" and r["status"] == "New"),
        key=lambda r: (r["createdDateTime"], r["id"]),
    )  # fmt: skip
    assert len(matching) == 84
    check = check_new_referrals(PartnerCenterHook(), query, now=NOW)
    assert [r["id"] for r in check.referrals] == [r["id"] for r in matching[:max_referrals]]
    assert check.more is (len(matching) > max_referrals)
