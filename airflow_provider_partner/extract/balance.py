"""
Balanced slices: cut the window (or the whole history) where the number of referrals is even.

Equal-width time slices hold unequal numbers of referrals (business hours, a campaign, a
backfill of old data), so the slowest slice sets the pace. Here the cuts are found by asking the
API how many referrals a range holds: one request with ``$top=1``, ``$select=id`` and
``$count=true`` reads ``@odata.count`` (the count of every match, whatever ``$top`` cuts).

The first round reads the first page of each of equal lengths of the range, all at once, with
``$count=true`` on it: one round trip, which gives every length's count (and the total) and is
paging already. Lengths that are even enough (see :data:`REFINE_SURPLUS`) are the slices, and
paging goes on from those pages: on evenly spread data, the common case, balancing costs nothing
but the ``$count``. Otherwise the first pages are dropped and each inner cut is searched on time
(interpolating and halving in turn) inside the length its share falls in, in a thread of its
own, until its side holds its share within :data:`TOLERANCE`; a slice therefore holds its share
within twice that.

Without a window (a full-history extraction) the slices go by ``createdDateTime``, which never
changes; the bounds come from the oldest and newest referral (two probes at once), and the first
and last slices are open-ended, so referrals created meanwhile still fall in one of them. A
server that sends no ``@odata.count`` gets the equal lengths, from their first pages; one that refuses
``$count`` (HTTP 400) gets equal-width slices (the window) or one query (no window).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_partner import instants
from airflow_provider_partner.errors import PartnerCenterCancelledError, PartnerCenterHTTPError
from airflow_provider_partner.extract.slices import Span, equal_bounds, span_filter, split_window
from airflow_provider_partner.hooks.paging import PageResponse, ReferralPage, parse_page
from airflow_provider_partner.hooks.partner_center import MAX_PAGE_SIZE
from airflow_provider_partner.instants import Instant

if TYPE_CHECKING:
    from airflow_provider_partner.extract.slices import ExtractionPlan
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = ["REFINE_SURPLUS", "TOLERANCE", "balanced_spans", "plan_queries"]

log = logging.getLogger(__name__)

#: A cut is good enough when its side is off by at most this share of one slice.
TOLERANCE = 0.04
#: Count probes per cut at most (every other one halves the time range).
MAX_PROBES = 64
#: Equal lengths are kept while none holds more than this many referrals above its share: a
#: cut search costs two or more round trips before paging starts, and at the documented page
#: size (100) this surplus is the two pages that the largest slice would save at best.
REFINE_SURPLUS = 2 * MAX_PAGE_SIZE
#: Full-history slices go by this field: it never changes, so a referral stays in its slice.
HISTORY_FIELD = "createdDateTime"
_MICROSECOND = 10


def count_of(page: ReferralPage) -> int | None:
    """The page's ``@odata.count`` (``None`` when the server sent none)."""
    return page.count


class _Counter:
    """Counts of ``field`` ranges under the user's filter, through one hook (one thread)."""

    def __init__(
        self, hook: PartnerCenterHook, field: str, user: str | None, stop: threading.Event | None
    ) -> None:
        self.hook, self.field, self.user, self.stop = hook, field, user, stop
        self.probes = self.pages = 0

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise PartnerCenterCancelledError(
                "Stopped while planning the slices because the task is being killed; no output was written."
            )

    def head(self, query: Mapping[str, Any]) -> tuple[PageResponse, int | None] | None:
        """
        The first page of a slice's own query, asked with ``$count=true``: its response and count.

        Not a probe: when the slices stand, paging goes on from this page (``iter_pages(first=)``).
        ``None`` when the API refuses ``$count`` on it (HTTP 400).
        """
        self._check_stop()
        self.pages += 1
        try:
            response = self.hook.request_first_page(
                filter=query.get("filter"),
                orderby=query.get("orderby"),
                select=query.get("select"),
                count=True,
            )
        except PartnerCenterHTTPError as err:
            if err.status != 400:
                raise
            log.warning("The API refused $count on a first page (HTTP 400): slicing without counts")
            return None
        body, content_type, request_id = response
        page = parse_page(
            body=body,
            content_type=content_type,
            number=1,
            url=self.hook.settings.referrals_url,
            request_id=request_id,
        )
        return response, count_of(page)

    def _first_page(self, params: dict[str, str | None]) -> ReferralPage | None:
        """
        One request (``$top=1``, ``$count=true``): the probe never follows a nextLink.

        Sent through the hook's HTTP client (retries, the shared back-off, the token) rather than
        ``iter_pages``, which has no ``$count``: the docs do not say the service counts unasked.
        """
        self._check_stop()
        query = urlencode(
            {"$top": "1", "$count": "true", **{k: v for k, v in params.items() if v is not None}},
            quote_via=quote,
            safe="$'(),/:@",
        )
        url = f"{self.hook.settings.referrals_url}?{query}"
        try:
            response = self.hook.get_conn().request("GET", url)
        except PartnerCenterHTTPError as err:
            if err.status != 400:
                raise
            # The API refused the probe's shape ($count, $top with $select): paging may still work.
            log.warning("The API refused a count probe (HTTP 400): slicing without counts")
            return None
        return parse_page(
            body=response.content,
            content_type=response.headers.get("Content-Type"),
            number=1,
            url=url,
            request_id=response.headers.get("Request-ID"),
        )

    def count(self, span: Span) -> int | None:
        """``@odata.count`` of the span, ``None`` when the server sends none."""
        self.probes += 1
        page = self._first_page({"$filter": span_filter(self.field, span, self.user), "$select": "id"})
        return None if page is None else count_of(page)

    def edge(self, descending: bool) -> Instant | None:
        """The oldest (newest) ``field`` value under the user's filter; ``None`` when nothing matches."""
        self.probes += 1
        order = f"{self.field} {'desc' if descending else 'asc'}"
        every = span_filter(self.field, Span(None, None), self.user)
        page = self._first_page({"$filter": every, "$orderby": order, "$select": f"id,{self.field}"})
        if page is None or not page.records:
            return None
        try:
            return instants.parse(page.records[0].get(self.field), self.field)
        except (TypeError, ValueError):
            return None


def _next_probe(low: int, high: int, below: int, above: int, target: int, interpolate: bool) -> int:
    """A whole microsecond strictly inside ``(low, high)``, or ``low`` when there is none."""
    if interpolate and above > below:
        # Where the target would be if the referrals were spread evenly over the bracket.
        guess = low + (high - low) * (target - below) // (above - below)
    else:
        guess = low + (high - low) // 2
    middle = guess // _MICROSECOND * _MICROSECOND
    if middle <= low:
        middle = (low // _MICROSECOND + 1) * _MICROSECOND
    return middle if middle < high else low


def _search(
    counter: _Counter, lower: Span, bracket: tuple[int, int, int, int], target: int, tolerance: int
) -> Instant:
    """
    The instant ``t`` (ticks) where ``[lower.start, t)`` holds about ``target`` referrals.

    ``bracket`` is ``(low, below, high, above)``: ``[lower.start, low)`` holds ``below``
    referrals, ``[lower.start, high)`` holds ``above``. Probes alternate between interpolating
    (fast on even data) and halving the bracket (sure on skewed data: a burst in one hour of a
    year takes about 40 halvings).
    """
    low, below, high, above = bracket
    best, best_error = high, abs(above - target)
    if abs(below - target) < best_error:
        best, best_error = low, abs(below - target)
    for attempt in range(MAX_PROBES):
        if best_error <= tolerance:
            break
        middle = _next_probe(low, high, below, above, target, interpolate=attempt % 2 == 0)
        if middle <= low:
            break
        found = counter.count(Span(lower.start, Instant(middle)))
        if found is None:
            break
        if abs(found - target) < best_error:
            best, best_error = middle, abs(found - target)
        if found < target:
            low, below = middle, found
        else:
            high, above = middle, found
    return Instant(best)


def _range(counters: Sequence[_Counter], outer: Span) -> tuple[Instant, Instant] | None:
    """
    ``outer`` with its open ends closed by the oldest and newest referral (two probes at once).

    ``None`` when nothing matches (or the server cannot say).
    """
    start, end = outer.start, outer.end
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="partner-referrals-probe") as pool:
        oldest = pool.submit(counters[0].edge, False) if start is None else None
        newest = pool.submit(counters[1 % len(counters)].edge, True) if end is None else None
        if oldest is not None:
            start = oldest.result()
        if newest is not None:
            found = newest.result()
            end = Instant(found.ticks + _MICROSECOND) if found is not None else None
    if start is None or end is None or end <= start:
        return None
    return start, end


#: A planned slice: its range and, when the planning read it already, its first page's response.
Slice = tuple[Span, PageResponse | None]


def _non_empty(slices: Iterable[Slice]) -> list[Slice]:
    """The slices whose range can hold a referral (equal bounds come from very short ranges)."""
    return [
        (span, first)
        for span, first in slices
        if span.start is None or span.end is None or span.start < span.end
    ]


def balanced_spans(
    hooks: Sequence[PartnerCenterHook],
    field: str,
    user: str | None,
    query_of: Callable[[Span], Mapping[str, Any]],
    outer: Span,
    parts: int,
    stop: threading.Event | None = None,
) -> list[Slice] | None:
    """
    ``parts`` contiguous slices covering ``outer``, each holding about the same number of referrals.

    The first round reads, all at once, the first page of each of ``parts`` equal lengths, with
    its ``@odata.count``. When no length holds more than :data:`REFINE_SURPLUS` referrals (or
    :data:`TOLERANCE` of a share, if more) above its share, those lengths are the slices and
    their first pages are kept: balancing cost nothing but the ``$count``. Otherwise each inner
    cut is searched from the bracket those counts give (count probes), and the first pages are
    dropped (their referrals are read again by the balanced slices).

    :param hooks: at least ``parts`` hooks, one per thread (slice ``k`` is read with hook ``k``).
    :param field: the datetime field the slices apply to.
    :param user: the user's ``$filter`` (ANDed with every range the probes count).
    :param query_of: the ``iter_pages`` arguments of a slice (its range ANDed with the user's filter).
    :param outer: the whole range (open ends allowed: the full history).
    :param parts: number of slices wanted.
    :param stop: when set, the next request raises
        :class:`~airflow_provider_partner.errors.PartnerCenterCancelledError`.
    :return: the slices (fewer when some would be empty), or ``None`` when the API refuses
        ``$count`` or nothing matches: the caller falls back to equal-width slices.
    """
    if len(hooks) < parts:
        raise ValueError(f"{len(hooks)} hooks for {parts} threads.")
    started = time.monotonic()
    counters = [_Counter(hooks[k], field, user, stop) for k in range(parts)]
    closed = _range(counters, outer)
    if closed is None:
        return None
    start, end = closed
    inner = equal_bounds(start, end, parts)
    # The first length keeps outer's open start, the last its open end: arrivals meanwhile fall in.
    lengths = [Span(a, b) for a, b in itertools.pairwise([outer.start, *inner, outer.end])]
    with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="partner-referrals-probe") as pool:
        heads = list(pool.map(lambda k: counters[k].head(query_of(lengths[k])), range(len(lengths))))
        if None in heads:
            return None
        firsts = [(length, head[0]) for length, head in zip(lengths, heads, strict=True) if head is not None]
        counts = [head[1] for head in heads if head is not None and head[1] is not None]
        if len(counts) < len(heads):
            log.info("No @odata.count from the API: slicing into equal lengths")
            return _non_empty(firsts)
        total = sum(counts)
        if not total:
            return None
        share = total / parts
        tolerance = max(1, int(share * TOLERANCE))
        even = max(counts) - share <= max(tolerance, REFINE_SURPLUS)
        if even:
            slices: list[Slice] = [
                (length, head[0]) for length, head in zip(lengths, heads, strict=True) if head
            ]
            slices = [
                (span, first)
                for span, first in slices
                if span.start is None or span.end is None or span.start < span.end
            ]
        else:
            ticks = [start.ticks, *(bound.ticks for bound in inner), end.ticks]
            below = list(itertools.accumulate(counts, initial=0))

            def cut(k: int) -> Instant:
                target = total * k // parts
                j = max(i for i in range(len(below) - 1) if below[i] <= target)
                bracket = (ticks[j], below[j], ticks[j + 1], below[j + 1])
                return _search(counters[k], outer, bracket, target, tolerance)

            bounds = [outer.start, *sorted(set(pool.map(cut, range(1, parts)))), outer.end]
            slices = _non_empty([(Span(a, b), None) for a, b in itertools.pairwise(bounds)])
    log.info(
        "Balanced %d slice(s) of %d referral(s) on %s with %d count probe(s) and %d first page(s) "
        "in %.1f s (%s)",
        len(slices),
        total,
        field,
        sum(counter.probes for counter in counters),
        sum(counter.pages for counter in counters),
        time.monotonic() - started,
        "equal lengths were even enough: paging goes on from their first pages" if even else "cuts searched",
    )
    return slices


def plan_queries(
    plan: ExtractionPlan, hooks: Sequence[PartnerCenterHook], stop: threading.Event | None = None
) -> list[dict[str, Any]]:
    """
    The plan's queries, one per slice: balanced by count when the server counts, else by time.

    :param plan: what to read.
    :param hooks: the extraction's hooks (one per slice).
    :param stop: the extraction's stop event (checked before every probe).
    """
    if plan.parallelism == 1:
        return plan.queries()
    field = plan.window_field or HISTORY_FIELD
    window = plan.window if plan.window_field else None
    outer = Span(window.start, window.end) if window is not None else Span(None, None)
    slices = balanced_spans(
        hooks, field, plan.filter, lambda span: plan.span_query(field, span), outer, plan.parallelism, stop
    )
    if slices is None:
        if window is None or window.end is None:
            log.info("No @odata.count from the API: reading the full history in one query")
            return [plan.span_query(field, Span(None, None))]
        log.info("No @odata.count from the API: slicing the window into equal lengths")
        slices = [(Span(a, b), None) for a, b in split_window(window, plan.parallelism)]
    return [
        {**plan.span_query(field, span), **({"first": first} if first is not None else {})}
        for span, first in slices
    ]
