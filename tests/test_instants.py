"""The API's instants: parsing, literals, sort keys and conversions (pure functions)."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_partner import instants
from airflow_provider_partner.instants import Instant

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("2026-11-01", "2026-11-01T00:00:00Z"),
        ("2026-11-01T10:00", "2026-11-01T10:00:00Z"),
        ("2026-11-01T10:00:00", "2026-11-01T10:00:00Z"),
        ("2026-11-01T10:00:00z", "2026-11-01T10:00:00Z"),
        ("2026-11-01T10:00:00.5Z", "2026-11-01T10:00:00.500000Z"),
        ("2026-11-01T10:00:00.1234567Z", "2026-11-01T10:00:00.1234567Z"),
        ("2026-11-01T10:00:00.0000000Z", "2026-11-01T10:00:00Z"),
        ("2026-11-01T10:00:00.0000001Z", "2026-11-01T10:00:00.0000001Z"),
        ("2026-11-01T11:30:00.25+01:30", "2026-11-01T10:00:00.250000Z"),
        ("2026-11-01T05:00:00-0500", "2026-11-01T10:00:00Z"),
        ("2026-11-01 10:00:00Z", "2026-11-01T10:00:00Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.9999999Z", "1969-12-31T23:59:59.9999999Z"),
    ],
)
def test_parse_then_literal(text: str, literal: str) -> None:
    assert instants.parse(text).literal() == literal
    # The literal reads back as the same instant.
    assert instants.parse(literal) == instants.parse(text)


def test_datetimes_dates_and_instants_parse_to_the_same_instant() -> None:
    expected = instants.parse("2026-11-01T10:00:00.000004Z")
    assert instants.parse(dt.datetime(2026, 11, 1, 10, 0, 0, 4, tzinfo=UTC)) == expected
    assert instants.parse(pendulum.datetime(2026, 11, 1, 11, 0, 0, 4, tz="Europe/Copenhagen")) == expected
    assert instants.parse(dt.datetime(2026, 11, 1, 10, 0, 0, 4)) == expected  # naive is UTC
    assert instants.parse(expected) is expected
    assert instants.parse(dt.date(2026, 11, 1)) == instants.parse("2026-11-01T00:00:00Z")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "since='yesterday' is not an ISO-8601 date-time; use e.g. '2026-11-01T00:00:00Z'"),
        ("2026-13-01", "since='2026-13-01' is not a valid date-time (month must be in 1..12)."),
        (
            "2026-11-01T25:00:00Z",
            "since='2026-11-01T25:00:00Z' is not a valid date-time (hour must be in 0..23).",
        ),
        ("2026-11-01T10:00:00.123456789Z", "since='2026-11-01T10:00:00.123456789Z' has 9 fractional digits"),
        ("", "since must be an ISO-8601 date-time string or a datetime, got str ''."),
        (5, "since must be an ISO-8601 date-time string or a datetime, got int 5."),
    ],
)
def test_bad_values_name_the_setting(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r"^since") as caught:
        instants.parse(value, "since")
    assert str(caught.value).startswith(message)


def test_order_arithmetic_and_datetime_round_trip() -> None:
    a = instants.parse("2026-11-01T10:00:00.1234567Z")
    b = instants.parse("2026-11-01T10:00:00.1234568Z")
    assert a < b
    assert sorted([b, a]) == [a, b]
    assert (a + dt.timedelta(hours=1)).literal() == "2026-11-01T11:00:00.1234567Z"
    assert (a - dt.timedelta(microseconds=1)).literal() == "2026-11-01T10:00:00.1234557Z"
    assert (a + pendulum.duration(days=1)).literal() == "2026-11-02T10:00:00.1234567Z"
    # A datetime holds microseconds: the 7th digit is dropped, never rounded up.
    assert b.to_datetime() == dt.datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert Instant.from_datetime(b.to_datetime()).literal() == "2026-11-01T10:00:00.123456Z"
    assert str(a) == a.literal()


def test_sort_key_agrees_with_instant_order() -> None:
    texts = [
        "2026-11-01T10:00:00.5Z",
        "2026-11-01T10:00:00Z",
        "2026-11-01T12:00:00.2500000+02:00",
        "2026-11-01T10:00:00.1234567Z",
        "2026-11-01T09:59:59.9999999Z",
    ]
    by_key = sorted(texts, key=instants.sort_key)
    by_instant = sorted(texts, key=instants.parse)
    assert by_key == by_instant
    assert instants.sort_key("2026-11-01T12:00:00.2500000+02:00") == "2026-11-01T10:00:00.2500000Z"


def test_to_datetime_for_parquet() -> None:
    assert instants.to_datetime("2026-11-01T10:00:00.1234567Z") == dt.datetime(
        2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC
    )
    assert instants.to_datetime("not a date") is None
