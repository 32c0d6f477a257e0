"""Property test: compiled $filter == a plain-Python oracle, for random boolean trees of comparisons.

Runs the compiler directly over generated referrals (no HTTP), so many trees are cheap.
"""

from __future__ import annotations

import operator
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partner_center_emulator.clock import DAY_TICKS, format_ticks, parse_to_ticks
from partner_center_emulator.data import Generator
from partner_center_emulator.query import compile_filter

OPS = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
       "le": operator.le}  # fmt: skip
PATHS = [
    ("status",), ("substatus",), ("type",), ("direction",), ("qualification",), ("createdDateTime",),
    ("updatedDateTime",), ("expirationDateTime",), ("details", "dealValue"),
    ("customerProfile", "address", "country"), ("customerProfile", "name"),
]  # fmt: skip
DATETIMES = {("createdDateTime",), ("updatedDateTime",), ("expirationDateTime",)}


@cache
def records() -> tuple[dict[str, Any], ...]:
    now = parse_to_ticks("2026-11-20T12:00:00Z")
    return tuple(Generator(11, "https://x:1", "org").generate(600, now, 30))


def value_at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        record = record.get(part) if isinstance(record, dict) else None
    return record


def literal_text(path: tuple[str, ...], value: Any) -> str:
    if value is None:
        return "null"
    if path in DATETIMES or isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@st.composite
def atoms(draw: st.DrawFn) -> tuple[str, Any]:
    path = draw(st.sampled_from(PATHS))
    op = draw(st.sampled_from(sorted(OPS)))
    record = draw(st.sampled_from(records()))
    value = value_at(record, path)
    if path in DATETIMES and value is not None and draw(st.booleans()):
        value = format_ticks(parse_to_ticks(value) + draw(st.sampled_from([-1, 1, DAY_TICKS])))
    if draw(st.integers(0, 9)) == 0:
        value = None
    return ("cmp", (path, op, value))


def trees() -> st.SearchStrategy[Any]:
    return st.recursive(
        atoms(),
        lambda children: st.one_of(
            st.tuples(st.sampled_from(["and", "or"]), st.tuples(children, children)),
            st.tuples(st.just("not"), children),
        ),
        max_leaves=6,
    )


def render(tree: Any) -> str:
    kind, body = tree
    if kind == "cmp":
        path, op, value = body
        return f"{'/'.join(path)} {op} {literal_text(path, value)}"
    if kind == "not":
        return f"not ({render(body)})"
    left, right = body
    return f"({render(left)}) {kind} ({render(right)})"


def oracle(tree: Any, record: dict[str, Any]) -> bool:
    kind, body = tree
    if kind == "cmp":
        path, op, value = body
        actual = value_at(record, path)
        if op in ("eq", "ne"):
            return bool(OPS[op](actual, value))
        if actual is None or value is None:
            return False  # OData: ordering against null is false
        return bool(OPS[op](actual, value))
    if kind == "not":
        return not oracle(body, record)
    left, right = body
    if kind == "and":
        return oracle(left, record) and oracle(right, record)
    return oracle(left, record) or oracle(right, record)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_compiled_filters_agree_with_the_oracle(tree: Any) -> None:
    predicate = compile_filter(render(tree))
    data = records()
    assert [r["id"] for r in data if predicate(r)] == [r["id"] for r in data if oracle(tree, r)], render(tree)
