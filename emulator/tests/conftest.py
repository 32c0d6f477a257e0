"""Helpers for the emulator's own tests: a fixed clock, an https session, tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

#: Every emulator in these tests starts at this instant, so data and expiry are reproducible.
FIXED_NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
SCOPE = "https://api.partner.microsoft.com/.default"


def token_for(emu: Any, username: str | None = None) -> str:
    """An access token (refresh-token grant) for ``username`` (default: the Referral Admin)."""
    rt = emu.issue_refresh_token(username or emu.users["admin"]["username"])
    info = emu.info
    response = requests.post(
        info["authority"] + "/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "refresh_token": rt,
            "scope": SCOPE,
        },
        verify=info["ca_bundle"],
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


class Api:
    """A tiny https client of one emulator: ``api.get(path_or_url, **kw)`` with a bearer token."""

    def __init__(self, emu: Any, token: str | None = None) -> None:
        self.emu = emu
        self.token = token or token_for(emu)
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.emu.info["api_url"] + path

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any):
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.session.request(
            method, self.url(path), headers=sent, verify=self.emu.info["ca_bundle"], timeout=30, **kw
        )

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def list(self, **params: str):
        """One list request with OData options given as filter=..., orderby=..., top=..."""
        return self.get("/v1.0/engagements/referrals", params={f"${k}": v for k, v in params.items()})

    def all_pages(self, **params: str) -> list[dict[str, Any]]:
        """Every page's JSON of a query, following @odata.nextLink."""
        response = self.list(**params)
        assert response.status_code == 200, response.text
        pages = [response.json()]
        while "@odata.nextLink" in pages[-1]:
            response = self.get(pages[-1]["@odata.nextLink"])
            assert response.status_code == 200, response.text
            pages.append(response.json())
        return pages


@pytest.fixture
def emu(emulator_factory: Callable[..., Any]) -> Any:
    """A 2000-referral emulator (seed 7) with a fixed clock."""
    return emulator_factory(referrals=2000, seed=7, now=FIXED_NOW)


@pytest.fixture
def api(emu: Any) -> Api:
    """An https client of ``emu`` signed in as the Referral Admin."""
    return Api(emu)


@pytest.fixture
def make_api() -> type[Api]:
    """``make_api(emu, token=None)``: a client of another emulator or with another token."""
    return Api


@pytest.fixture
def get_token() -> Callable[..., str]:
    """``get_token(emu, username=None)``: an access token through the refresh-token grant."""
    return token_for


@pytest.fixture
def fixed_now() -> datetime:
    """The clock start of the ``emu`` fixture."""
    return FIXED_NOW
