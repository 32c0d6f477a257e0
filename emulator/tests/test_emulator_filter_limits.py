"""Filters too costly to evaluate are a 400 in the documented error shape at once, never a 500."""

from __future__ import annotations

import time

import pytest

from partner_center_emulator.query import MAX_FILTER_LENGTH, ODataError, Query, compile_filter
from partner_center_emulator.store import QueryCancelledError

REFERRALS = "/v1.0/engagements/referrals"
#: Six any() nested in one another: before the limit, every level multiplied the work per record.
NESTED_ANY = (
    "team/any(a:team/any(b:team/any(c:team/any(d:team/any(e:team/any(f:f/email eq a/email "
    "and b/email eq c/email and d/email eq e/email and f/title ne 'CTOs'))))))"
)
OR_CHAIN = " or ".join(f"externalReferenceId eq 'CRM-{n}'" for n in range(2000))
NOTS = "not " * 10_000 + "true"


def _error(description: str) -> dict:
    return {"code": "BadRequest", "description": description, "data": [], "source": "PartnerCenterEmulator"}


@pytest.mark.parametrize(
    ("text", "length", "description"),
    [
        (
            NESTED_ANY,
            158,
            "The $filter nests any()/all() more than 1 level deep; use one level, "
            "e.g. team/any(t:t/email eq 'x').",
        ),
        (
            OR_CHAIN,
            72_886,
            "The $filter is 72886 characters long; at most 2048 are accepted. "
            "Simplify it or split the query.",
        ),
        (
            NOTS,
            40_004,
            "The $filter is 40004 characters long; at most 2048 are accepted. "
            "Simplify it or split the query.",
        ),
    ],
    ids=["nested-any", "or-chain", "nots"],
)
def test_costly_filters_are_refused_quickly(emu, api, text: str, length: int, description: str) -> None:
    assert len(text) == length
    started = time.monotonic()
    # POSTing is not an option for a list; the long ones travel in the query string like any filter.
    response = api.get(REFERRALS, params={"$filter": text})
    assert time.monotonic() - started < 2.0
    assert response.status_code == 400
    assert response.json() == _error(description)
    # The connection stays usable and the emulator answers the next query normally.
    assert api.list(top="1").status_code == 200


def test_short_but_deep_filters_hit_the_node_limit() -> None:
    deep = "not " * 500 + "true"
    assert len(deep) <= MAX_FILTER_LENGTH
    with pytest.raises(ODataError) as caught:
        compile_filter(deep)
    assert caught.value.message == (
        "The $filter has more than 100 nodes (operators, properties and literals); "
        "simplify it or split the query."
    )
    # Parentheses make no nodes: 1,000 of them around one literal are one cheap node, and the
    # parser (LALR, not recursive) takes them without a RecursionError.
    assert compile_filter("(" * 1000 + "true" + ")" * 1000)({}) is True


def test_filters_within_the_limits_still_work(emu, api) -> None:
    within = " or ".join(f"externalReferenceId eq 'CRM-{n}'" for n in range(100_000, 100_024))
    assert api.list(filter=within).status_code == 200
    one_level = "team/any(t:t/email eq 'r2d2@contoso.com') and customerProfile/team/any(m:m/lastName ne 'x')"
    assert api.list(filter=one_level, top="1").status_code == 200


def test_a_query_stops_filtering_when_its_client_has_gone(emulator_factory) -> None:
    # 9,000 rows are three blocks of 4,096: the question is asked before each block.
    emu = emulator_factory(referrals=9000, seed=7)
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) == 2

    with pytest.raises(QueryCancelledError):
        emu.store.select_ids(Query(filter="status eq 'New'"), None, cancelled)
    assert len(asked) == 2
    asked.clear()
    assert len(emu.store.select_ids(Query(filter="true"), None, lambda: False)) == 9000
