"""The hook's sessions read the proxy variables once per origin, and merge exactly as requests does."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.session import new_session

API = "https://api.partner.example/v1.0/engagements/referrals"
PROXY = "http://proxy.example:3128"


def _settings(**fields: Any) -> PartnerCenterSettings:
    return PartnerCenterSettings(conn_id="partner_center_default", client_id="c", **fields)


@pytest.mark.parametrize(
    ("url", "proxies", "verify"),
    [
        (API, {}, True),
        (f"{API}?$skiptoken=abc", {"no_proxy": "api.partner.example"}, True),
        ("https://bypassed.example/v1.0/x", {}, True),
        (API, {"https": "http://request-proxy.example:8080"}, True),
        (API, {"https": None}, "/etc/ssl/own-bundle.pem"),
        ("http://plain.example/x", {}, False),
    ],
)
def test_the_merge_is_the_same_as_requests_own_for_proxied_bypassed_and_explicit_settings(
    monkeypatch: pytest.MonkeyPatch, url: str, proxies: dict[str, str | None], verify: Any
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "bypassed.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/env-bundle.pem")
    ours = new_session(_settings(proxies={"http": "http://session-proxy.example:1"}))
    reference = requests.Session()
    reference.proxies.update({"http": "http://session-proxy.example:1"})
    for _ in range(2):  # the second time from the per-origin cache
        got = ours.merge_environment_settings(url, dict(proxies), None, verify, None)
        want = reference.merge_environment_settings(url, dict(proxies), None, verify, None)
        assert got == want


def test_the_environment_is_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setattr("airflow_provider_partner.hooks.session.get_environ_proxies", counted)
    session = new_session(_settings())
    for page in range(5):
        merged = session.merge_environment_settings(f"{API}?$skiptoken={page}", {}, None, True, None)
        assert merged["proxies"]["https"] == PROXY
    session.merge_environment_settings("https://login.example/token", {}, None, True, None)
    assert reads == [f"{API}?$skiptoken=0", "https://login.example/token"]
