"""
The window of a task run: which half-open range ``[start, end)`` of instants it reads.

The operator and the sensor resolve their windows here, with one order of precedence (the first
that applies wins):

1. explicit bounds given to the task (templated arguments);
2. the ``window_start`` / ``window_end`` params (DAG params or the run's conf), both set
   (the operator only);
3. the run's data interval, when it is a real interval (``data_interval_start < data_interval_end``),
   widened by ``lookback`` at the start;
4. with an open end allowed (the sensor): from the run's logical date, else the time it was
   triggered, with no upper bound (arrivals after the run began).

Anything else fails with :class:`~airflow_provider_partner.errors.PartnerCenterConfigError`
naming the fix. Consecutive windows that share a bound never read the same instant twice.

No IO here and nothing heavy to import: DAG files import this module at parse time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_partner import instants, odata
from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.instants import Instant

__all__ = [
    "PARAM_WINDOW_END",
    "PARAM_WINDOW_START",
    "Window",
    "WindowSource",
    "blank",
    "describe_window",
    "duration",
    "format_output_path",
    "iso_duration",
    "parse_bound",
    "resolve_window",
    "user_filter",
    "window_filter",
]

#: Names of the DAG params (or run conf keys) that carry an explicit window.
PARAM_WINDOW_START = "window_start"
PARAM_WINDOW_END = "window_end"

#: Where a window came from: the task's arguments, the params, the data interval, or the run's start.
WindowSource = Literal["operator", "params", "data_interval", "logical_date"]

_PLACEHOLDER = re.compile(r"\{(window_start|window_end)(?::([^{}]*))?\}")


@dataclass(frozen=True)
class Window:
    """
    A half-open window ``[start, end)`` of instants.

    :param start: inclusive start (``interval_start - lookback`` for a data interval).
    :param end: exclusive end; ``None`` for an open window (arrivals up to now: the sensor).
    :param interval_start: start of the run's own interval (before the lookback); output names use it.
    :param source: where the window came from.
    """

    start: Instant
    end: Instant | None
    interval_start: Instant
    source: WindowSource

    def __post_init__(self) -> None:
        # Accept datetimes (and API strings) as bounds; hold instants.
        object.__setattr__(self, "start", instants.parse(self.start, "start"))
        object.__setattr__(self, "interval_start", instants.parse(self.interval_start, "interval_start"))
        if self.end is not None:
            object.__setattr__(self, "end", instants.parse(self.end, "end"))


#: How the operator's log names where a window came from.
_SOURCE_NAMES: dict[str, str] = {
    "operator": "window_start/window_end of the task",
    "params": "the params window_start/window_end",
    "data_interval": "the data interval",
    "logical_date": "the run's logical date",
}


def duration(seconds: float) -> str:
    """
    A duration for people, its two largest units: ``3 d 4 h``, ``2 h 5 min``, ``7 min``, ``40 s``.

    :param seconds: the length (fractions of a second are dropped).
    """
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next((i for i, (value, _) in enumerate(units) if value), len(units) - 1)
    shown = [f"{value} {unit}" for value, unit in units[first : first + 2] if value]
    return " ".join(shown) or "0 s"


def iso_duration(value: dt.timedelta) -> str:
    """
    An ISO 8601 duration, as ``timedelta`` arguments are written in docs: ``PT2H``, ``P1DT30M``.

    :param value: a non-negative ``timedelta``.
    """
    minutes, seconds = divmod(value.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    micros = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
    day = f"{value.days}D" if value.days else ""
    clock = "".join(f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount) + (
        f"{seconds}{micros}S" if seconds or micros else ""
    )
    if not clock:
        return f"P{day}" if day else "PT0S"
    return f"P{day}T{clock}"


def describe_window(window: Window, lookback: dt.timedelta = dt.timedelta(0)) -> str:
    """
    Where a window came from, for the log: ``the data interval, start moved back 2 h by lookback=PT2H``.

    :param window: the resolved window.
    :param lookback: the task's ``lookback`` (it widens data intervals only; said so otherwise).
    """
    text = _SOURCE_NAMES[window.source]
    if lookback <= dt.timedelta(0):
        return text
    if window.source == "data_interval":
        return (
            f"{text}, start moved back {duration(lookback.total_seconds())} by "
            f"lookback={iso_duration(lookback)}"
        )
    return f"{text}; lookback={iso_duration(lookback)} not applied: it widens data intervals only"


def blank(value: Any) -> bool:
    """Whether a (rendered) argument is unset: ``None`` or an empty string."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_bound(value: Any, name: str) -> Instant:
    """
    Read a window bound (datetime or ISO-8601 string, UTC when it has no offset).

    :param value: a ``datetime`` or an ISO-8601 string (0-7 fractional digits).
    :param name: the name of the setting, for the error message.
    :raises PartnerCenterConfigError: the value is no date-time.
    """
    try:
        return instants.parse(value, name)
    except ValueError as err:
        raise PartnerCenterConfigError(str(err)) from None


def _explicit(start: Any, end: Any, where: str, source: WindowSource) -> Window:
    # An explicit window is read exactly as given: the lookback only widens data intervals.
    if blank(start) or blank(end):
        missing = PARAM_WINDOW_START if blank(start) else PARAM_WINDOW_END
        raise PartnerCenterConfigError(
            f"Only one bound of the explicit window is set in {where} ({missing} is missing); "
            f"give both {PARAM_WINDOW_START} and {PARAM_WINDOW_END}, e.g. "
            "{'window_start': '2026-11-01T00:00:00Z', 'window_end': '2026-11-02T00:00:00Z'}."
        )
    begin = parse_bound(start, f"{where} {PARAM_WINDOW_START}")
    finish = parse_bound(end, f"{where} {PARAM_WINDOW_END}")
    if finish <= begin:
        raise PartnerCenterConfigError(
            f"Explicit window in {where} is empty: {PARAM_WINDOW_START} {begin} is not before "
            f"{PARAM_WINDOW_END} {finish}."
        )
    return Window(start=begin, end=finish, interval_start=begin, source=source)


def _data_interval(context: Mapping[str, Any]) -> tuple[Instant, Instant] | None:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and start < end:
        return Instant.from_datetime(start), Instant.from_datetime(end)
    return None


def _run_start(context: Mapping[str, Any]) -> Instant | None:
    anchor = context.get("logical_date")
    dag_run = context.get("dag_run")
    if not isinstance(anchor, dt.datetime) and dag_run is not None:
        anchor = getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None)
    return Instant.from_datetime(anchor) if isinstance(anchor, dt.datetime) else None


def resolve_window(
    context: Mapping[str, Any],
    *,
    start: Any = None,
    end: Any = None,
    lookback: dt.timedelta = dt.timedelta(0),
    open_end: bool = False,
    task_id: str = "the task",
) -> Window:
    """
    Return the window of this run (see the module docstring for the order of precedence).

    :param context: the task context (``data_interval_start``/``_end``, ``params``, ``logical_date``
        and ``dag_run`` are read).
    :param start: the task's explicit start (rendered), or ``None``.
    :param end: the task's explicit end (rendered), or ``None``.
    :param lookback: how far before the interval start to begin reading (data interval only).
    :param open_end: the sensor's policy: an explicit ``start`` needs no ``end``, an explicit
        ``end`` alone caps the window, params are not read, and a run without a data interval
        waits from its logical date (or trigger time) with no upper bound.
    :param task_id: named in the error message.
    """
    if open_end:
        return _open_window(context, start, end, task_id)
    if not blank(start) or not blank(end):
        return _explicit(start, end, "the operator arguments", "operator")
    params = context.get("params") or {}
    p_start, p_end = params.get(PARAM_WINDOW_START), params.get(PARAM_WINDOW_END)
    if not blank(p_start) or not blank(p_end):
        return _explicit(p_start, p_end, "params", "params")
    interval = _data_interval(context)
    if interval is not None:
        begin, finish = interval
        return Window(start=begin - lookback, end=finish, interval_start=begin, source="data_interval")
    raise PartnerCenterConfigError(_no_window_message(context, task_id))


def _open_window(context: Mapping[str, Any], start: Any, end: Any, task_id: str) -> Window:
    cap = None if blank(end) else parse_bound(end, "created_before")
    if not blank(start):
        begin = parse_bound(start, "created_after")
        return Window(start=begin, end=cap, interval_start=begin, source="operator")
    interval = _data_interval(context)
    if interval is not None:
        return Window(
            start=interval[0], end=cap or interval[1], interval_start=interval[0], source="data_interval"
        )
    anchor = _run_start(context)
    if anchor is None:
        raise PartnerCenterConfigError(
            f"{task_id} cannot tell from when to wait: the run has no data interval, logical "
            "date or trigger time. Set created_after (e.g. '{{ data_interval_start }}')."
        )
    return Window(start=anchor, end=cap, interval_start=anchor, source="logical_date")


def _no_window_message(context: Mapping[str, Any], task_id: str) -> str:
    start = context.get("data_interval_start")
    if start is None or context.get("data_interval_end") is None:
        why = "this run has no data interval (a manual run without a logical date)"
    else:
        why = (
            f"this run's data interval is empty (data_interval_start == data_interval_end == {start}); "
            "a cron schedule string such as '@daily' is a trigger timetable in Airflow 3, with no interval"
        )
    return (
        f"Cannot tell which referrals {task_id} should read: {why}. Either schedule the DAG with "
        'CronDataIntervalTimetable("@daily", timezone="UTC") (airflow.sdk; on Airflow 3.1 '
        "airflow.timetables.interval) so every run covers "
        f"its interval, or pass an explicit window: trigger the run with conf "
        f'{{"{PARAM_WINDOW_START}": "2026-11-01T00:00:00Z", "{PARAM_WINDOW_END}": "2026-11-02T00:00:00Z"}} '
        f"(or set the operator's {PARAM_WINDOW_START}/{PARAM_WINDOW_END}), or set window_field=None "
        "to read everything the filter matches."
    )


def user_filter(filter: str | None, params: Mapping[str, Any] | None = None) -> str | None:
    """
    The user's ``$filter`` (rendered), its ``:name`` placeholders bound to ``params``, checked.

    :param filter: the filter, raw or built with :mod:`~airflow_provider_partner.odata`; blank: none.
    :param params: values for ``:name`` placeholders (``filter_params``), quoted by ``odata.literal``.
    :raises PartnerCenterConfigError: unbalanced parentheses or quotes (naming the position), a
        placeholder without a value, or a value no placeholder uses.
    """
    text = filter.strip() if isinstance(filter, str) and filter.strip() else None
    if text is None:
        if params:
            raise PartnerCenterConfigError(f"filter_params {sorted(params)} given, but there is no filter.")
        return None
    try:
        return odata.bind(text, params) if params else odata.check_balanced(text)
    except (ValueError, TypeError) as err:
        raise PartnerCenterConfigError(str(err)) from None


def window_filter(window_field: str | None, window: Window | None, user: str | None) -> str | None:
    """
    Combine the user's ``$filter`` with the window: ``(<user filter>) and <field> ge .. and <field> lt ..``.

    :param window_field: the datetime field the window applies to, or ``None`` (no window).
    :param window: the window (``end=None``: open, only the lower bound applies), or ``None``.
    :param user: the user's OData filter (raw or built with :mod:`odata`), or ``None``.
    :raises PartnerCenterConfigError: the user's filter does not balance (see :func:`user_filter`).
    """
    checked = user_filter(user)
    if window_field is None or window is None:
        return checked
    if window.end is None:
        return odata.and_(checked, odata.ge(window_field, window.start))
    return odata.and_(checked, odata.window(window_field, window.start, window.end))


def format_output_path(path: str, window: Window | None) -> str:
    """
    Fill ``{window_start}`` / ``{window_end}`` placeholders (optionally ``{window_start:%Y%m%d}``).

    The placeholders use the run's interval start (before any lookback) and its end, so runs that
    have no data interval (manual runs with an explicit window) still get distinct file names.

    :param path: the rendered output path.
    :param window: the resolved window, or ``None`` when windowing is off.
    """
    if not _PLACEHOLDER.search(path):
        return path
    if window is None or window.end is None:
        raise PartnerCenterConfigError(
            f"output_path {path!r} uses a window placeholder, but window_field is None (no window); "
            "use a Jinja template such as {{ ds }} instead."
        )
    values = {"window_start": window.interval_start.to_datetime(), "window_end": window.end.to_datetime()}

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        spec = match.group(2)
        return value.strftime(spec) if spec else value.strftime("%Y-%m-%dT%H%M%SZ")

    return _PLACEHOLDER.sub(fill, path)
