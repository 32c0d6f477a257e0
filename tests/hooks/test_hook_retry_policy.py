"""Retry policy against the emulator: Retry-After honoured and capped, bounded attempts and time."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_partner.errors import (
    PartnerCenterConnectionError,
    PartnerCenterHTTPError,
    PartnerCenterTLSError,
    is_transient,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow


def _list_requests(emu) -> int:
    """Referral list requests that reached the emulator (every attempt, retries included)."""
    return emu.stats()["requests"].get("list", 0)


def _first_page_seconds(hook: PartnerCenterHook) -> float:
    hook.tokens.get_token()  # keep token acquisition out of the measurement
    started = time.monotonic()
    next(hook.iter_pages(top=1))
    return time.monotonic() - started


def test_retry_after_is_honoured(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator  # answers 429/503 with Retry-After: 1
    hook = PartnerCenterHook(connect(emu, max_retry_wait=5))
    emu.script_faults(["429"])
    assert 1.0 <= _first_page_seconds(hook) < 2.5
    assert _list_requests(emu) == 2


def test_retry_after_is_capped_by_max_retry_wait(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu, max_retry_wait=0.1))
    emu.script_faults(["503", "429"])
    assert _first_page_seconds(hook) < 0.9
    assert _list_requests(emu) == 3


def test_attempts_are_bounded_and_the_error_carries_the_ids(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu, max_retries=2))
    emu.script_faults(["503", "503", "503"])
    with pytest.raises(PartnerCenterHTTPError) as err:
        next(hook.iter_pages())
    assert _list_requests(emu) == 3
    error = err.value
    assert (error.status, error.method) == (503, "GET")
    assert error.url.startswith(emu.info["referrals_url"])
    assert len(error.request_id or "") == len(error.correlation_id or "") == 36
    assert "ServiceUnavailable" in error.body
    assert str(error).startswith(
        "The API kept answering with a transient error after all retries; try again later or raise "
        f"extras max_retries/max_retry_time. [HTTP 503 on GET {error.url}; MS-RequestId={error.request_id}; "
        f"MS-CorrelationId={error.correlation_id}"
    )


def test_total_retry_time_is_bounded(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu, max_retry_wait=5, max_retry_time=1.5))
    emu.script_faults(["429"] * 5)
    hook.tokens.get_token()
    started = time.monotonic()
    with pytest.raises(PartnerCenterHTTPError) as err:
        next(hook.iter_pages())
    assert err.value.status == 429
    assert time.monotonic() - started < 2.5  # one Retry-After wait fits in 1.5 s, a second does not
    assert _list_requests(emu) == 2


def test_unreachable_api_fails_with_a_network_hint(partner_center_emulator, connect, caplog) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu, host="https://127.0.0.1:9", max_retries=2))
    with (
        caplog.at_level(logging.WARNING, logger="airflow_provider_partner"),
        pytest.raises(PartnerCenterConnectionError) as err,
    ):
        next(hook.iter_pages())
    message = str(err.value)
    assert message.startswith("GET https://127.0.0.1:9/v1.0/engagements/referrals failed after 3 attempt(s)")
    assert "Check network access to the API (proxies, firewall)" in message
    # No server listens there: the attempts are seen as the client's retries (2 after the first).
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying GET")]
    assert [m.split("(attempt ")[1].split(",")[0] for m in retries] == ["2 of 3", "3 of 3"]


def test_tls_failure_is_not_retried_and_says_ca_bundle(
    partner_center_emulator, emulator_factory, connect, caplog
) -> None:
    emu = partner_center_emulator
    other = emulator_factory(referrals=1, seed=4)  # its own throwaway CA, unknown to ca_bundle
    hook = PartnerCenterHook(connect(emu, host=other.info["api_url"]))
    with (
        caplog.at_level(logging.WARNING, logger="airflow_provider_partner"),
        pytest.raises(PartnerCenterTLSError) as err,
    ):
        next(hook.iter_pages())
    assert str(err.value).startswith(f"TLS verification failed for GET {other.info['referrals_url']}")
    assert "set the connection extra ca_bundle" in str(err.value)
    assert (err.value.method, err.value.url) == ("GET", other.info["referrals_url"])
    assert len(err.value.request_id or "") == 36
    assert is_transient(err.value) is False
    # One handshake, refused: no request reached the server, and none was retried.
    assert [r for r in caplog.records if r.getMessage().startswith("Retrying GET")] == []
    assert other.stats()["requests"] == {}
    assert other.stats()["auth_headers"] == {}


def test_unreachable_authority_is_named(partner_center_emulator, connect) -> None:
    hook = PartnerCenterHook(connect(partner_center_emulator, authority_host="https://127.0.0.1:9"))
    ok, message = hook.test_connection()
    assert ok is False
    assert message.startswith("Cannot reach the authority https://127.0.0.1:9/")
    assert message.endswith("Check extras authority_host, tenant_id, proxies and ca_bundle.")


def test_writes_are_retried_only_when_the_server_did_not_process_them(
    partner_center_emulator, connect
) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu))
    referral = next(r for r in emu.referrals() if r["status"] == "New")
    ops = [{"op": "replace", "path": "/statusReason", "value": "retry test"}]
    emu.script_faults(["429", "503"])
    assert hook.update_referral(referral["id"], ops) is None
    assert emu.stats()["requests"]["update"] == 3
    emu.script_faults(["500"])
    with pytest.raises(PartnerCenterHTTPError) as err:
        hook.update_referral(referral["id"], ops)
    assert (err.value.status, err.value.method, emu.stats()["requests"]["update"]) == (500, "PATCH", 4)
