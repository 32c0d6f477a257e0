"""Token lifecycle against the emulator's authority: rotation, stores, grants, role and auth errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from msal import SerializableTokenCache

from airflow_provider_partner.cli.login import main
from airflow_provider_partner.errors import (
    AuthFailure,
    PartnerCenterAuthError,
    PartnerCenterHTTPError,
    PartnerCenterPermissionError,
    PartnerCenterUnauthorizedError,
    is_transient,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.hooks.session import build_msal_app
from airflow_provider_partner.hooks.tokens import TokenProvider
from airflow_provider_partner.stores import LeaseGuarantee, open_store
from airflow_provider_partner.stores.variables import ENCRYPTED_PREFIX


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


def test_test_connection_checks_the_secret_even_with_a_cached_access_token(
    partner_center_emulator, connect
) -> None:
    # Found by the system tests: with a still-valid access token in the cache, no token request was
    # made, so a wrong client secret passed the connection test.
    emu = partner_center_emulator
    good = PartnerCenterHook(connect(emu, "pc_cached"))
    good.tokens.get_token()  # the credential store now holds a valid access token
    requests_before = emu.stats()["requests"].get("token", 0)

    ok, message = PartnerCenterHook(
        connect(emu, "pc_wrong_secret", password="not-the-secret")
    ).test_connection()

    assert ok is False
    assert "AADSTS7000215" in message
    assert "not-the-secret" not in message
    assert emu.stats()["requests"].get("token", 0) == requests_before + 1


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


@pytest.mark.parametrize(
    ("case", "kind", "code", "headline", "fix"),
    [
        (
            "revoked",
            AuthFailure.REFRESH_TOKEN_REJECTED,
            50173,
            "the refresh token was revoked or is invalid (AADSTS50173)",
            "run `partner-center-login --conn-id pc_dead` to sign in again",
        ),
        (
            "expired",
            AuthFailure.REFRESH_TOKEN_EXPIRED,
            700082,
            "the refresh token expired after 90 days unused (AADSTS700082)",
            "keep it alive with `partner-center-login --conn-id pc_dead --refresh`",
        ),
        (
            "mfa",
            AuthFailure.MFA_REQUIRED,
            50076,
            "the sign-in requires multi-factor authentication (AADSTS50076)",
            "run `partner-center-login --conn-id pc_dead` (the device-code sign-in completes MFA",
        ),
        (
            "consent",
            AuthFailure.CONSENT_REQUIRED,
            65001,
            "the app has no consent for the Partner Center API in this tenant (AADSTS65001)",
            "`az ad app permission admin-consent --id {client_id}`",
        ),
        (
            "unknown_app",
            AuthFailure.WRONG_TENANT,
            700016,
            "the tenant or the app registration in it was not found (AADSTS700016)",
            "`partner-center-login --conn-id pc_dead --tenant-id <directory id>`",
        ),
        (
            "wrong_tenant",
            AuthFailure.WRONG_TENANT,
            90002,
            "does not exist at",
            "`partner-center-login --conn-id pc_dead --tenant-id <directory id>`",
        ),
    ],
)
def test_each_dead_token_says_which_and_the_command_that_fixes_it(
    partner_center_emulator,
    connect,
    monkeypatch,
    case: str,
    kind: AuthFailure,
    code: int,
    headline: str,
    fix: str,
) -> None:
    emu = partner_center_emulator
    client_id = emu.info["client_id"]
    options: dict = {"drop": ("credential_store",)}
    if case == "revoked":
        emu.configure(revoke_used_refresh_tokens=True)
        used = emu.issue_refresh_token(emu.users["admin"]["username"])
        PartnerCenterHook(connect(emu, "pc_used", refresh_token=used, **options)).tokens.get_token()
        options["refresh_token"] = used
    elif case == "expired":
        emu.age_refresh_tokens(91)
    elif case == "mfa":
        emu.configure(require_mfa=True)  # the connection's token comes from a sign-in without MFA
    elif case == "consent":
        emu.configure(require_consent=True)
    elif case == "unknown_app":
        client_id = "11111111-2222-3333-4444-555555555555"
        conn = json.loads(emu.info["airflow_conn"])
        conn["login"] = client_id
        conn["extra"].pop("credential_store")
        monkeypatch.setenv("AIRFLOW_CONN_PC_DEAD", json.dumps(conn))
    else:
        options["tenant_id"] = "00000000-0000-0000-0000-000000000000"
    if case != "unknown_app":
        connect(emu, "pc_dead", **options)
    with pytest.raises(PartnerCenterAuthError) as err:
        PartnerCenterHook("pc_dead").tokens.get_token()
    message = str(err.value)
    assert (err.value.kind, err.value.aadsts) == (kind, code)
    assert headline in message
    assert fix.format(client_id=client_id) in message
    assert "emu-rt-" not in message


def test_mfa_required_is_fixed_by_the_device_code_sign_in(partner_center_emulator, connect, tmp_path) -> None:
    # The fix the MFA error names works: a device-code sign-in's refresh token passes the policy.
    emu = partner_center_emulator
    emu.configure(require_mfa=True)
    location = f"file://{tmp_path}/mfa.json"
    conn_id = connect(emu, "pc_mfa", drop=("refresh_token",), credential_store=location)
    hook = PartnerCenterHook(conn_id)
    app = build_msal_app(hook.settings, cache := SerializableTokenCache(), public=True)
    flow = app.initiate_device_flow(scopes=list(hook.settings.scopes))
    emu.approve_device_code(flow["user_code"], emu.users["admin"]["username"])
    assert "access_token" in app.acquire_token_by_device_flow(flow)
    open_store(location).save(cache.serialize())
    emu.expire_access_tokens()
    assert len(list(PartnerCenterHook(conn_id).iter_referrals(top=2))) == 2
    assert emu.stats()["token_grants"]["refresh_token"] == 1


def test_an_old_refresh_token_warns_and_the_keep_alive_renews_it(
    partner_center_emulator, connect, tmp_path, caplog, capsys
) -> None:
    emu = partner_center_emulator
    location = f"file://{tmp_path}/old.json"
    conn_id = connect(emu, "pc_old", credential_store=location)
    PartnerCenterHook(conn_id).tokens.get_token()
    store = open_store(location)
    state = json.loads(store.load() or "")
    state["AirflowProviderPartner"]["refresh_token_issued_at"] -= 80 * 86_400
    store.save(json.dumps(state))
    emu.age_refresh_tokens(80)  # the authority agrees: 80 days unused, 10 left

    assert main(["--conn-id", conn_id, "--refresh"]) == 0
    out = capsys.readouterr().out
    assert (
        f"Renewed the refresh token of connection 'pc_old' in {location} (it was 80.0 days old; now 0.0 days)"
        in out
    )
    assert "was last renewed 80 days ago; Entra ID lets it die after 90 days unused" in caplog.text
    assert "`partner-center-login --conn-id pc_old --refresh`" in caplog.text
    assert emu.stats()["token_grants"]["refresh_token"] == 2
