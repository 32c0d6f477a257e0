"""The admin endpoints answer only their starter: a per-start bearer token, 401 without it."""

from __future__ import annotations

import logging
import re

import pytest
import requests

from partner_center_emulator.server import is_loopback

GET_ACTIONS = ["info", "stats", "users", "referrals"]
POST_ACTIONS = [
    "configure",
    "script_faults",
    "release_incoming",
    "approve",
    "reset_stats",
    "expire_access_tokens",
    "issue_refresh_token",
    "nonsense",
]
UNAUTHORIZED = {"error": "the admin endpoints need Authorization: Bearer <admin_token>"}


def _admin(emu, action: str, method: str, authorization: str | None) -> requests.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return requests.request(
        method,
        f"{emu.info['admin_url']}/{action}",
        json={},
        headers=headers,
        verify=emu.info["ca_bundle"],
        timeout=10,
    )


def test_the_admin_token_is_random_per_start_and_in_info(emulator_factory) -> None:
    first = emulator_factory(referrals=1, seed=7)
    second = emulator_factory(referrals=1, seed=7)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.admin_token)
    assert first.info["admin_token"] == first.admin_token
    assert second.admin_token != first.admin_token
    # Same seed, same data and secrets otherwise: only the admin token is not reproducible.
    assert second.info["client_id"] == first.info["client_id"]


@pytest.mark.parametrize(
    ("action", "method"),
    [(a, "GET") for a in GET_ACTIONS] + [(a, "POST") for a in POST_ACTIONS] + [("configure", "GET")],
)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", "Basic {token}", "Bearer {token}x", "{token}"],
)
def test_every_admin_action_refuses_a_missing_or_wrong_token(
    emu, action: str, method: str, authorization: str | None
) -> None:
    before = emu.stats()
    sent = None if authorization is None else authorization.format(token=emu.admin_token)
    response = _admin(emu, action, method, sent)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="partner-center-emulator admin"'
    # Nothing ran: no counter moved, no secret left in the answer.
    assert emu.stats() == before
    assert emu.info["client_secret"] not in response.text


def test_the_admin_token_opens_every_read_and_the_api_token_does_not(emu, api) -> None:
    bearer = f"Bearer {emu.admin_token}"
    assert _admin(emu, "info", "GET", bearer).json() == emu.info
    assert _admin(emu, "users", "GET", bearer).json() == emu.users
    assert _admin(emu, "stats", "GET", bearer).json() == emu.stats()
    assert len(_admin(emu, "referrals", "GET", bearer).json()) == 2000
    # The scheme is case-insensitive, as RFC 7235 says.
    assert _admin(emu, "stats", "GET", f"bearer {emu.admin_token}").status_code == 200
    # An access token of the emulated API is no admin token.
    assert _admin(emu, "info", "GET", f"Bearer {api.token}").status_code == 401


def test_the_python_methods_need_no_token(emu) -> None:
    emu.configure(page_size=5)
    emu.reset_stats()
    assert emu.stats()["requests"] == {}
    assert len(emu.release_incoming(2)) == 2
    assert len(emu.referrals()) == 2002


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("fe80::1%eth0", False),
        ("localhost", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_a_non_loopback_bind_logs_a_warning(emulator_factory, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="partner_center_emulator.server"):
        emulator_factory(referrals=1, seed=7, host="127.0.0.1")
        assert caplog.records == []
        emulator_factory(referrals=1, seed=7, host="0.0.0.0")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "The Partner Center emulator listens on 0.0.0.0, not a loopback address: other machines can reach it."
    )
