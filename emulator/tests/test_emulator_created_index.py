"""The createdDateTime index (ranges.py): queries served from a run of the store answer as a scan does."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partner_center_emulator.clock import Clock, format_ticks, parse_to_ticks
from partner_center_emulator.data import Generator
from partner_center_emulator.query import Query, compile_filter, parse_filter
from partner_center_emulator.ranges import Bounds, created_bounds
from partner_center_emulator.store import ReferralStore

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
OPERATORS = ("gt", "ge", "lt", "le", "eq")
OTHER_TERMS = ("", " and status eq 'New'", " and type ne 'Shared'", " or direction eq 'Outgoing'")


@cache
def generated() -> tuple[dict[str, Any], ...]:
    return tuple(Generator(5, "https://x:1", "org").generate(400, parse_to_ticks("2026-11-20T12:00:00Z"), 20))


def store_of(records: list[dict[str, Any]]) -> ReferralStore:
    store = ReferralStore(Generator(5, "https://x:1", "org"), Clock(NOW))
    store.expire_incoming = False
    store.load(records)
    return store


def scanned(records: list[dict[str, Any]], text: str, descending: bool) -> list[str]:
    """What a scan of every record answers: the oracle."""
    predicate = compile_filter(text)
    rows = sorted((r for r in records if predicate(r)), key=lambda r: r["id"])
    rows.sort(key=lambda r: r["createdDateTime"], reverse=descending)
    return [r["id"] for r in rows]


@st.composite
def range_filters(draw: st.DrawFn) -> str:
    """One or two createdDateTime bounds at (or a tick beside) stored values, and another term."""
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        value = parse_to_ticks(draw(st.sampled_from(generated()))["createdDateTime"])
        value += draw(st.sampled_from([-1, 0, 0, 1]))
        operator = draw(st.sampled_from(OPERATORS))
        if draw(st.booleans()):
            terms.append(f"createdDateTime {operator} {format_ticks(value)}")
        else:  # the literal on the left: "2026-... lt createdDateTime"
            flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq"}[operator]
            terms.append(f"{format_ticks(value)} {flipped} createdDateTime")
    return " and ".join(terms) + draw(st.sampled_from(OTHER_TERMS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=range_filters(), descending=st.booleans(), shuffled=st.booleans())
def test_an_indexed_query_returns_what_a_scan_of_every_referral_returns(
    text: str, descending: bool, shuffled: bool
) -> None:
    records = list(generated())
    if shuffled:
        # Out of creation order (a replayed journal could be): the store scans instead.
        records = records[1::2] + records[::2]
    store = store_of(records)
    orderby = f"createdDateTime {'desc' if descending else 'asc'}"
    got = store.select_ids(Query(filter=text, orderby=orderby), None)
    assert got == scanned(records, text, descending), text


def test_a_replaced_record_with_another_created_time_turns_the_index_off_and_answers_stay_right() -> None:
    records = list(generated())
    store = store_of(records)
    moved = {**records[10], "createdDateTime": records[-1]["createdDateTime"]}
    store.put(moved)
    records[10] = moved
    text = f"createdDateTime ge {records[-5]['createdDateTime']}"
    assert store.select_ids(Query(filter=text, orderby="createdDateTime asc"), None) == scanned(
        records, text, descending=False
    )
    assert moved["id"] in store.select_ids(Query(filter=text), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "createdDateTime ge 2026-10-01T00:00:00Z and createdDateTime lt 2026-10-02T00:00:00Z",
            Bounds("2026-10-01T00:00:00.0000000Z", True, "2026-10-02T00:00:00.0000000Z", False, True),
        ),
        (
            "2026-10-01T00:00:00Z lt createdDateTime and status eq 'New'",
            Bounds("2026-10-01T00:00:00.0000000Z", False, None, True, False),
        ),
        (
            "createdDateTime eq 2026-10-01T00:00:00Z and createdDateTime le 2026-10-03T00:00:00Z",
            Bounds("2026-10-01T00:00:00.0000000Z", True, "2026-10-01T00:00:00.0000000Z", True, True),
        ),
        (
            "createdDateTime gt 2026-10-01T00:00:00Z and createdDateTime ge 2026-10-01T00:00:00Z",
            Bounds("2026-10-01T00:00:00.0000000Z", False, None, True, True),
        ),
        ("createdDateTime ge 2026-10-01T00:00:00Z or status eq 'New'", None),
        ("createdDateTime ne 2026-10-01T00:00:00Z", None),
        ("updatedDateTime ge 2026-10-01T00:00:00Z", None),
        ("not (createdDateTime ge 2026-10-01T00:00:00Z)", None),
    ],
)
def test_the_bounds_of_a_filter_are_its_top_level_and_terms_on_created_date_time(
    text: str, expected: Bounds | None
) -> None:
    assert created_bounds(parse_filter(text)) == expected


def test_records_after_one_without_a_creation_time_are_loaded_and_scanned():
    # A journal or fixture may hold a record with no createdDateTime: the store stops serving
    # from the creation order, and the records after it must still load (they were compared
    # with the missing value).
    first, second, third = (dict(record) for record in generated()[:3])
    del second["createdDateTime"]
    store = store_of([first, second, third])
    assert store._created_ordered is False
    assert [r["id"] for r in store._records] == [first["id"], second["id"], third["id"]]
