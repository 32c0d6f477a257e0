"""
What one extraction asks the API: the complete ``$filter``, the paging order, and the slices.

An :class:`ExtractionPlan` is plain data, built by the operator from its arguments and the run's
window; the engine turns it into one ``iter_pages`` query per slice.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_partner import odata
from airflow_provider_partner.extract.window import Window, user_filter, window_filter
from airflow_provider_partner.instants import Instant

__all__ = ["WINDOW_FIELDS", "ExtractionPlan", "Span", "equal_bounds", "span_filter", "split_window"]

#: Fields a window can apply to (the datetime fields the API can order by).
WINDOW_FIELDS: tuple[str, ...] = odata.ORDERBY_FIELDS

#: Slice bounds fall on whole microseconds: ticks per microsecond.
_MICROSECOND = 10


def split_window(window: Window, parts: int) -> list[tuple[Instant, Instant]]:
    """
    Split ``[start, end)`` into ``parts`` contiguous half-open slices of (nearly) equal length.

    Inner bounds fall on whole microseconds; the first slice starts exactly at ``start`` and the
    last ends exactly at ``end``.

    :param window: the window to split (closed: with an end).
    :param parts: number of slices (>= 1).
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}.")
    if window.end is None:
        raise ValueError("An open window (no end) cannot be split into slices.")
    bounds = [window.start, *equal_bounds(window.start, window.end, parts), window.end]
    # Very short windows may yield equal neighbouring bounds; empty slices are dropped.
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]


def equal_bounds(start: Instant, end: Instant, parts: int) -> list[Instant]:
    """
    The ``parts - 1`` inner bounds that cut ``[start, end)`` into equal lengths, on whole microseconds.

    Neighbours may be equal (and equal ``start``) when the range is shorter than ``parts`` microseconds.

    :param start: the range's start.
    :param end: the range's end (after ``start``).
    :param parts: number of lengths (>= 1).
    """
    low, length = start.ticks, end.ticks - start.ticks
    return [
        Instant(max(low, (low + length * i // parts) // _MICROSECOND * _MICROSECOND)) for i in range(1, parts)
    ]


@dataclass(frozen=True)
class Span:
    """
    One slice's range ``[start, end)`` of a datetime field; ``None`` leaves that side open.

    :param start: inclusive start, or ``None`` (from the oldest).
    :param end: exclusive end, or ``None`` (up to the newest, arrivals included).
    """

    start: Instant | None
    end: Instant | None


def span_filter(field: str, span: Span, user: str | None) -> str | None:
    """
    The user's ``$filter`` ANDed with the span's bounds on ``field``.

    :param field: the datetime field.
    :param span: the range (open sides add no condition).
    :param user: the user's OData filter, or ``None``.
    """
    bounds = [
        odata.ge(field, span.start) if span.start is not None else None,
        odata.lt(field, span.end) if span.end is not None else None,
    ]
    return odata.and_(user_filter(user), *bounds) if any(bounds) else user_filter(user)


@dataclass(frozen=True)
class ExtractionPlan:
    """
    The referrals one extraction reads.

    :param window_field: ``updatedDateTime`` or ``createdDateTime``; ``None`` reads everything the
        filter matches.
    :param window: the run's window (``None`` with no ``window_field``).
    :param filter: the user's OData ``$filter``, ANDed with the window.
    :param orderby: ``$orderby`` for paging; default: the output order (window field ascending).
    :param select: ``$select`` fields; ``id``, ``updatedDateTime`` and the window field are added.
    :param top: stop after this many referrals (one query only).
    :param parallelism: slices of the window fetched concurrently.
    """

    window_field: str | None
    window: Window | None
    filter: str | None = None
    orderby: str | None = None
    select: str | Sequence[str] | None = None
    top: int | None = None
    parallelism: int = 1

    @property
    def order_field(self) -> str:
        """The field the output is ordered by (then ``id``)."""
        return self.window_field or "updatedDateTime"

    @property
    def query_filter(self) -> str | None:
        """The complete ``$filter`` of the whole window (user filter and window)."""
        return window_filter(self.window_field, self.window, self.filter)

    def _select(self) -> str | None:
        if self.select is None:
            return None
        required = ["id", "updatedDateTime"] + ([self.window_field] if self.window_field else [])
        fields = self.select.split(",") if isinstance(self.select, str) else list(self.select)
        return odata.select([*fields, *required])

    def _common(self) -> dict[str, Any]:
        # Pages requested in output order arrive as the file is written (see spool.ordered_jsonl).
        return {
            "orderby": self.orderby or f"{self.order_field} asc",
            "select": self._select(),
            "top": self.top,
        }

    def span_query(self, field: str, span: Span) -> dict[str, Any]:
        """
        Keyword arguments of ``PartnerCenterHook.iter_pages`` for one slice of ``field``.

        :param field: the field the slices apply to (the window field, or ``createdDateTime``).
        :param span: the slice's range.
        """
        return {"filter": span_filter(field, span, self.filter), **self._common()}

    def queries(self) -> list[dict[str, Any]]:
        """Keyword arguments of ``PartnerCenterHook.iter_pages``, one dict per equal-length slice."""
        common = self._common()
        if self.window is None or self.window_field is None or self.parallelism == 1:
            return [{"filter": self.query_filter, **common}]
        return [
            {"filter": window_filter(self.window_field, _slice(self.window, a, b), self.filter), **common}
            for a, b in split_window(self.window, self.parallelism)
        ]


def _slice(window: Window, start: Instant, end: Instant) -> Window:
    return Window(start=start, end=end, interval_start=window.interval_start, source=window.source)
