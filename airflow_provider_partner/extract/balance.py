"""
Balanced slices: cut the window (or the whole history) where the number of referrals is even.

Equal-width time slices hold unequal numbers of referrals (business hours, a campaign, a
backfill of old data), so the slowest slice sets the pace. Here the cuts are found by asking the
API how many referrals a range holds: one request with ``$top=1``, ``$select=id`` and
``$count=true`` reads ``@odata.count`` (the count of every match, whatever ``$top`` cuts). Each
inner cut is searched on time (interpolating and halving in turn), in a thread of its own, until
its side holds its share within :data:`TOLERANCE`; a slice therefore holds its share within twice
that.

Without a window (a full-history extraction) the slices go by ``createdDateTime``, which never
changes; the bounds of the search come from the oldest and newest referral, and the first and
last slices are open-ended, so referrals created meanwhile still fall in one of them. A server
that sends no ``@odata.count`` gets equal-width slices (the window), or one query (no window).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_partner import instants
from airflow_provider_partner.extract.slices import Span, span_filter, split_window
from airflow_provider_partner.hooks.errors import PartnerCenterCancelledError, PartnerCenterHTTPError
from airflow_provider_partner.hooks.paging import ReferralPage, parse_page
from airflow_provider_partner.instants import Instant

if TYPE_CHECKING:
    from airflow_provider_partner.extract.slices import ExtractionPlan
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = ["TOLERANCE", "balanced_spans", "plan_queries"]

log = logging.getLogger(__name__)

#: A cut is good enough when its side is off by at most this share of one slice.
TOLERANCE = 0.04
#: Count probes per cut at most (every other one halves the time range).
MAX_PROBES = 64
#: Full-history slices go by this field: it never changes, so a referral stays in its slice.
HISTORY_FIELD = "createdDateTime"
_MICROSECOND = 10


class _Counter:
    """Counts of ``field`` ranges under the user's filter, through one hook (one thread)."""

    def __init__(
        self, hook: PartnerCenterHook, field: str, user: str | None, stop: threading.Event | None
    ) -> None:
        self.hook, self.field, self.user, self.stop = hook, field, user, stop
        self.probes = 0

    def _first_page(self, params: dict[str, str | None]) -> ReferralPage | None:
        """
        One request (``$top=1``, ``$count=true``): the probe never follows a nextLink.

        Sent through the hook's HTTP client (retries, the shared back-off, the token) rather than
        ``iter_pages``, which has no ``$count``: the docs do not say the service counts unasked.
        """
        if self.stop is not None and self.stop.is_set():
            raise PartnerCenterCancelledError(
                "Stopped while planning the slices because the task is being killed; no output was written."
            )
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
        return None if page is None else page.count

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
    counter: _Counter, lower: Span, bracket: tuple[int, int, int], target: int, tolerance: int
) -> Instant:
    """
    The instant ``t`` (ticks) where ``[lower.start, t)`` holds about ``target`` referrals.

    ``bracket`` is ``(low, high, total)``: ``[lower.start, low)`` holds none, ``[lower.start,
    high)`` all ``total``. Probes alternate between interpolating (fast on even data) and halving
    the bracket (sure on skewed data: a burst in one hour of a year takes about 40 halvings).
    """
    low, high, above = bracket
    below = 0
    best, best_error = high, abs(above - target)
    for attempt in range(MAX_PROBES):
        middle = _next_probe(low, high, below, above, target, interpolate=attempt % 2 == 0)
        if middle <= low:
            break
        found = counter.count(Span(lower.start, Instant(middle)))
        if found is None:
            break
        if abs(found - target) < best_error:
            best, best_error = middle, abs(found - target)
        if best_error <= tolerance:
            break
        if found < target:
            low, below = middle, found
        else:
            high, above = middle, found
    return Instant(best)


def balanced_spans(
    hooks: Sequence[PartnerCenterHook],
    field: str,
    user: str | None,
    outer: Span,
    parts: int,
    stop: threading.Event | None = None,
) -> list[Span] | None:
    """
    ``parts`` contiguous spans covering ``outer``, each holding about the same number of referrals.

    :param hooks: one hook per search thread (``parts - 1`` are used for the cuts).
    :param field: the datetime field the spans apply to.
    :param user: the user's ``$filter`` (ANDed with every span).
    :param outer: the whole range (open ends allowed: the full history).
    :param parts: number of spans wanted.
    :param stop: when set, the next probe raises
        :class:`~airflow_provider_partner.hooks.errors.PartnerCenterCancelledError`.
    :return: the spans (fewer when some would be empty), or ``None`` when the server sends no
        count or nothing matches: the caller falls back to equal-width slices.
    """
    started = time.monotonic()
    first = _Counter(hooks[0], field, user, stop)
    total = first.count(outer)
    if not total:
        return None
    start = outer.start if outer.start is not None else first.edge(descending=False)
    end = outer.end
    if end is None:
        newest = first.edge(descending=True)
        end = Instant(newest.ticks + _MICROSECOND) if newest is not None else None
    if start is None or end is None or end <= start:
        return None
    tolerance = max(1, int(total / parts * TOLERANCE))
    counters = [_Counter(hooks[k % len(hooks)], field, user, stop) for k in range(1, parts)]

    def cut(k: int) -> Instant:
        bracket = (start.ticks, end.ticks, total)
        return _search(counters[k - 1], outer, bracket, total * k // parts, tolerance)

    with ThreadPoolExecutor(
        max_workers=max(1, parts - 1), thread_name_prefix="partner-referrals-probe"
    ) as pool:
        cuts = sorted(set(pool.map(cut, range(1, parts))))
    bounds: list[Instant | None] = [outer.start, *cuts, outer.end]
    spans = [Span(a, b) for a, b in itertools.pairwise(bounds) if a is None or b is None or a < b]
    log.info(
        "Balanced %d slice(s) of %d referral(s) on %s with %d count probe(s) in %.1f s",
        len(spans),
        total,
        field,
        first.probes + sum(counter.probes for counter in counters),
        time.monotonic() - started,
    )
    return spans


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
    spans = balanced_spans(hooks, field, plan.filter, outer, plan.parallelism, stop)
    if spans is None:
        if window is None or window.end is None:
            log.info("No @odata.count from the API: reading the full history in one query")
            return [plan.span_query(field, Span(None, None))]
        log.info("No @odata.count from the API: slicing the window into equal lengths")
        spans = [Span(a, b) for a, b in split_window(window, plan.parallelism)]
    return [plan.span_query(field, span) for span in spans]
