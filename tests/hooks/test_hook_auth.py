"""Token lifecycle against the emulator's authority: rotation, stores, grants, role and auth errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from airflow_provider_partner.hooks.errors import (
    AuthFailure,
    PartnerCenterAuthError,
    PartnerCenterHTTPError,
    PartnerCenterPermissionError,
    PartnerCenterUnauthorizedError,
    is_transient,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.hooks.stores import ENCRYPTED_PREFIX, LeaseGuarantee, open_store
from airflow_provider_partner.hooks.tokens import TokenProvider


def _run(conn_id: str, n: int = 5) -> PartnerCenterHook:
    """One "task run": a new hook instance reads a few referrals."""
    hook = PartnerCenterHook(conn_id)
    assert len(list(hook.iter_referrals(top=n))) == n
    return hook


def _rotate_ten_times(emu, conn_id: str) -> None:
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=60)
    emu.reset_stats()
    for _ in range(10):
        # Each run starts after the access token's lifetime (the authority forgets it): the run
        # gets a 401 with the cached token and refreshes once.
        emu.expire_access_tokens()
        hook = _run(conn_id)
        assert hook.tokens.token_requests == 1
    assert emu.stats()["token_grants"]["refresh_token"] == 10


def test_rotation_survives_ten_runs_with_a_file_cache(
    partner_center_emulator, connect, tmp_path: Path
) -> None:
    emu = partner_center_emulator
    cache = tmp_path / "cache.json"
    conn_id = connect(emu, "pc_file", credential_store=f"file://{cache}")
    _rotate_ten_times(emu, conn_id)
    assert cache.stat().st_mode & 0o777 == 0o600
    # The bootstrap refresh token of the connection was used once and is dead now: only the
    # persisted cache kept the DAG alive.
    stale = connect(emu, "pc_stale")
    with pytest.raises(PartnerCenterAuthError) as err:
        _run(stale)
    assert err.value.error == "invalid_grant"


def test_rotation_survives_ten_runs_with_a_variable_cache(
    partner_center_emulator, connect, airflow_db
) -> None:
    from airflow.models.variable import Variable

    emu = partner_center_emulator
    conn_id = connect(emu, "pc_var", credential_store="variable://partner_center_test_token_cache")
    _rotate_ten_times(emu, conn_id)
    raw = Variable.get("partner_center_test_token_cache")
    assert raw.startswith(ENCRYPTED_PREFIX)  # at rest (and on the wire) only as ciphertext
    assert "emu-rt-" not in raw
    assert "RefreshToken" not in raw
    stored = json.loads(open_store("variable://partner_center_test_token_cache").load() or "")
    assert len(stored["RefreshToken"]) == 1
    Variable.delete("partner_center_test_token_cache")


def test_a_valid_cached_token_costs_no_token_request(
    partner_center_emulator, connect, tmp_path: Path
) -> None:
    emu = partner_center_emulator
    conn_id = connect(emu, "pc_cached", credential_store=f"file://{tmp_path}/cache.json")
    first = _run(conn_id)
    assert first.tokens.token_requests == 1
    second = _run(conn_id)
    assert second.tokens.token_requests == 0
    assert emu.stats()["token_grants"]["refresh_token"] == 1


class _LateStore:
    """A store without a lease whose first reads return what a slow reader saw: the old cache."""

    def __init__(self, real, stale: str, stale_reads: int) -> None:
        self.real = real
        self.location = real.location
        self.stale = stale
        self.stale_reads = stale_reads
        self.reads = 0

    def load(self) -> str | None:
        self.reads += 1
        return self.stale if self.reads <= self.stale_reads else self.real.load()

    def save(self, data: str) -> None:
        self.real.save(data)


@pytest.mark.parametrize("stale_reads", [1, 3])
def test_a_loser_of_a_refresh_race_continues_from_the_winners_cache(
    partner_center_emulator, connect, tmp_path: Path, caplog, stale_reads: int
) -> None:
    # B read the cache before A's refresh was saved (stale_reads=3: A's save lands only while B
    # already waits for it). B's refresh token is refused, and B continues from A's cache
    # instead of reporting invalid_grant; it uses A's access token (no second grant).
    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True)
    location = f"file://{tmp_path}/cache.json"
    hook = PartnerCenterHook(connect(emu, "pc_race", credential_store=location))
    first = hook.tokens.get_token()
    store = open_store(location)
    stale = store.load() or ""
    a = TokenProvider(hook.settings, store)
    b = TokenProvider(hook.settings, _LateStore(store, stale, stale_reads))
    emu.expire_access_tokens()
    emu.reset_stats()
    a_token = a.get_token(force_refresh=True, rejected=first)
    b_token = b.get_token(force_refresh=True, rejected=first)
    assert b_token == a_token
    # B's refused attempts: the cache's refresh token, then the connection's (used up long ago).
    assert (a.token_requests, b.token_requests) == (1, 2)
    assert emu.stats()["token_grants"]["refresh_token"] == 1
    assert "Refresh token refused after another task rotated it" in caplog.text
    assert b.last_lease is LeaseGuarantee.NONE


def test_password_grant_is_the_legacy_fallback(partner_center_emulator, connect, caplog) -> None:
    emu = partner_center_emulator
    admin = emu.users["admin"]
    conn_id = connect(
        emu, "pc_ropc", drop=("refresh_token",), username=admin["username"], user_password=admin["password"]
    )
    hook = _run(conn_id)
    assert emu.stats()["token_grants"]["password"] == 1
    assert hook.tokens.token_requests == 1
    assert "used the legacy password grant" in caplog.text


def test_user_without_role_gets_a_permission_error(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    conn_id = connect(
        emu, "pc_norole", refresh_token=emu.issue_refresh_token(emu.users["norole"]["username"])
    )
    with pytest.raises(PartnerCenterPermissionError) as err:
        _run(conn_id)
    assert err.value.status == 403
    assert "lacks the Partner Center Referral Admin or Referral User role" in str(err.value)
    assert f"MS-RequestId={err.value.request_id}" in str(err.value)


def test_revoked_refresh_token_says_run_partner_center_login(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    conn_id = connect(emu, "pc_bad", refresh_token="not-a-valid-refresh-token")
    with pytest.raises(PartnerCenterAuthError) as err:
        _run(conn_id)
    message = str(err.value)
    assert err.value.error == "invalid_grant"
    assert err.value.kind is AuthFailure.REFRESH_TOKEN_REJECTED
    assert "run `partner-center-login --conn-id pc_bad` to sign in again" in message
    assert "not-a-valid-refresh-token" not in message


def test_test_connection_reports_success_and_failure(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    ok, message = PartnerCenterHook(connect(emu, "pc_ok")).test_connection()
    first = emu.referrals()[0]["id"]
    store = json.loads(emu.info["airflow_conn"])["extra"]["credential_store"]
    assert (ok, message) == (
        True,
        f"Connected to {emu.info['api_url']} as {emu.users['admin']['username']}; read referral {first}. "
        f"Credential store {store}: the refresh token is 0.0 days old (it dies after 90 days unused).",
    )

    ok, message = PartnerCenterHook(
        connect(emu, "pc_fail", refresh_token="revoked-token", drop=("credential_store",))
    ).test_connection()
    assert ok is False
    assert message.startswith("Could not acquire a Partner Center token for connection 'pc_fail'")
    assert "invalid_grant" in message

    ok, message = PartnerCenterHook(connect(emu, "pc_http", host="http://127.0.0.1:1")).test_connection()
    assert (ok, message.split(",")[0]) == (False, "Connection field host must be an https URL")


def test_threads_sharing_a_token_provider_refresh_once_after_a_401(partner_center_emulator, connect) -> None:
    emu = partner_center_emulator
    emu.configure(latency_per_page=0.2)  # both threads' requests are in flight together
    conn_id = connect(emu, "pc_threads")
    first = PartnerCenterHook(conn_id)
    second = first.sibling()  # as the operator's parallel slices do
    assert second.tokens is first.tokens
    assert second.settings is first.settings
    assert second.http is not first.http  # each thread its own HTTP session
    first.tokens.get_token()
    emu.expire_access_tokens()
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def read(hook: PartnerCenterHook) -> None:
        barrier.wait(timeout=30)
        counts.append(len(next(hook.iter_pages(top=3)).records))

    threads = [threading.Thread(target=read, args=(hook,)) for hook in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert counts == [3, 3]
    assert emu.stats()["token_grants"]["refresh_token"] == 2  # the first token, then one refresh


def test_a_401_on_a_refreshed_token_is_an_http_error_and_an_auth_error(
    partner_center_emulator, connect
) -> None:
    emu = partner_center_emulator
    hook = PartnerCenterHook(connect(emu, "pc_401"))
    emu.script_faults(["token_expired", "token_expired"])  # the refreshed token is refused too
    with pytest.raises(PartnerCenterAuthError) as err:
        next(hook.iter_pages(top=1))
    error = err.value
    assert isinstance(error, PartnerCenterUnauthorizedError)
    assert isinstance(error, PartnerCenterHTTPError)
    assert (error.status, error.method, error.kind, error.error) == (
        401,
        "GET",
        AuthFailure.TOKEN_REJECTED_BY_API,
        "http_401",
    )
    assert error.url.startswith(emu.info["referrals_url"])
    assert len(error.request_id or "") == len(error.correlation_id or "") == 36
    assert str(error).startswith("The API rejected a freshly refreshed access token (HTTP 401 Bearer ")
    assert f"[HTTP 401 on GET {error.url}; MS-RequestId={error.request_id};" in str(error)
    assert is_transient(error) is False
    assert emu.stats()["requests"]["list"] == 2
    assert emu.stats()["token_grants"]["refresh_token"] == 2  # the first token, then one refresh


@pytest.mark.parametrize(
    ("setup", "kind", "error", "advice"),
    [
        ("no_credential", AuthFailure.NO_CREDENTIAL, "no_credential", "has no usable credential"),
        ("password", AuthFailure.PASSWORD_REJECTED, "invalid_grant", "The user's password was refused"),
        ("client", AuthFailure.CLIENT_REJECTED, "invalid_client", "or client secret (password) was refused"),
    ],
)
def test_token_failures_carry_their_kind(
    partner_center_emulator, connect, tmp_path: Path, setup: str, kind: AuthFailure, error: str, advice: str
) -> None:
    emu = partner_center_emulator
    admin = emu.users["admin"]
    options: dict = {
        "no_credential": {"drop": ("refresh_token",), "credential_store": f"file://{tmp_path}/empty.json"},
        "password": {"drop": ("refresh_token",), "username": admin["username"], "user_password": "wrong"},
        "client": {"password": "not-the-client-secret"},
    }[setup]
    hook = PartnerCenterHook(connect(emu, "pc_kinds", **options))
    with pytest.raises(PartnerCenterAuthError) as err:
        hook.tokens.get_token()
    assert (err.value.kind, err.value.error) == (kind, error)
    assert advice in str(err.value)
    assert "not-the-client-secret" not in str(err.value)
