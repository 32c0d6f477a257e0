"""Entra ID side of the emulator: discovery, grants (raw and through msal), tokens, roles."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import urlsplit, urlunsplit

import msal
import pytest
import requests

SCOPE = "https://api.partner.microsoft.com/.default"


def _post_token(emu, **form):
    info = emu.info
    data = {"client_id": info["client_id"], "scope": SCOPE, **form}
    return requests.post(
        info["authority"] + "/oauth2/v2.0/token", data=data, verify=info["ca_bundle"], timeout=10
    )


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_openid_configuration_is_https_and_names_the_endpoints(emu) -> None:
    info = emu.info
    response = requests.get(
        info["authority"] + "/v2.0/.well-known/openid-configuration", verify=info["ca_bundle"], timeout=10
    )
    config = response.json()
    assert config["token_endpoint"] == info["authority"] + "/oauth2/v2.0/token"
    assert config["device_authorization_endpoint"] == info["authority"] + "/oauth2/v2.0/devicecode"
    assert config["issuer"] == info["authority"] + "/v2.0"
    wrong = requests.get(
        info["authority_host"] + "/not-my-tenant/v2.0/.well-known/openid-configuration",
        verify=info["ca_bundle"],
        timeout=10,
    )
    assert wrong.status_code == 400
    assert wrong.json()["error_description"].startswith("AADSTS90002: Tenant 'not-my-tenant' not found.")


def test_refresh_grant_rotates_and_answers_like_entra(emu) -> None:
    info = emu.info
    first = _post_token(emu, grant_type="refresh_token", refresh_token=info["refresh_token"],
                        client_secret=info["client_secret"])  # fmt: skip
    body = first.json()
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    assert set(body) == {"token_type", "scope", "expires_in", "ext_expires_in", "access_token",
                         "refresh_token", "id_token", "client_info"}  # fmt: skip
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert body["scope"] == SCOPE
    assert body["refresh_token"] != info["refresh_token"]
    admin = emu.users["admin"]
    claims = _claims(body["id_token"])
    assert claims["preferred_username"] == admin["username"]
    assert (claims["tid"], claims["aud"]) == (info["tenant_id"], info["client_id"])
    assert claims["iss"] == info["authority"] + "/v2.0"
    assert claims["oid"] == claims["sub"] == admin["object_id"]
    assert claims["exp"] > claims["iat"]
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert client_info == {"uid": admin["object_id"], "utid": info["tenant_id"]}

    # Without rotation enforcement the old token still works; with it, a used token is dead.
    again = _post_token(emu, grant_type="refresh_token", refresh_token=info["refresh_token"])
    assert again.status_code == 200
    emu.configure(revoke_used_refresh_tokens=True)
    newest = again.json()["refresh_token"]
    assert _post_token(emu, grant_type="refresh_token", refresh_token=newest).status_code == 200
    reused = _post_token(emu, grant_type="refresh_token", refresh_token=newest)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_codes"] == [50173]
    assert reused.json()["error_description"].startswith("AADSTS50173: The provided grant has expired")
    unknown = _post_token(emu, grant_type="refresh_token", refresh_token="nope")
    assert (unknown.status_code, unknown.json()["error"], unknown.json()["error_codes"]) == (
        400, "invalid_grant", [9002313])  # fmt: skip
    assert emu.stats()["token_grants"] == {"refresh_token": 3, "password": 0, "device_code": 0}


def test_client_errors(emu) -> None:
    info = emu.info
    rt = emu.issue_refresh_token(info["username"])
    wrong = _post_token(emu, grant_type="refresh_token", refresh_token=rt, client_secret="wrong")
    assert (wrong.status_code, wrong.json()["error"], wrong.json()["error_codes"]) == (
        401, "invalid_client", [7000215])  # fmt: skip
    stranger = _post_token(emu, grant_type="refresh_token", refresh_token=rt, client_id="someone-else")
    assert (stranger.status_code, stranger.json()["error"]) == (400, "unauthorized_client")
    scope = _post_token(
        emu, grant_type="refresh_token", refresh_token=rt, scope="https://graph.microsoft.com/.default"
    )
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_scope")
    grant = _post_token(emu, grant_type="client_credentials", client_secret=info["client_secret"])
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    # A public client (no secret) is accepted unless the app requires its secret.
    assert _post_token(emu, grant_type="refresh_token", refresh_token=rt).status_code == 200
    emu.configure(require_client_secret=True)
    rt = emu.issue_refresh_token(info["username"])
    missing = _post_token(emu, grant_type="refresh_token", refresh_token=rt)
    assert (missing.status_code, missing.json()["error"], missing.json()["error_codes"]) == (
        401, "invalid_client", [7000218])  # fmt: skip


def test_password_grant_errors(emu) -> None:
    bad = _post_token(emu, grant_type="password", username=emu.info["username"], password="wrong")
    assert (bad.status_code, bad.json()["error"], bad.json()["error_codes"]) == (
        400,
        "invalid_grant",
        [50126],
    )
    good = _post_token(
        emu, grant_type="password", username=emu.info["username"], password=emu.info["password"]
    )
    assert good.status_code == 200


def test_msal_refresh_token_then_silent_from_the_cache(emu, monkeypatch) -> None:
    info = emu.info
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info["ca_bundle"])
    app = msal.ConfidentialClientApplication(
        info["client_id"], client_credential=info["client_secret"], authority=info["authority"],
        instance_discovery=False,
    )  # fmt: skip
    result = app.acquire_token_by_refresh_token(info["refresh_token"], scopes=[SCOPE])
    assert "access_token" in result, result
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [info["username"]]
    silent = app.acquire_token_silent([SCOPE], account=accounts[0])
    assert silent["access_token"] == result["access_token"]
    assert emu.stats()["token_grants"]["refresh_token"] == 1
    # Tokens that live 60 s are inside msal's 5-minute margin: silent refreshes with the cached RT.
    emu.configure(token_ttl=60, revoke_used_refresh_tokens=True)
    app.acquire_token_silent([SCOPE], account=accounts[0], force_refresh=True)
    renewed = app.acquire_token_silent([SCOPE], account=accounts[0])
    assert renewed["access_token"] != result["access_token"]
    assert emu.stats()["token_grants"]["refresh_token"] == 3
    assert emu.stats()["requests"]["openid"] == 1


class _PortFixingSession(requests.Session):
    """msal asks https://127.0.0.1/common/userrealm/... without the port: put the port back."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        if parts.hostname == "127.0.0.1" and parts.port is None:
            url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))
        return super().request(method, url, *args, **kwargs)


@pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")
def test_msal_password_grant_with_the_userrealm_call(emu, monkeypatch) -> None:
    info = emu.info
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info["ca_bundle"])
    # msal remembers, per process and per host (without the port), every authority whose userrealm
    # call once answered 404, and then skips the call: an earlier test of the same pytest run
    # against another 127.0.0.1 server must not decide whether this one is asked.
    monkeypatch.setattr(msal.authority.Authority, "_domains_without_user_realm_discovery", set())
    app = msal.PublicClientApplication(
        info["client_id"], authority=info["authority"], instance_discovery=False,
        http_client=_PortFixingSession(urlsplit(info["api_url"]).port),
    )  # fmt: skip
    result = app.acquire_token_by_username_password(info["username"], info["password"], scopes=[SCOPE])
    assert "access_token" in result, result
    assert emu.stats()["requests"]["userrealm"] == 1
    assert emu.stats()["token_grants"]["password"] == 1
    assert app.get_accounts()[0]["username"] == info["username"]


def test_msal_device_flow_approved_from_another_thread(emu, monkeypatch) -> None:
    info = emu.info
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info["ca_bundle"])
    emu.configure(device_code_interval=1)
    app = msal.PublicClientApplication(
        info["client_id"], authority=info["authority"], instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=[SCOPE])
    assert flow["verification_uri"] == info["authority_host"] + "/devicelogin"
    assert flow["user_code"] in flow["message"]
    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda flow: True)
    assert pending["error"] == "authorization_pending"
    user = emu.users["user"]["username"]
    approver = threading.Thread(target=emu.approve_device_code, args=(flow["user_code"], user))
    approver.start()
    result = app.acquire_token_by_device_flow(flow)
    approver.join(timeout=10)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == user
    assert emu.stats()["token_grants"]["device_code"] == 1
    # A redeemed device code cannot be used again.
    again = _post_token(emu, grant_type="urn:ietf:params:oauth:grant-type:device_code",
                        device_code=flow["device_code"])  # fmt: skip
    assert again.json()["error"] == "expired_token"
    with pytest.raises(KeyError, match="No pending device code"):
        emu.approve_device_code("NOPE", user)


def test_api_401_for_missing_bad_and_expired_tokens(emu, make_api, get_token) -> None:
    url = emu.info["referrals_url"]
    ca = emu.info["ca_bundle"]
    missing = requests.get(url, verify=ca, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token", error_description=')
    assert missing.json()["code"] == "InvalidAuthenticationToken"
    bad = make_api(emu, token="forged").list(top="1")
    assert bad.status_code == 401
    assert "invalid or was revoked" in bad.headers["WWW-Authenticate"]
    api = make_api(emu)
    assert api.list(top="1").status_code == 200
    emu.expire_access_tokens()
    assert api.list(top="1").status_code == 401
    emu.configure(token_ttl=0)
    expired = make_api(emu).list(top="1")
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token has expired."'
    )


def test_roles(emu, make_api, get_token) -> None:
    norole = make_api(emu, token=get_token(emu, emu.users["norole"]["username"])).list()
    assert norole.status_code == 403
    assert "missing the Referral Admin or Referral User role" in norole.json()["description"]

    seller = emu.users["user"]
    assert seller["role"] == "Referral User"
    api = make_api(emu, token=get_token(emu, seller["username"]))
    pages = api.all_pages()
    seen = [r["id"] for page in pages for r in page["value"]]
    mine = [r["id"] for r in emu.referrals() if any(m["email"] == seller["email"] for m in r["team"])]
    assert 0 < len(mine) < 2000
    assert seen == mine
    assert pages[0]["@odata.count"] == len(mine)
    other = next(r for r in emu.referrals() if r["id"] not in set(mine))
    assert api.get(f"/v1.0/engagements/referrals/{other['id']}").status_code == 404
    assert api.get(f"/v1.0/engagements/referrals/{mine[0]}").status_code == 200
