"""The OData builder: pure functions, checked against an independent OData parser."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from airflow_provider_partner import odata

UTC = dt.timezone.utc


def parse(expr: str) -> ast._Node:
    return ODataParser().parse(ODataLexer().tokenize(expr))


class Status(enum.Enum):
    NEW = "New"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (10000, "10000"),
        (-3, "-3"),
        (1.5, "1.5"),
        (Decimal("10.25"), "10.25"),
        ("New", "'New'"),
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("", "''"),
        (Status.NEW, "'New'"),
        (uuid.UUID("65edc0b5-3485-41b7-a17e-dfa9ef4706e2"), "'65edc0b5-3485-41b7-a17e-dfa9ef4706e2'"),
        (dt.datetime(2026, 11, 1, tzinfo=UTC), "2026-11-01T00:00:00Z"),
        (dt.datetime(2026, 11, 1, 1, 2, 3, 4500, tzinfo=UTC), "2026-11-01T01:02:03.004500Z"),
        (pendulum.datetime(2026, 11, 1, 2, tz="Europe/Prague"), "2026-11-01T01:00:00Z"),
    ],
)
def test_literal(value: odata.LiteralValue, expected: str) -> None:
    assert odata.literal(value) == expected


def test_literal_refuses_naive_datetimes_and_unknown_types() -> None:
    with pytest.raises(ValueError, match="timezone-aware datetime, got naive 2026-11-01T00:00:00"):
        odata.literal(dt.datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="no literal for the float nan"):
        odata.literal(float("nan"))
    with pytest.raises(TypeError, match="Cannot render date as an OData literal"):
        odata.literal(dt.date(2026, 11, 1))  # type: ignore[arg-type]


def test_comparisons_and_nested_paths() -> None:
    assert odata.eq("customerProfile/address/country", "US") == "customerProfile/address/country eq 'US'"
    assert odata.ne("status", "Closed") == "status ne 'Closed'"
    assert odata.gt("details/dealValue", 100) == "details/dealValue gt 100"
    assert odata.le("expirationDateTime", None) == "expirationDateTime le null"
    assert odata.eq.__name__ == "eq"


@pytest.mark.parametrize("field", ["status eq 'x' or 1", "a//b", "/a", "a b", "", "a-b"])
def test_field_paths_cannot_inject(field: str) -> None:
    with pytest.raises(ValueError, match="Invalid OData field path"):
        odata.eq(field, "x")


def test_and_or_not_group_only_where_needed() -> None:
    assert odata.and_(odata.eq("type", "Shared"), odata.eq("direction", "Incoming")) == (
        "type eq 'Shared' and direction eq 'Incoming'"
    )
    assert odata.and_("a eq 1 or b eq 2", "c eq 3") == "(a eq 1 or b eq 2) and c eq 3"
    assert odata.or_("a eq 1 and b eq 2", "c eq 3") == "(a eq 1 and b eq 2) or c eq 3"
    assert (
        odata.and_("(a eq 1 or b eq 2)", None, "  ", "not (c eq 3)") == "(a eq 1 or b eq 2) and not (c eq 3)"
    )
    assert odata.and_("(a eq 1) or (b eq 2)", "c eq 3") == "((a eq 1) or (b eq 2)) and c eq 3"
    assert odata.not_("a eq 1 or b eq 2") == "not (a eq 1 or b eq 2)"
    assert odata.not_("(a eq 1)") == "not (a eq 1)"
    # Keywords inside string literals are data, not operators.
    assert odata.and_(odata.eq("name", "Black and White or Grey"), "x eq 1") == (
        "name eq 'Black and White or Grey' and x eq 1"
    )
    with pytest.raises(ValueError, match=r"odata.and_\(\) needs at least one non-empty expression"):
        odata.and_(None, "")


def test_composition_parses_with_the_intended_precedence() -> None:
    tree = parse(odata.and_(odata.or_(odata.eq("a", 1), odata.eq("b", 2)), odata.not_(odata.eq("c", 3))))
    assert isinstance(tree, ast.BoolOp)
    assert isinstance(tree.op, ast.And)
    assert isinstance(tree.left, ast.BoolOp)
    assert isinstance(tree.left.op, ast.Or)
    assert isinstance(tree.right, ast.UnaryOp)


def test_team_any() -> None:
    assert odata.team_has_email("r2d2@contoso.com") == "team/any(t:t/email eq 'r2d2@contoso.com')"
    assert odata.any_("customerProfile/team", lambda m: odata.eq(f"{m}/lastName", "O'Brien"), "m") == (
        "customerProfile/team/any(m:m/lastName eq 'O''Brien')"
    )
    assert isinstance(parse(odata.team_has_email("o'neil@contoso.com")), ast.Compare | ast.CollectionLambda)


def test_window_is_half_open_and_checked() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=UTC)
    end = dt.datetime(2026, 11, 2, tzinfo=UTC)
    assert odata.window("updatedDateTime", start, end) == (
        "updatedDateTime ge 2026-11-01T00:00:00Z and updatedDateTime lt 2026-11-02T00:00:00Z"
    )
    with pytest.raises(ValueError, match="Empty OData window on createdDateTime"):
        odata.window("createdDateTime", end, end)


def test_orderby_and_select() -> None:
    assert odata.orderby("createdDateTime", descending=True) == "createdDateTime desc"
    assert odata.validate_orderby("updatedDateTime , createdDateTime DESC") == (
        "updatedDateTime asc,createdDateTime desc"
    )
    with pytest.raises(
        ValueError, match="'name' is not supported by the Referrals API; use one of createdDateTime"
    ):
        odata.validate_orderby("name desc")
    with pytest.raises(ValueError, match="Invalid \\$orderby item 'createdDateTime sideways'"):
        odata.validate_orderby("createdDateTime sideways")
    assert odata.select("id, status,customerProfile,id") == "id,status,customerProfile"
    assert odata.select(["id", "eTag"]) == "id,eTag"
    with pytest.raises(ValueError, match="only top-level field names"):
        odata.select(["customerProfile/name"])


@given(st.text())
def test_any_string_literal_round_trips_through_an_independent_parser(value: str) -> None:
    tree = parse(odata.eq("name", value))
    assert isinstance(tree, ast.Compare)
    assert isinstance(tree.right, ast.String)
    assert tree.right.val == value


# odata-query refuses years before 1000 (valid OData); referrals live in this century anyway.
@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), timezones=st.just(UTC)))
def test_any_datetime_round_trips_through_an_independent_parser(value: dt.datetime) -> None:
    tree = parse(odata.ge("updatedDateTime", value))
    assert isinstance(tree, ast.Compare)
    assert isinstance(tree.right, ast.DateTime)
    assert tree.right.py_val == value


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a eq 'x", 'The string literal opened at character 6 of $filter "a eq \'x" is never closed'),
        ("a eq 'x''", "The string literal opened at character 6 of $filter \"a eq 'x''\" is never closed"),
        ("(a eq 1", "The '(' at character 1 of $filter '(a eq 1' is never closed."),
        ("a eq 1) or (b eq 2", "The ')' at character 7 of $filter 'a eq 1) or (b eq 2' closes nothing."),
    ],
)
def test_unbalanced_filters_are_refused_before_they_are_combined(expr: str, message: str) -> None:
    for combine in (odata.check_balanced, odata.and_, odata.or_, odata.not_):
        with pytest.raises(ValueError, match=r"^The ") as caught:
            combine(expr)
        assert str(caught.value).startswith(message)


def test_balanced_filters_pass_unchanged() -> None:
    for expr in (
        "a eq 'it''s (not) closed'",
        "a eq ''",
        "(a eq 1) and (b eq ')')",
        "team/any(t:t/email eq 'x')",
    ):
        assert odata.check_balanced(expr) == expr


def test_bind_quotes_values_and_leaves_literals_and_lambdas_alone() -> None:
    bound = odata.bind(
        "country eq :country and team/any(t:t/email eq :mail) and note eq ':country' and n eq :n",
        {"country": "DK' or 'a' eq 'a", "mail": "o'brien@example.com", "n": 5},
    )
    assert bound == (
        "country eq 'DK'' or ''a'' eq ''a' and team/any(t:t/email eq 'o''brien@example.com') "
        "and note eq ':country' and n eq 5"
    )
    assert odata.bind("createdDateTime ge 2026-11-01T10:00:00Z and a eq :a", {"a": True}) == (
        "createdDateTime ge 2026-11-01T10:00:00Z and a eq true"
    )
    with pytest.raises(
        ValueError, match=r"^\$filter placeholder :b has no value; filter_params has \['a'\]\.$"
    ):
        odata.bind("a eq :a and b eq :b", {"a": 1})
    with pytest.raises(ValueError, match=r"^filter_params \['z'\] match no :name placeholder"):
        odata.bind("a eq :a", {"a": 1, "z": 2})
