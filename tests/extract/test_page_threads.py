"""One thread sends every prefetched page of an iteration and ends with it; one watchdog for all."""

from __future__ import annotations

import json
import threading

from airflow_provider_partner.hooks.paging import iterate_pages
from airflow_provider_partner.hooks.transfer import AttemptDeadline, TrackingAdapter

ENDPOINT = "https://api.example.com/v1.0/engagements/referrals"


def _pages(count: int):
    threads: list[threading.Thread] = []

    def fetch(url, params):
        threads.append(threading.current_thread())
        number = len(threads)
        link = {"@odata.nextLink": f"{ENDPOINT}?$skiptoken={number}"} if number < count else {}
        return json.dumps({"value": [{"id": f"r{number}"}], **link}).encode(), "application/json", None

    return fetch, threads


def test_one_prefetch_thread_per_iteration_and_it_ends_with_it():
    fetch, threads = _pages(6)
    ids = [
        r["id"]
        for page in iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=True)
        for r in page.records
    ]
    assert ids == [f"r{n}" for n in range(1, 7)]
    # The first page in the caller's thread, the five others from one and the same thread.
    assert threads[0] is threading.current_thread()
    assert len(set(threads[1:])) == 1
    helper = threads[1]
    helper.join(timeout=10)
    assert not helper.is_alive()


def test_a_prefetch_thread_ends_when_the_caller_stops_early():
    fetch, threads = _pages(6)
    pages = iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=True)
    assert next(pages).number == 1
    pages.close()
    helper = threads[1]
    helper.join(timeout=10)
    assert not helper.is_alive()
    assert len(threads) == 2  # the page sent ahead, nothing after the close


def test_attempt_deadlines_share_one_watchdog_thread():
    adapter = TrackingAdapter()
    before = {t.name for t in threading.enumerate()}
    for _ in range(50):
        with AttemptDeadline(adapter, 30) as deadline:
            pass
        assert not deadline.expired
    started = [t.name for t in threading.enumerate() if t.name not in before]
    # None when an earlier test started the process's one watchdog; else that one.
    assert started in ([], ["partner-center-watchdog"])
    assert [t.name for t in threading.enumerate()].count("partner-center-watchdog") == 1
