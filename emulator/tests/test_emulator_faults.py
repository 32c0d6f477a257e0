"""Fault injection: every kind, scripted order, the seeded random rate, and the counters."""

from __future__ import annotations

import json
import time

import pytest
import requests

REFERRALS = "/v1.0/engagements/referrals"


def test_scripted_faults_hit_the_next_api_requests_in_order(emu, api) -> None:
    emu.configure(retry_after=7, slow_seconds=0.3)
    emu.reset_stats()
    emu.script_faults(["429", "503", "500", "token_expired", "html", "malformed", "truncated", "slow"])
    too_many = api.list(top="2")
    assert (too_many.status_code, too_many.headers["Retry-After"]) == (429, "7")
    assert too_many.json()["code"] == "TooManyRequests"
    unavailable = api.list(top="2")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "7")
    assert api.list(top="2").status_code == 500
    expired = api.list(top="2")
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token has expired."'
    )
    html = api.list(top="2")
    assert (html.status_code, html.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert html.text.startswith("<!DOCTYPE html>")
    malformed = api.list(top="2")
    assert malformed.status_code == 200
    assert "value" not in malformed.json()
    truncated = api.list(top="2")
    assert truncated.status_code == 200
    assert int(truncated.headers["Content-Length"]) == len(truncated.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    started = time.monotonic()
    slow = api.list(top="2")
    assert time.monotonic() - started >= 0.3
    assert len(slow.json()["value"]) == 2
    assert len(api.list(top="2").json()["value"]) == 2  # the script is used up
    stats = emu.stats()
    assert stats["faults"] == {k: 1 for k in ("429", "503", "500", "token_expired", "html", "malformed",
                                              "truncated", "slow")}  # fmt: skip
    assert stats["requests"]["list"] == 9
    assert stats["pages_served"] == 2  # only the slow page and the clean one were whole pages


def test_reset_drops_the_connection(emu, api) -> None:
    emu.script_faults(["reset"])
    with pytest.raises(requests.exceptions.ConnectionError):
        api.list(top="1")
    assert api.list(top="1").status_code == 200
    assert emu.stats()["faults"] == {"reset": 1}


def test_faults_spare_the_token_endpoint(emu, api, get_token) -> None:
    emu.script_faults(["500"])
    get_token(emu)  # not an API request: the fault stays queued
    assert emu.faults.pending() == ["500"]
    assert api.list(top="1").status_code == 500


def test_random_faults_are_seeded(emulator_factory, make_api, fixed_now) -> None:
    outcomes = []
    for _ in range(2):
        emu = emulator_factory(referrals=50, seed=3, now=fixed_now)
        emu.configure(fault_rate=0.5, fault_kinds=["429", "500", "503"], fault_seed=11)
        api = make_api(emu)
        outcomes.append([api.list(top="1").status_code for _ in range(12)])
        assert sum(emu.stats()["faults"].values()) == sum(code != 200 for code in outcomes[-1])
    assert outcomes[0] == outcomes[1]
    assert {200, 429, 500, 503} >= set(outcomes[0])
    assert len(set(outcomes[0])) > 1


def test_bad_settings_are_refused(emu) -> None:
    with pytest.raises(ValueError, match=r"unknown fault kind\(s\) \['boom'\]"):
        emu.script_faults(["boom"])
    with pytest.raises(ValueError, match="Unknown emulator setting"):
        emu.configure(colour="red")
    with pytest.raises(ValueError, match="fault_rate must be between 0 and 1"):
        emu.configure(fault_rate=2)


def test_latency_per_page_and_auth_headers_per_host(emu, api, make_api) -> None:
    emu.configure(latency_per_page=0.2)
    started = time.monotonic()
    api.list(top="1")
    assert time.monotonic() - started >= 0.2
    emu.configure(latency_per_page=0)
    localhost = make_api(emu, token=api.token)
    localhost.emu = emu
    port = emu.info["api_url"].rsplit(":", 1)[1]
    response = requests.get(
        f"https://localhost:{port}{REFERRALS}?$top=1",
        headers={"Authorization": f"Bearer {api.token}"},
        verify=emu.info["ca_bundle"],
        timeout=10,
    )
    assert response.status_code == 200
    assert emu.stats()["auth_headers"] == {f"127.0.0.1:{port}": 1, f"localhost:{port}": 1}
