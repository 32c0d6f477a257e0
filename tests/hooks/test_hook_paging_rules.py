"""Pure paging rules (no IO): page validation and the nextLink policy, case by case."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from airflow_provider_partner.errors import PartnerCenterNextLinkError, PartnerCenterResponseError
from airflow_provider_partner.hooks.http import retry_after_seconds
from airflow_provider_partner.hooks.paging import NextLinkPolicy, iterate_pages, parse_page

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

ENDPOINT = "https://api.example.com:8443/v1.0/engagements/referrals"
QUERY = {"$filter": "status eq 'New'", "$orderby": "createdDateTime desc"}


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "https://api.example.com:8443/v1.0/engagements/referrals?$skiptoken=a1",
            ("https://api.example.com:8443/v1.0/engagements/referrals?$skiptoken=a1", None),
        ),
        (
            "http://api.example.com:8443/v1.0/engagements/referrals?$skiptoken=a2",
            ("https://api.example.com:8443/v1.0/engagements/referrals?$skiptoken=a2", None),
        ),
        (
            "http://API.example.com:8443/v1.0/referrals?$skiptoken=k181pEdP0ykypkieJfcxX",
            (ENDPOINT, {**QUERY, "$skiptoken": "k181pEdP0ykypkieJfcxX"}),
        ),
        (
            "/v1.0/engagements/referrals?$skiptoken=a3",
            ("https://api.example.com:8443/v1.0/engagements/referrals?$skiptoken=a3", None),
        ),
    ],
)
def test_next_link_resolution(link: str, expected: tuple) -> None:
    assert NextLinkPolicy(ENDPOINT, QUERY).resolve(link) == expected


def test_doc_example_on_the_default_host_keeps_the_query() -> None:
    policy = NextLinkPolicy("https://api.partner.microsoft.com/v1.0/engagements/referrals", {"$top": "10"})
    url, params = policy.resolve(
        "http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=k181pEdP0ykypkieJfcxX"
    )
    assert (url, params) == (
        "https://api.partner.microsoft.com/v1.0/engagements/referrals",
        {"$top": "10", "$skiptoken": "k181pEdP0ykypkieJfcxX"},
    )


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (
            "https://evil.example.com/v1.0/engagements/referrals?$skiptoken=x",
            "to https://evil.example.com, which is not",
        ),
        (
            "https://api.example.com:9999/v1.0/engagements/referrals?$skiptoken=x",
            "to https://api.example.com:9999",
        ),
        (
            "https://api.example.com/v1.0/engagements/referrals?$skiptoken=x",
            "to https://api.example.com, which",
        ),
        ("ftp://api.example.com:8443/x", "to ftp://api.example.com:8443"),
        ("https://api.example.com:8443/v1.0/other?$skip=100", "has no $skiptoken to carry over"),
    ],
)
def test_next_link_refusals(link: str, message: str) -> None:
    with pytest.raises(PartnerCenterNextLinkError) as err:
        NextLinkPolicy(ENDPOINT, QUERY).resolve(link)
    assert message in str(err.value)


def test_repeated_next_link_is_a_loop() -> None:
    policy = NextLinkPolicy(ENDPOINT, QUERY)
    policy.resolve("http://api.example.com:8443/v1.0/referrals?$skiptoken=same")
    with pytest.raises(PartnerCenterNextLinkError, match=r"same @odata\.nextLink twice"):
        policy.resolve("https://api.example.com:8443/v1.0/referrals?$skiptoken=same")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "<html>Bad gateway</html>",
            "text/html",
            "Expected JSON for page 4 (u, MS-RequestId=r) but got Content-Type 'text/html'",
        ),
        ('{"value": [{"id": 1}', "application/json", "Invalid JSON in page 4 (u, MS-RequestId=r)"),
        ("[1, 2]", "application/json", "Expected a JSON object with a 'value' list in page 4"),
        ('{"values": []}', "application/json", "The 'value' list is missing in page 4"),
        ('{"value": {"id": 1}}', "application/json", "The 'value' list is a dict in page 4"),
        ('{"value": [1]}', "application/json", "Item 0 of 'value' in page 4"),
        (
            '{"value": [], "@odata.nextLink": 5}',
            "application/json",
            "'@odata.nextLink' in page 4 (u, MS-RequestId=r) is not a URL: 5.",
        ),
    ],
)
def test_bad_pages(body: str, content_type: str, message: str) -> None:
    with pytest.raises(PartnerCenterResponseError) as err:
        parse_page(body=body, content_type=content_type, number=4, url="u", request_id="r")
    assert message in str(err.value)


def test_good_page_accepts_odata_json_variants() -> None:
    page = parse_page(
        body=b'{"@odata.count": 7, "value": [{"id": "a"}]}',
        content_type="application/json; odata.metadata=minimal; charset=utf-8",
        number=1,
        url="u",
        request_id="r",
    )
    assert (page.records, page.count, page.next_link, page.request_id) == ([{"id": "a"}], 7, None, "r")


def test_top_caps_the_total_when_the_server_ignores_it() -> None:
    calls: list[tuple[str, Mapping[str, str] | None]] = []

    def fetch(url: str, params: Mapping[str, str] | None) -> tuple[str, str, str]:
        calls.append((url, params))
        n = len(calls)
        body = {
            "value": [{"id": f"{n}-{i}"} for i in range(100)],
            "@odata.nextLink": f"{ENDPOINT}?$skiptoken={n}",
        }
        return json.dumps(body), "application/json", f"req-{n}"

    pages = list(iterate_pages(fetch, endpoint=ENDPOINT, params={"$top": "150"}, top=150))
    assert [len(p) for p in pages] == [100, 50]
    assert len(calls) == 2  # the third page is never requested
    assert calls[0] == (ENDPOINT, {"$top": "150"})
    assert calls[1] == (f"{ENDPOINT}?$skiptoken=1", None)


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("soon", None), (None, None)]
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
