"""Reading referrals through the hook from the emulator over https: queries, paging, bad pages."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_partner import odata
from airflow_provider_partner.errors import (
    PartnerCenterNextLinkError,
    PartnerCenterNotFoundError,
    PartnerCenterPreconditionFailed,
    PartnerCenterResponseError,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow


def newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["createdDateTime"], reverse=True)


def test_seed_sample_1_top_10_incoming_co_sell(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    got = list(
        hook.iter_referrals(
            filter="(type eq 'Shared' and direction eq 'Incoming')", orderby="createdDateTime desc", top=10
        )
    )
    expected = newest_first(
        [r for r in emu.referrals() if r["type"] == "Shared" and r["direction"] == "Incoming"]
    )
    assert len(expected) > 10
    assert got == expected[:10]


def test_seed_sample_2_unanswered_incoming(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    got = list(
        hook.iter_referrals(
            filter="(direction eq 'Incoming' and substatus eq 'Pending')",
            orderby="createdDateTime desc",
            top=10,
        )
    )
    expected = newest_first(
        [r for r in emu.referrals() if r["direction"] == "Incoming" and r["substatus"] == "Pending"]
    )
    assert len(expected) >= 10
    assert got == expected[:10]


def _on_team(referral: dict[str, Any], email: str) -> bool:
    return any(member.get("email") == email for member in referral.get("team") or [])


def test_seed_sample_3_active_outgoing_shared_by_seller(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    mine = [
        r
        for r in emu.referrals()
        if r["status"] == "Active" and r["direction"] == "Outgoing" and r["type"] == "Shared"
    ]
    # The seed's literal seller, and a seller present in the data (so the match is never vacuous).
    emails = ["r2d2@contoso.com", next(m["email"] for r in mine for m in r.get("team") or [])]
    for email in emails:
        raw = (
            "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and "
            f"team/any(t:t/email eq '{email}')"
        )
        built = odata.and_(
            odata.eq("status", "Active"),
            odata.eq("direction", "Outgoing"),
            odata.eq("type", "Shared"),
            odata.team_has_email(email),
        )
        expected = newest_first([r for r in mine if _on_team(r, email)])
        for expression in (raw, built):
            assert list(hook.iter_referrals(filter=expression, orderby="createdDateTime desc")) == expected
    assert expected  # the data-derived seller has at least one referral


def test_pages_stream_with_metadata_and_top_caps_client_side(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    pages = list(hook.iter_pages(orderby="createdDateTime asc", top=250))
    # top > 100 is not sent as $top (it is a page size for the API): the cap is applied here.
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[0].next_link
    assert pages[1].next_link
    assert all(len(p.request_id or "") == 36 for p in pages)
    expected = sorted(emu.referrals(), key=lambda r: r["createdDateTime"])[:250]
    assert [r["id"] for p in pages for r in p.records] == [r["id"] for r in expected]
    assert emu.stats()["pages_served"] == 3


def test_paging_goes_on_from_a_first_page_read_before(partner_center_emulator, connect) -> None:
    # A planner reads a slice's first page with its count; iter_pages(first=) pages on from it:
    # the same pages as a plain iteration, and no request for page 1 again.
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    query = {"filter": "direction eq 'Incoming'", "orderby": "createdDateTime asc", "select": ["id"]}
    plain = list(hook.iter_pages(**query))
    emu.reset_stats()
    first = hook.request_first_page(**query, count=True)
    body, content_type, request_id = first
    assert b'"@odata.count"' in body
    assert content_type.startswith("application/json")
    assert len(request_id) == 36
    pages = list(hook.iter_pages(**query, first=first))
    assert [p.records for p in pages] == [p.records for p in plain]
    assert [p.number for p in pages] == list(range(1, len(plain) + 1))
    assert pages[0].count == sum(r["direction"] == "Incoming" for r in emu.referrals())
    assert emu.stats()["requests"]["list"] == len(plain)


def test_all_referrals_arrive_once_and_progress_is_logged(partner_center_emulator, connect, caplog) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu), log_every_pages=5)
    with caplog.at_level(logging.INFO, logger="airflow_provider_partner"):
        ids = [r["id"] for r in hook.iter_referrals(select=["id", "status"])]
    assert Counter(ids) == Counter(r["id"] for r in emu.referrals())
    progress = [r.getMessage() for r in caplog.records if r.name.endswith("paging")]
    assert [m.split(" in ")[0] for m in progress] == [
        "Progress: 5 page(s), 500 referral(s)",
        "Progress: 10 page(s), 1000 referral(s)",
        "Progress: 15 page(s), 1500 referral(s)",
        "Progress: 20 page(s), 2000 referral(s)",
        "Finished: 20 page(s), 2000 referral(s)",
    ]
    assert all(m.endswith("referrals/s)") for m in progress)


def test_doc_style_next_links_are_followed_on_the_configured_endpoint(
    partner_center_emulator, connect
) -> None:
    emu = partner_center_emulator
    emu.configure(doc_style_next_link=True)
    hook = PartnerCenterHook(connect(emu))
    pages = list(hook.iter_pages(filter="direction eq 'Incoming'", orderby="createdDateTime desc"))
    assert pages[0].next_link is not None
    assert pages[0].next_link.startswith("http://")
    assert "/v1.0/referrals?" in pages[0].next_link
    expected = newest_first([r for r in emu.referrals() if r["direction"] == "Incoming"])
    assert [r["id"] for p in pages for r in p.records] == [r["id"] for r in expected]


def test_foreign_next_link_never_receives_the_token(
    partner_center_emulator, emulator_factory, connect
) -> None:
    emu = partner_center_emulator
    other = emulator_factory(referrals=1, seed=1)
    other_host = other.info["api_url"].split("://", 1)[1]
    emu.configure(foreign_next_link_host=other_host)
    hook = PartnerCenterHook(connect(emu))
    pages = hook.iter_pages()
    first = next(pages)
    assert other_host in (first.next_link or "")
    with pytest.raises(PartnerCenterNextLinkError) as err:
        next(pages)
    assert f"not the configured API host {emu.info['api_url'].split('://', 1)[1]}" in str(err.value)
    assert sum(other.stats()["requests"].values()) == 0
    assert set(emu.stats()["auth_headers"]) == {emu.info["api_url"].split("://", 1)[1]}


def test_retries_reuse_the_request_id_and_new_calls_get_new_ids(
    partner_center_emulator, connect, watch_requests, caplog
) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    sent = watch_requests(hook)
    emu.script_faults(["503", "429", "500"])
    with caplog.at_level(logging.WARNING, logger="airflow_provider_partner"):
        page = next(hook.iter_pages(top=5))
    assert len(page) == 5
    assert len(sent) == 4
    assert {h["MS-RequestId"] for h in sent} == {page.request_id}
    assert len({h["MS-CorrelationId"] for h in sent}) == 1
    assert {h["User-Agent"] for h in sent} == {"airflow-provider-partner/0.1.0"}
    assert {h["Accept"] for h in sent} == {"application/json"}
    retries = [r.getMessage() for r in caplog.records if "Retrying GET" in r.getMessage()]
    assert [m.split(" after ")[1].split(" (")[0] for m in retries] == ["HTTP 503", "HTTP 429", "HTTP 500"]
    hook.get_referral(page.records[0]["id"])
    assert sent[-1]["MS-RequestId"] != page.request_id
    assert sent[-1]["MS-CorrelationId"] != sent[0]["MS-CorrelationId"]


def test_connection_reset_is_retried(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    emu.script_faults(["reset", "reset"])
    assert len(list(hook.iter_referrals(top=3))) == 3
    assert emu.stats()["requests"]["list"] == 3


def test_token_rejected_mid_paging_is_refreshed_and_the_page_retried(
    partner_center_emulator, connect
) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    ids = []
    for page in hook.iter_pages():
        ids += [r["id"] for r in page.records]
        if page.number == 3:
            emu.expire_access_tokens()  # every token issued so far is revoked
        if page.number == 6:
            emu.script_faults(["token_expired"])  # a 401 with WWW-Authenticate: invalid_token
    assert Counter(ids) == Counter(r["id"] for r in emu.referrals())
    assert emu.stats()["token_grants"]["refresh_token"] == 3
    assert hook.tokens.token_requests == 3


def test_get_conn_session_sends_the_token_only_to_the_api_host(
    partner_center_emulator, emulator_factory, connect
) -> None:
    emu = partner_center_emulator
    other = emulator_factory(referrals=1, seed=2)
    hook = PartnerCenterHook(connect(emu))
    http = hook.get_conn()
    assert http is hook.http
    response = http.request("GET", f"{emu.info['referrals_url']}?$top=2")
    assert response.status_code == 200
    assert len(response.json()["value"]) == 2
    assert emu.stats()["auth_headers"] == {urlsplit(emu.info["api_url"]).netloc: 1}
    with pytest.raises(PartnerCenterNextLinkError) as refused:
        http.request("GET", other.info["referrals_url"])
    foreign = other.info["referrals_url"]
    assert str(refused.value).startswith(f"Refusing to send the bearer token to {foreign}")
    assert other.stats()["requests"] == {}
    assert other.stats()["auth_headers"] == {}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("html", "Expected JSON for page 1"),
        ("malformed", "page 1"),
        ("truncated", "page 1"),
    ],
)
def test_bad_pages_raise_a_named_error(partner_center_emulator, connect, fault: str, message: str) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu), log_every_pages=0)
    emu.script_faults([fault] * 12)
    with pytest.raises(PartnerCenterResponseError) as err:
        list(hook.iter_referrals())
    assert message in str(err.value)
    assert "MS-RequestId=" in str(err.value)


def test_get_update_create_referral(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    original = next(r for r in emu.referrals() if r["status"] == "New")
    # One referral comes with the contract's @odata.context (list items do not carry one).
    context = {"@odata.context": f"{emu.info['api_url']}/v1.0/$metadata#Referrals/$entity"}
    assert hook.get_referral(original["id"]) == {**context, **original}

    ops = [
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
    ]
    assert hook.update_referral(original["id"], ops, etag=original["eTag"]) is None
    current = next(r for r in emu.referrals() if r["id"] == original["id"])
    assert (current["status"], current["substatus"]) == ("Active", "Accepted")

    with pytest.raises(PartnerCenterPreconditionFailed) as err:
        hook.update_referral(
            original["id"], [{"op": "replace", "path": "/statusReason", "value": "x"}], etag=original["eTag"]
        )
    assert err.value.status == 412
    assert "Read it again and re-apply the update" in str(err.value)

    updated = hook.update_referral(
        original["id"],
        [{"op": "replace", "path": "/statusReason", "value": "Working on it"}],
        etag=current["eTag"],
        return_representation=True,
    )
    assert updated == {**context, **next(r for r in emu.referrals() if r["id"] == original["id"])}
    assert updated is not None
    assert updated["statusReason"] == "Working on it"

    with pytest.raises(PartnerCenterNotFoundError) as missing:
        hook.get_referral("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404

    body = {
        "name": "Hook test",
        "type": "Independent",
        "customerProfile": {"name": "Fabrikam", "address": {"country": "US"}},
        "consent": {"consentToContact": True},
        "details": {"dealValue": 1000, "currency": "USD"},
    }
    created = hook.create_referral(body)
    assert created["name"] == "Hook test"
    assert hook.get_referral(created["id"]) == created
