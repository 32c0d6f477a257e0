"""
Fetch one or more referral queries concurrently into a :class:`ReferralSpool`.

A single query is paged in the calling thread, with the next page's request sent ahead (see
:func:`_fetch_inline`). With several, each query (one slice of the window) is paged by its own
thread with its own hook, so each has its own HTTP session; the hooks share one token provider
(it is lock-protected), so k slices cost one token acquisition, not k racing refreshes of a
rotating refresh token. Pages travel through a small bounded queue to the calling thread, the
only one that touches the spool: memory stays at a few pages whatever the result size. A stop
event (set by ``on_kill`` or by an error in any slice) is checked between pages.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_partner.errors import PartnerCenterCancelledError
from airflow_provider_partner.extract.cursor import open_pages
from airflow_provider_partner.extract.heap import HeapTuning
from airflow_provider_partner.extract.spool import ReferralSpool
from airflow_provider_partner.hooks.paging import ReferralPage
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = ["FetchStats", "OnDone", "OnPage", "fetch_into_spool", "make_hooks"]

#: Called after each page is spooled, with its slice's index (may raise to abort).
OnPage = Callable[[int, ReferralPage], None]
#: Called when a slice has no more pages, with its index.
OnDone = Callable[[int], None]

log = logging.getLogger(__name__)

#: How often waiting threads look at the stop event, seconds.
_POLL = 0.2
#: How long to wait for slice threads to finish their current request after a stop, seconds.
_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class FetchStats:
    """
    Figures of one fetch.

    :param pages: pages received over all slices.
    :param received: referrals received, duplicates included.
    :param seconds: wall-clock time of the fetch.
    :param per_slice: referrals received by each slice, in slice order.
    """

    pages: int
    received: int
    seconds: float
    per_slice: tuple[int, ...] = ()


def make_hooks(partner_center_conn_id: str, count: int) -> list[PartnerCenterHook]:
    """
    Return ``count`` hooks for one connection that share a single token provider and back-off.

    The connection is read here, in the calling thread (inside a task that goes through the
    Task SDK); the hooks can then be used from worker threads. A 429 (or a 503 with
    ``Retry-After``) on any of them holds back the next request of every one (see
    :class:`~airflow_provider_partner.hooks.http.SharedBackoff`): slices slow down together
    rather than each hammering a throttled API in turn.

    :param partner_center_conn_id: the Airflow connection id.
    :param count: number of hooks (one per concurrent slice).
    """
    first = PartnerCenterHook(partner_center_conn_id=partner_center_conn_id)
    hooks = [first, *(first.sibling() for _ in range(count - 1))]
    backoff = first.http.backoff
    for hook in hooks[1:]:
        hook.http.backoff = backoff
    return hooks


_Item = tuple[str, int, Any]


def _put(items: queue.Queue[_Item], item: _Item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL)
        except queue.Full:
            continue
        return True
    return False


def _worker(
    index: int,
    hook: PartnerCenterHook,
    query: Mapping[str, Any],
    items: queue.Queue[_Item],
    stop: threading.Event,
) -> None:
    try:
        for page in open_pages(hook, query):
            if stop.is_set() or not _put(items, ("page", index, page), stop):
                return
    except BaseException as err:  # noqa: BLE001 - handed to the calling thread, which re-raises it
        _put(items, ("error", index, err), stop)
        return
    _put(items, ("done", index, None), stop)


def _cancelled(pages: int, received: int) -> PartnerCenterCancelledError:
    return PartnerCenterCancelledError(
        f"Stopped after {pages} page(s) ({received} referrals) because the task is being killed; "
        "no output was written."
    )


def _fetch_inline(
    hook: PartnerCenterHook,
    query: Mapping[str, Any],
    spool: ReferralSpool,
    stop: threading.Event,
    on_page: OnPage | None,
    on_done: OnDone | None,
    tuning: HeapTuning,
) -> FetchStats:
    """
    Page one query in the calling thread, the next page's request travelling meanwhile.

    Pages are parsed and spooled here, and only the HTTP exchange of the next page runs in a
    thread (``prefetch=True``): a thread that also parsed would fight this one for the GIL
    after every socket read (measured: 200k referrals 25% slower than with no thread at all).
    """
    started = time.monotonic()
    pages = received = 0
    iterator = iter(open_pages(hook, query, prefetch=True))
    try:
        for page in iterator:
            if stop.is_set():
                break
            received += spool.add(page.records)
            pages += 1
            tuning.start()
            if on_page is not None:
                on_page(0, page)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if stop.is_set():
        raise _cancelled(pages, received)
    if on_done is not None:
        on_done(0)
    return FetchStats(
        pages=pages, received=received, seconds=time.monotonic() - started, per_slice=(received,)
    )


def fetch_into_spool(
    hooks: Sequence[PartnerCenterHook],
    queries: Sequence[Mapping[str, Any]],
    spool: ReferralSpool,
    stop: threading.Event,
    *,
    on_page: OnPage | None = None,
    on_done: OnDone | None = None,
) -> FetchStats:
    """
    Page every query (a single one in the calling thread, several in a thread each) into ``spool``.

    :param hooks: one hook per query (see :func:`make_hooks`).
    :param queries: keyword arguments of :meth:`PartnerCenterHook.iter_pages`, one dict per slice,
        with what :func:`~airflow_provider_partner.extract.cursor.open_pages` adds (a first page,
        a slice to go on from).
    :param spool: where referrals go (used from the calling thread only).
    :param stop: set it to stop paging; it is also set when any slice fails.
    :param on_page: called after each page is spooled with its slice's index and the page (may
        raise to abort, e.g. a size limit).
    :param on_done: called when a slice has no more pages, with its index.
    :raises PartnerCenterCancelledError: when ``stop`` was set from outside.

    The garbage collector is tuned from the first page on (see
    :class:`~airflow_provider_partner.extract.heap.HeapTuning`) and put back at the end.
    """
    if len(hooks) != len(queries):
        raise ValueError(f"{len(hooks)} hooks for {len(queries)} queries.")
    tuning = HeapTuning()
    try:
        if len(queries) == 1:
            return _fetch_inline(hooks[0], queries[0], spool, stop, on_page, on_done, tuning)
        return _fetch_threads(hooks, queries, spool, stop, on_page, on_done, tuning)
    finally:
        tuning.stop()


def _start_workers(
    hooks: Sequence[PartnerCenterHook],
    queries: Sequence[Mapping[str, Any]],
    items: queue.Queue[_Item],
    stop: threading.Event,
) -> list[threading.Thread]:
    """Start one daemon thread per query, paging it into ``items``."""
    threads = [
        threading.Thread(
            target=_worker,
            args=(index, hook, query, items, stop),
            name=f"partner-referrals-slice-{index}",
            daemon=True,
        )
        for index, (hook, query) in enumerate(zip(hooks, queries, strict=True))
    ]
    for thread in threads:
        thread.start()
    return threads


def _fetch_threads(
    hooks: Sequence[PartnerCenterHook],
    queries: Sequence[Mapping[str, Any]],
    spool: ReferralSpool,
    stop: threading.Event,
    on_page: OnPage | None,
    on_done: OnDone | None,
    tuning: HeapTuning,
) -> FetchStats:
    """Page each query in a thread of its own; spool their pages here, as they come."""
    started = time.monotonic()
    items: queue.Queue[_Item] = queue.Queue(maxsize=2 * len(queries) + 2)
    threads = _start_workers(hooks, queries, items, stop)
    pages = received = finished = 0
    per_slice = [0] * len(threads)
    completed = False
    try:
        while finished < len(threads):
            if stop.is_set():
                raise _cancelled(pages, received)
            try:
                kind, index, payload = items.get(timeout=_POLL)
            except queue.Empty:
                continue
            if kind == "page":
                added = spool.add(payload.records, index)
                received += added
                per_slice[index] += added
                pages += 1
                tuning.start()
                if on_page is not None:
                    on_page(index, payload)
            elif kind == "error":
                log.error("Slice %d of %d failed: %s", index + 1, len(threads), payload)
                raise payload
            else:
                finished += 1
                if on_done is not None:
                    on_done(index)
        completed = True
    finally:
        if not completed:
            stop.set()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            # A thread in the middle of a request ends when it returns; it is a daemon, so a slow
            # one never holds up the task.
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return FetchStats(
        pages=pages, received=received, seconds=time.monotonic() - started, per_slice=tuple(per_slice)
    )
