"""Window resolution, filter composition, slicing and output-path placeholders (pure functions)."""

from __future__ import annotations

import datetime as dt
import itertools

import pendulum
import pytest

from airflow_provider_partner.operators.window import (
    QueryWindow,
    WindowError,
    build_filter,
    format_output_path,
    parse_window_datetime,
    resolve_window,
    split_window,
)

UTC = dt.timezone.utc
NOV1 = dt.datetime(2026, 11, 1, tzinfo=UTC)
NOV2 = dt.datetime(2026, 11, 2, tzinfo=UTC)


def test_data_interval_with_lookback_from_pendulum_values():
    context = {
        "data_interval_start": pendulum.datetime(2026, 11, 1, tz="UTC"),
        "data_interval_end": pendulum.datetime(2026, 11, 2, tz="UTC"),
    }
    window = resolve_window(context, lookback=dt.timedelta(hours=2))
    assert window == QueryWindow(
        start=dt.datetime(2026, 10, 31, 22, tzinfo=UTC), end=NOV2, interval_start=NOV1, source="data_interval"
    )
    assert window.as_dict() == {
        "window_start": "2026-10-31T22:00:00Z",
        "window_end": "2026-11-02T00:00:00Z",
        "interval_start": "2026-11-01T00:00:00Z",
    }


def test_precedence_operator_then_params_then_interval():
    context = {"data_interval_start": NOV1, "data_interval_end": NOV2, "params": {}}
    context["params"] = {"window_start": "2026-10-01", "window_end": "2026-10-02T12:00:00+02:00"}
    from_params = resolve_window(context, lookback=dt.timedelta(days=1))
    assert (from_params.start, from_params.end, from_params.source) == (
        dt.datetime(2026, 10, 1, tzinfo=UTC),
        dt.datetime(2026, 10, 2, 10, tzinfo=UTC),
        "params",
    )
    from_args = resolve_window(context, window_start="2026-09-01T00:00:00", window_end=NOV1)
    assert (from_args.start, from_args.end, from_args.source) == (
        dt.datetime(2026, 9, 1, tzinfo=UTC),
        NOV1,
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
def test_parse_window_datetime(value, expected):
    parsed = parse_window_datetime(value, "window_start")
    assert parsed == expected
    assert parsed.tzinfo is UTC


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
    with pytest.raises(WindowError) as caught:
        resolve_window({"params": params})
    assert str(caught.value).startswith(message)


def test_blank_params_fall_through_to_the_interval():
    context = {"data_interval_start": NOV1, "data_interval_end": NOV2, "params": {"window_start": ""}}
    assert resolve_window(context).source == "data_interval"


def test_build_filter():
    window = QueryWindow(start=NOV1, end=NOV2, interval_start=NOV1, source="params")
    span = "updatedDateTime ge 2026-11-01T00:00:00Z and updatedDateTime lt 2026-11-02T00:00:00Z"
    assert build_filter("updatedDateTime", window, None) == span
    assert build_filter("updatedDateTime", window, "  ") == span
    assert build_filter("updatedDateTime", window, "status eq 'New'") == f"status eq 'New' and {span}"
    assert build_filter("updatedDateTime", window, "a eq 1 or b eq 2") == f"(a eq 1 or b eq 2) and {span}"
    assert build_filter(None, None, "status eq 'New'") == "status eq 'New'"
    assert build_filter(None, None, None) is None


def test_split_window_is_contiguous_and_half_open():
    window = QueryWindow(
        start=NOV1, end=NOV1 + dt.timedelta(days=1, microseconds=1), interval_start=NOV1, source="params"
    )
    slices = split_window(window, 3)
    assert len(slices) == 3
    assert slices[0][0] == window.start
    assert slices[-1][1] == window.end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
    assert slices[1][0] == NOV1 + dt.timedelta(hours=8)
    tiny = QueryWindow(
        start=NOV1, end=NOV1 + dt.timedelta(microseconds=2), interval_start=NOV1, source="params"
    )
    assert split_window(tiny, 4) == [
        (NOV1, NOV1 + dt.timedelta(microseconds=1)),
        (NOV1 + dt.timedelta(microseconds=1), NOV1 + dt.timedelta(microseconds=2)),
    ]


def test_output_path_placeholders():
    window = QueryWindow(
        start=NOV1 - dt.timedelta(hours=6), end=NOV2, interval_start=NOV1, source="data_interval"
    )
    assert (
        format_output_path("s3://aws@b/r/{window_start:%Y/%m/%d}/x.jsonl", window)
        == "s3://aws@b/r/2026/11/01/x.jsonl"
    )
    assert format_output_path("file:///d/{window_start}_{window_end}.jsonl", window) == (
        "file:///d/2026-11-01T000000Z_2026-11-02T000000Z.jsonl"
    )
    assert format_output_path("file:///d/plain.jsonl", None) == "file:///d/plain.jsonl"
    with pytest.raises(WindowError, match="uses a window placeholder, but window_field is None"):
        format_output_path("file:///d/{window_start}.jsonl", None)
