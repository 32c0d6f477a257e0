"""iterate_pages with the next page requested ahead: same pages, same errors, one request early."""

from __future__ import annotations

import json
import threading
import time

import pytest

from airflow_provider_partner.errors import PartnerCenterNextLinkError
from airflow_provider_partner.hooks.paging import iterate_pages
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

ENDPOINT = "https://api.example.com/v1.0/engagements/referrals"


class _Pages:
    """Three pages linked by nextLinks; records which were requested and from which thread."""

    def __init__(self, last_link: str | None = None) -> None:
        self.requested: list[str] = []
        self.threads: set[str] = set()
        self.last_link = last_link

    def __call__(self, url, params):
        number = len(self.requested) + 1
        self.requested.append(url)
        self.threads.add(threading.current_thread().name)
        link = f"{ENDPOINT}?$skiptoken={number}" if number < 3 else self.last_link
        body = {"value": [{"id": f"r{number}"}], **({"@odata.nextLink": link} if link else {})}
        return json.dumps(body).encode(), "application/json", f"req-{number}"


@pytest.mark.parametrize("prefetch", [False, True])
def test_same_pages_with_and_without_prefetch(prefetch):
    fetch = _Pages()
    pages = iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=prefetch)
    seen = []
    for page in pages:
        seen.append([r["id"] for r in page.records])
        # With prefetch the next page was already asked for when this one is handed over.
        assert len(fetch.requested) == min(page.number + int(prefetch), 3)
    assert seen == [["r1"], ["r2"], ["r3"]]
    assert (len(fetch.threads) > 1) is prefetch


def test_prefetch_is_off_unless_asked_for():
    fetch = _Pages()
    pages = iterate_pages(fetch, endpoint=ENDPOINT, params={})
    first = next(pages)
    assert first.number == 1
    assert len(fetch.requested) == 1
    assert fetch.threads == {threading.current_thread().name}
    pages.close()


def _list_requests_when_settled(emu, expected: int) -> int:
    """The emulator's list-request count once ``expected`` arrived (or after 10 s)."""
    deadline = time.monotonic() + 10
    while emu.stats()["requests"].get("list", 0) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # long enough for one request too many to show
    return emu.stats()["requests"].get("list", 0)


@pytest.mark.parametrize("prefetch", [False, True])
def test_the_hook_prefetches_only_when_iter_pages_says_so(partner_center_emulator, connect, prefetch):
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    pages = hook.iter_pages(top=250, prefetch=prefetch)
    first = next(pages)
    assert (first.number, len(first.records)) == (1, 100)
    # With prefetch the second page was already asked for when the first is handed over.
    assert _list_requests_when_settled(emu, 1 + int(prefetch)) == 1 + int(prefetch)
    assert sum(len(page.records) for page in pages) == 150
    assert emu.stats()["requests"]["list"] == 3
    pages.close()


def test_a_refused_next_link_is_raised_after_its_page_as_without_prefetch():
    fetch = _Pages(last_link="https://evil.example.net/steal?$skiptoken=x")
    fetch_pages = iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=True)
    assert [next(fetch_pages).number for _ in range(3)] == [1, 2, 3]
    with pytest.raises(PartnerCenterNextLinkError, match="not the configured API host"):
        next(fetch_pages)
    assert all("evil" not in url for url in fetch.requested)


def test_no_request_ahead_once_top_is_reached():
    fetch = _Pages()
    pages = list(iterate_pages(fetch, endpoint=ENDPOINT, params={}, top=2, prefetch=True))
    assert [p.number for p in pages] == [1, 2]
    assert len(fetch.requested) == 2


def test_a_repeated_next_link_stops_paging_with_prefetch_too():
    calls = []

    def fetch(url, params):
        calls.append(url)
        body = {"value": [{"id": str(len(calls))}], "@odata.nextLink": f"{ENDPOINT}?$skiptoken=same"}
        return json.dumps(body).encode(), "application/json", None

    pages = iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=True)
    assert [next(pages).number for _ in range(2)] == [1, 2]
    with pytest.raises(PartnerCenterNextLinkError, match=r"same @odata\.nextLink twice"):
        next(pages)
    assert len(calls) == 2  # the repeated link was never requested a second time


def test_a_next_link_anywhere_in_the_page_is_followed():
    calls = []

    def fetch(url, params):
        calls.append(url)
        link = {"@odata.nextLink": f"{ENDPOINT}?$skiptoken=2"} if len(calls) == 1 else {}
        return json.dumps({**link, "value": [{"id": str(len(calls))}]}).encode(), "application/json", None

    assert [
        p.records[0]["id"] for p in iterate_pages(fetch, endpoint=ENDPOINT, params={}, prefetch=True)
    ] == [
        "1",
        "2",
    ]
    assert calls == [ENDPOINT, f"{ENDPOINT}?$skiptoken=2"]
