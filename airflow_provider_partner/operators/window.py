"""
The query window of a referrals extraction: which time range one task run reads.

Resolution order (the first that applies wins):

1. the operator's ``window_start`` / ``window_end`` arguments (templated), both set;
2. ``params["window_start"]`` / ``params["window_end"]`` (DAG params or the run's conf), both set;
3. the run's data interval, when it is a real interval (``data_interval_start < data_interval_end``),
   widened by ``lookback`` at the start.

Anything else fails with :class:`WindowError` naming the fix. The window is half-open
(``start <= t < end``), so consecutive intervals never read the same timestamp twice.

No IO here and nothing heavy to import: DAG files import this module at parse time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow.sdk.exceptions import AirflowException

from airflow_provider_partner import odata

__all__ = [
    "PARAM_WINDOW_END",
    "PARAM_WINDOW_START",
    "QueryWindow",
    "WindowError",
    "build_filter",
    "format_output_path",
    "parse_window_datetime",
    "resolve_window",
    "split_window",
]

#: Names of the DAG params (or run conf keys) that carry an explicit window.
PARAM_WINDOW_START = "window_start"
PARAM_WINDOW_END = "window_end"

WindowSource = Literal["operator", "params", "data_interval"]

_PLACEHOLDER = re.compile(r"\{(window_start|window_end)(?::([^{}]*))?\}")


class WindowError(AirflowException, ValueError):
    """The run has no usable window, or an explicit window is invalid; the message names the fix."""


@dataclass(frozen=True)
class QueryWindow:
    """
    A half-open time window ``[start, end)`` on the window field.

    :param start: inclusive start of the query (``interval_start - lookback``).
    :param end: exclusive end of the query.
    :param interval_start: start of the run's own interval (before the lookback); output names use it.
    :param source: where the window came from.
    """

    start: dt.datetime
    end: dt.datetime
    interval_start: dt.datetime
    source: WindowSource

    def as_dict(self) -> dict[str, str]:
        """ISO-8601 UTC strings of the window, for XCom, logs and asset events."""
        return {
            "window_start": _iso(self.start),
            "window_end": _iso(self.end),
            "interval_start": _iso(self.interval_start),
        }


def _iso(value: dt.datetime) -> str:
    return odata.datetime_literal(value)


def parse_window_datetime(value: Any, name: str) -> dt.datetime:
    """
    Turn a window bound (datetime or ISO-8601 string) into an aware UTC datetime.

    See :func:`airflow_provider_partner.odata.parse_utc_datetime`; errors are :class:`WindowError`.

    :param value: a ``datetime`` or an ISO-8601 string.
    :param name: the name of the setting, for the error message.
    """
    try:
        return odata.parse_utc_datetime(value, name)
    except ValueError as err:
        raise WindowError(str(err)) from None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _explicit(start: Any, end: Any, where: str, source: WindowSource) -> QueryWindow:
    # An explicit window is read exactly as given: the lookback only widens data intervals.
    if _blank(start) or _blank(end):
        missing = PARAM_WINDOW_START if _blank(start) else PARAM_WINDOW_END
        raise WindowError(
            f"Only one bound of the explicit window is set in {where} ({missing} is missing); "
            f"give both {PARAM_WINDOW_START} and {PARAM_WINDOW_END}, e.g. "
            "{'window_start': '2026-11-01T00:00:00Z', 'window_end': '2026-11-02T00:00:00Z'}."
        )
    begin = parse_window_datetime(start, f"{where} {PARAM_WINDOW_START}")
    finish = parse_window_datetime(end, f"{where} {PARAM_WINDOW_END}")
    if finish <= begin:
        raise WindowError(
            f"Explicit window in {where} is empty: {PARAM_WINDOW_START} {_iso(begin)} is not before "
            f"{PARAM_WINDOW_END} {_iso(finish)}."
        )
    return QueryWindow(start=begin, end=finish, interval_start=begin, source=source)


def resolve_window(
    context: Mapping[str, Any],
    *,
    lookback: dt.timedelta = dt.timedelta(0),
    window_start: Any = None,
    window_end: Any = None,
    task_id: str = "the task",
) -> QueryWindow:
    """
    Return the window of this run (see the module docstring for the order of precedence).

    :param context: the task context (``data_interval_start``/``_end`` and ``params`` are read).
    :param lookback: how far before the interval start to begin reading (data interval only).
    :param window_start: the operator's explicit start (rendered), or ``None``.
    :param window_end: the operator's explicit end (rendered), or ``None``.
    :param task_id: named in the error message.
    """
    if not _blank(window_start) or not _blank(window_end):
        return _explicit(window_start, window_end, "the operator arguments", "operator")
    params = context.get("params") or {}
    p_start, p_end = params.get(PARAM_WINDOW_START), params.get(PARAM_WINDOW_END)
    if not _blank(p_start) or not _blank(p_end):
        return _explicit(p_start, p_end, "params", "params")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and start < end:
        begin = parse_window_datetime(start, "data_interval_start")
        finish = parse_window_datetime(end, "data_interval_end")
        return QueryWindow(start=begin - lookback, end=finish, interval_start=begin, source="data_interval")
    if start is None or end is None:
        why = "this run has no data interval (a manual run without a logical date)"
    else:
        why = (
            f"this run's data interval is empty (data_interval_start == data_interval_end == {start}); "
            "a cron schedule string such as '@daily' is a trigger timetable in Airflow 3, with no interval"
        )
    raise WindowError(
        f"Cannot tell which referrals {task_id} should read: {why}. Either schedule the DAG with "
        'CronDataIntervalTimetable("@daily", timezone="UTC") (from airflow.sdk) so every run covers '
        f"its interval, or pass an explicit window: trigger the run with conf "
        f'{{"{PARAM_WINDOW_START}": "2026-11-01T00:00:00Z", "{PARAM_WINDOW_END}": "2026-11-02T00:00:00Z"}} '
        f"(or set the operator's {PARAM_WINDOW_START}/{PARAM_WINDOW_END}), or set window_field=None "
        "to read everything the filter matches."
    )


def build_filter(window_field: str | None, window: QueryWindow | None, user_filter: str | None) -> str | None:
    """
    Combine the user's ``$filter`` with the window: ``(<user filter>) and <field> ge .. and <field> lt ..``.

    :param window_field: the datetime field the window applies to, or ``None`` (no window).
    :param window: the window, or ``None``.
    :param user_filter: the user's OData filter (raw or built with :mod:`odata`), or ``None``.
    """
    user = user_filter.strip() if isinstance(user_filter, str) and user_filter.strip() else None
    if window_field is None or window is None:
        return user
    return odata.and_(user, odata.window(window_field, window.start, window.end))


def split_window(window: QueryWindow, parts: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """
    Split ``[start, end)`` into ``parts`` contiguous half-open slices of (nearly) equal length.

    Slice boundaries are whole microseconds; the last slice ends exactly at ``end``.

    :param window: the window to split.
    :param parts: number of slices (>= 1).
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}.")
    span = window.end - window.start
    bounds = [window.start + (span * i) // parts for i in range(parts)] + [window.end]
    # Very short windows may yield equal neighbouring bounds; empty slices are dropped.
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]


def format_output_path(path: str, window: QueryWindow | None) -> str:
    """
    Fill ``{window_start}`` / ``{window_end}`` placeholders (optionally ``{window_start:%Y%m%d}``).

    The placeholders use the run's interval start (before any lookback) and its end, so runs that
    have no data interval (manual runs with an explicit window) still get distinct file names.

    :param path: the rendered output path.
    :param window: the resolved window, or ``None`` when windowing is off.
    """
    if not _PLACEHOLDER.search(path):
        return path
    if window is None:
        raise WindowError(
            f"output_path {path!r} uses a window placeholder, but window_field is None (no window); "
            "use a Jinja template such as {{ ds }} instead."
        )
    values = {"window_start": window.interval_start, "window_end": window.end}

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        spec = match.group(2)
        return value.strftime(spec) if spec else value.strftime("%Y-%m-%dT%H%M%SZ")

    return _PLACEHOLDER.sub(fill, path)
