"""
Links and bodies crafted to mislead: the token never leaves the API host, every failure is named,
and no message quotes a secret.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_partner.errors import (
    PartnerCenterConfigError,
    PartnerCenterHTTPError,
    PartnerCenterNextLinkError,
)
from airflow_provider_partner.hooks.connection import settings_from_connection
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow


def _port(hostile: Any) -> int:
    return int(hostile.url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("link", "message"),
    [
        # Before: a bare ValueError, and the page carrying the link was lost.
        (
            "https://127.0.0.1:99999/v1.0/engagements/referrals?$skiptoken=a",
            "cannot be parsed (a malformed host or port).",
        ),
        (
            "https://127.0.0.1:abc/v1.0/engagements/referrals?$skiptoken=a",
            "cannot be parsed (a malformed host or port).",
        ),
        (
            "https://[::1/v1.0/engagements/referrals?$skiptoken=a",
            "cannot be parsed (a malformed host or port).",
        ),
        # urllib3 reads this as host evil.test; urlsplit as the API host.
        ("https://evil.test\\@127.0.0.1:{port}/v1.0/engagements/referrals?$skiptoken=a", "holds a backslash"),
        (
            "https://127.0.0.1:{port}/v1.0/engagements/referrals?$skiptoken=a\r\nX-Evil: 1",
            "control character",
        ),
    ],
)
def test_a_next_link_that_cannot_be_followed_safely_is_refused_after_its_page(
    hostile: Any, hostile_conn: Any, link: str, message: str
) -> None:
    hostile.configure(mode="next_link", next_link=link.replace("{port}", str(_port(hostile))))
    pages: list[Any] = []

    with pytest.raises(PartnerCenterNextLinkError) as caught:
        pages.extend(PartnerCenterHook(log_every_pages=0).iter_pages())

    assert str(caught.value).startswith(
        "The API returned an @odata.nextLink that cannot be followed safely: "
    )
    assert message in str(caught.value)
    assert [len(page) for page in pages] == [1]  # the page carrying the link was delivered
    assert len(hostile.requests) == 1  # and nothing was sent where the link points


def test_the_http_layer_holds_the_origin_on_its_own(hostile: Any, hostile_conn: Any) -> None:
    hook = PartnerCenterHook()
    tricky = f"https://evil.test\\@127.0.0.1:{_port(hostile)}/v1.0/engagements/referrals"

    with pytest.raises(PartnerCenterNextLinkError, match=r"^Refusing to send the bearer token to "):
        hook.http.request("GET", tricky)

    assert hostile.requests == []


def test_a_body_echoing_the_request_never_puts_the_token_in_the_error(
    hostile: Any, hostile_conn: Any
) -> None:
    hostile.configure(mode="echo")

    with pytest.raises(PartnerCenterHTTPError) as caught:
        next(iter(PartnerCenterHook(log_every_pages=0).iter_pages()))

    token = hostile.authorizations[0].removeprefix("Bearer ")
    assert len(token) > 20
    message = str(caught.value)
    assert token not in message
    assert token not in caught.value.body
    assert "Authorization: Bearer ***" in message
    assert caught.value.status == 400


def test_configuration_errors_show_no_userinfo_or_signed_query() -> None:
    with pytest.raises(PartnerCenterConfigError) as caught:
        settings_from_connection(
            "pc",
            host="https://api.example.test/?sig=SECRET-SIGNATURE&$filter=x",
            login="app",
            password=None,
            extras={"refresh_token": "rt"},
        )
    assert str(caught.value) == (
        "Connection field host must not carry a query or fragment: https://api.example.test/?sig=***&$filter=x"
    )
    with pytest.raises(PartnerCenterConfigError) as scheme:
        settings_from_connection(
            "pc",
            host="http://user:hunter2@api.example.test",
            login="app",
            password=None,
            extras={"refresh_token": "rt"},
        )
    assert "hunter2" not in str(scheme.value)
    assert "(http://***@api.example.test)" in str(scheme.value)


def test_the_redacted_url_keeps_what_was_asked() -> None:
    from airflow_provider_partner.hooks.urls import redact_url

    path = "https://{}@api.test/v1.0/engagements/referrals?$filter=status eq 'New'&$skiptoken={}&sig={}"
    assert redact_url(path.format("u:p", "abc", "s3cr3t")) == path.format("***", "***", "***")
    assert json.dumps(redact_url("https://[::1")) == '"https:..."'
