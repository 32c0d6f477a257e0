"""Window resolution, filter composition, slicing and output-path placeholders (pure functions)."""

from __future__ import annotations

import datetime as dt
import itertools

import pendulum
import pytest

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.extract.slices import split_window
from airflow_provider_partner.extract.window import (
    Window,
    format_output_path,
    parse_bound,
    resolve_window,
    window_filter,
)
from airflow_provider_partner.instants import Instant

UTC = dt.timezone.utc
NOV1 = dt.datetime(2026, 11, 1, tzinfo=UTC)
NOV2 = dt.datetime(2026, 11, 2, tzinfo=UTC)


def at(moment: dt.datetime) -> Instant:
    return Instant.from_datetime(moment)


def test_data_interval_with_lookback_from_pendulum_values():
    context = {
        "data_interval_start": pendulum.datetime(2026, 11, 1, tz="UTC"),
        "data_interval_end": pendulum.datetime(2026, 11, 2, tz="UTC"),
    }
    window = resolve_window(context, lookback=dt.timedelta(hours=2))
    assert window == Window(
        start=dt.datetime(2026, 10, 31, 22, tzinfo=UTC), end=NOV2, interval_start=NOV1, source="data_interval"
    )
    assert (window.start.literal(), window.end.literal(), window.interval_start.literal()) == (
        "2026-10-31T22:00:00Z",
        "2026-11-02T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )


def test_precedence_operator_then_params_then_interval():
    context = {"data_interval_start": NOV1, "data_interval_end": NOV2, "params": {}}
    context["params"] = {"window_start": "2026-10-01", "window_end": "2026-10-02T12:00:00+02:00"}
    from_params = resolve_window(context, lookback=dt.timedelta(days=1))
    assert (from_params.start, from_params.end, from_params.source) == (
        at(dt.datetime(2026, 10, 1, tzinfo=UTC)),
        at(dt.datetime(2026, 10, 2, 10, tzinfo=UTC)),
        "params",
    )
    from_args = resolve_window(context, start="2026-09-01T00:00:00", end=NOV1)
    assert (from_args.start, from_args.end, from_args.source) == (
        at(dt.datetime(2026, 9, 1, tzinfo=UTC)),
        at(NOV1),
        "operator",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01", NOV1),
        ("2026-11-01T00:00:00Z", NOV1),
        ("2026-11-01T01:00:00+01:00", NOV1),
        ("2026-11-01T00:00:00.250000", NOV1 + dt.timedelta(milliseconds=250)),
        (dt.date(2026, 11, 1), NOV1),
        (dt.datetime(2026, 11, 1), NOV1),
    ],
)
def test_parse_bound(value, expected):
    parsed = parse_bound(value, "window_start")
    assert parsed == at(expected)
    assert parsed.to_datetime() == expected
    assert parsed.to_datetime().tzinfo is UTC


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"window_start": "2026-11-01"},
            "Only one bound of the explicit window is set in params (window_end",
        ),
        (
            {"window_start": "2026-11-02", "window_end": "2026-11-01"},
            "Explicit window in params is empty: window_start 2026-11-02T00:00:00Z is not before window_end",
        ),
        ({"window_start": "yesterday", "window_end": "2026-11-01"}, "params window_start='yesterday' is not"),
        ({"window_start": 5, "window_end": "2026-11-01"}, "params window_start must be an ISO-8601"),
    ],
)
def test_bad_explicit_windows(params, message):
    with pytest.raises(PartnerCenterConfigError) as caught:
        resolve_window({"params": params})
    assert str(caught.value).startswith(message)


def test_blank_params_fall_through_to_the_interval():
    context = {"data_interval_start": NOV1, "data_interval_end": NOV2, "params": {"window_start": ""}}
    assert resolve_window(context).source == "data_interval"


def test_window_filter():
    window = Window(start=NOV1, end=NOV2, interval_start=NOV1, source="params")
    span = "updatedDateTime ge 2026-11-01T00:00:00Z and updatedDateTime lt 2026-11-02T00:00:00Z"
    assert window_filter("updatedDateTime", window, None) == span
    assert window_filter("updatedDateTime", window, "  ") == span
    assert window_filter("updatedDateTime", window, "status eq 'New'") == f"status eq 'New' and {span}"
    assert window_filter("updatedDateTime", window, "a eq 1 or b eq 2") == f"(a eq 1 or b eq 2) and {span}"
    assert window_filter(None, None, "status eq 'New'") == "status eq 'New'"
    assert window_filter(None, None, None) is None


def test_split_window_is_contiguous_and_half_open():
    window = Window(
        start=NOV1, end=NOV1 + dt.timedelta(days=1, microseconds=1), interval_start=NOV1, source="params"
    )
    slices = split_window(window, 3)
    assert len(slices) == 3
    assert slices[0][0] == window.start
    assert slices[-1][1] == window.end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
    assert slices[1][0] == at(NOV1 + dt.timedelta(hours=8))
    tiny = Window(start=NOV1, end=NOV1 + dt.timedelta(microseconds=2), interval_start=NOV1, source="params")
    assert split_window(tiny, 4) == [
        (at(NOV1), at(NOV1 + dt.timedelta(microseconds=1))),
        (at(NOV1 + dt.timedelta(microseconds=1)), at(NOV1 + dt.timedelta(microseconds=2))),
    ]


def test_split_window_keeps_the_apis_100_ns_bounds_at_the_ends():
    start, end = "2026-11-01T00:00:00.0000001Z", "2026-11-01T00:00:00.0000091Z"
    window = Window(start=start, end=end, interval_start=start, source="params")
    slices = split_window(window, 3)
    assert [(a.literal(), b.literal()) for a, b in slices] == [
        ("2026-11-01T00:00:00.0000001Z", "2026-11-01T00:00:00.000003Z"),
        ("2026-11-01T00:00:00.000003Z", "2026-11-01T00:00:00.000006Z"),
        ("2026-11-01T00:00:00.000006Z", "2026-11-01T00:00:00.0000091Z"),
    ]


def test_output_path_placeholders():
    window = Window(start=NOV1 - dt.timedelta(hours=6), end=NOV2, interval_start=NOV1, source="data_interval")
    assert (
        format_output_path("s3://aws@b/r/{window_start:%Y/%m/%d}/x.jsonl", window)
        == "s3://aws@b/r/2026/11/01/x.jsonl"
    )
    assert format_output_path("file:///d/{window_start}_{window_end}.jsonl", window) == (
        "file:///d/2026-11-01T000000Z_2026-11-02T000000Z.jsonl"
    )
    assert format_output_path("file:///d/plain.jsonl", None) == "file:///d/plain.jsonl"
    with pytest.raises(PartnerCenterConfigError, match="uses a window placeholder, but window_field is None"):
        format_output_path("file:///d/{window_start}.jsonl", None)
