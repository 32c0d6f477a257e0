"""
The token endpoint of the emulated Entra ID: the grants, their checks, the token responses.

``/{tenant}/oauth2/v2.0/token`` redeems a refresh token, a password or an approved device code;
``/devicecode`` starts a device-code sign-in. Each check answers as Entra does (its OAuth error
and AADSTS code); the users and every token issued are kept by :class:`~.identity.Identity`.
Token responses mimic Entra's v2.0 endpoint (``id_token`` and ``client_info`` included) so that
msal's token cache, ``get_accounts()`` and ``acquire_token_silent`` work against it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from partner_center_emulator.entra_errors import OAuthError
from partner_center_emulator.token_values import b64url, new_access_token, unsigned_jwt

if TYPE_CHECKING:
    from partner_center_emulator.identity import Identity, User

API_RESOURCE = "https://api.partner.microsoft.com"
API_SCOPE = f"{API_RESOURCE}/user_impersonation"


def token(identity: Identity, form: dict[str, str], issuer_base: str) -> dict[str, Any]:
    """
    Answer one POST to ``/{tenant}/oauth2/v2.0/token``.

    :param identity: the tenant.
    :param form: the form fields.
    :param issuer_base: ``https://host:port`` (for the id token's ``iss``).
    :raises OAuthError: with Entra's error code and an AADSTS-style description.
    """
    check_client(identity, form)
    grant = form.get("grant_type", "")
    # The device-code poll (RFC 8628) sends no scope: the scope asked at /devicecode holds.
    scope = check_scope(form["scope"]) if form.get("scope") else API_SCOPE
    check_consent(identity)
    if grant == "refresh_token":
        user, mfa = identity.redeem_refresh_token(form.get("refresh_token", ""))
    elif grant == "password":
        user = check_password(identity, form.get("username", ""), form.get("password", ""))
        mfa = False
        identity.check_mfa(mfa)
    elif grant == "urn:ietf:params:oauth:grant-type:device_code":
        # The browser sign-in of a device code is where the user does MFA.
        user, mfa = identity.redeem_device_code(form.get("device_code", "")), True
    else:
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    return token_response(identity, user, scope, issuer_base, mfa=mfa)


def check_consent(identity: Identity) -> None:
    """Refuse every grant while the app has no consent in the tenant (AADSTS65001)."""
    if identity.require_consent:
        raise OAuthError(
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{identity.client_id}'. Send an interactive authorization request for this user and resource.",
        )


def check_client(identity: Identity, form: dict[str, str]) -> None:
    """Refuse an unknown client id, a missing secret where one is required, or a wrong secret."""
    client_id = form.get("client_id", "")
    if client_id != identity.client_id:
        raise OAuthError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{identity.tenant_id}'.",
        )
    secret = form.get("client_secret")
    if secret is None and identity.require_client_secret:
        raise OAuthError(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            status=401,
        )
    if secret is not None and not secrets.compare_digest(secret, identity.client_secret):
        raise OAuthError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID, for a secret added to app "
            f"'{identity.client_id}'.",
            status=401,
        )


def check_scope(scope: str) -> str:
    """Refuse a scope outside the API; return the scopes asked (without the OpenID ones)."""
    wanted = [s for s in scope.split() if s not in ("openid", "profile", "offline_access")]
    if not wanted or any(not s.startswith(API_RESOURCE + "/") for s in wanted):
        raise OAuthError(
            "invalid_scope",
            70011,
            f"The provided request must include a 'scope' input parameter for {API_RESOURCE}; "
            f"got '{scope}'. Use {API_SCOPE} or {API_RESOURCE}/.default.",
        )
    # Echo what was asked (Entra expands .default into the granted scopes; echoing it keeps
    # msal's cache lookups for the same request scope working, which is what clients rely on).
    return " ".join(wanted)


def check_password(identity: Identity, username: str, password: str) -> User:
    """The user of a password grant, or ``invalid_grant`` (AADSTS50126)."""
    user = identity.user_by_name(username)
    if user is None or not secrets.compare_digest(user.password, password):
        raise OAuthError(
            "invalid_grant", 50126, "Error validating credentials due to invalid username or password."
        )
    return user


def token_response(
    identity: Identity, user: User, scope: str, issuer_base: str, *, mfa: bool
) -> dict[str, Any]:
    """
    A v2.0 token response for ``user``: a new access token, a new refresh token, the id token.

    :param identity: the tenant.
    :param user: the signed-in user.
    :param scope: the scopes granted.
    :param issuer_base: ``https://host:port`` (for the id token's ``iss``).
    :param mfa: whether the sign-in did multi-factor authentication (the refresh token keeps it).
    """
    now = int(time.time())
    ttl = identity.token_ttl
    access = new_access_token(identity.access_token_bytes, _access_claims(identity, user, now, ttl))
    # A rotated refresh token keeps the strength of the sign-in it descends from.
    refresh = identity.issue_refresh_token(user.username, mfa=mfa)
    identity.issue_access_token(access, user.username, ttl)
    claims = {
        "aud": identity.client_id,
        "iss": f"{issuer_base}/{identity.tenant_id}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": user.display_name,
        "oid": user.object_id,
        "preferred_username": user.username,
        "sub": user.object_id,
        "tid": identity.tenant_id,
        "ver": "2.0",
    }
    info = {"uid": user.object_id, "utid": identity.tenant_id}
    return {
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": ttl,
        "ext_expires_in": ttl,
        "access_token": access,
        "refresh_token": refresh,
        "id_token": unsigned_jwt(claims),
        "client_info": b64url(json.dumps(info).encode()),
    }


def start_device_flow(identity: Identity, form: dict[str, str], verification_uri: str) -> dict[str, Any]:
    """Answer ``/{tenant}/oauth2/v2.0/devicecode``: a new pending device code."""
    client_id = form.get("client_id", "")
    if client_id != identity.client_id:
        raise OAuthError(
            "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found."
        )
    check_scope(form.get("scope", ""))
    code = identity.new_device_code(client_id)
    return {
        "user_code": code.user_code,
        "device_code": code.device_code,
        "verification_uri": verification_uri,
        "expires_in": identity.device_code_ttl,
        "interval": identity.device_code_interval,
        "message": (
            f"To sign in, use a web browser to open the page {verification_uri} and enter the code "
            f"{code.user_code} to authenticate."
        ),
    }


def _access_claims(identity: Identity, user: User, now: int, ttl: int) -> dict[str, Any] | None:
    """The claims of a JWT-shaped access token (Entra's v1.0 ones), or ``None`` for the default token."""
    if not identity.access_token_bytes:
        return None
    return {
        "aud": API_RESOURCE,
        "iss": f"https://sts.windows.net/{identity.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "appid": identity.client_id,
        "name": user.display_name,
        "oid": user.object_id,
        "scp": "user_impersonation",
        "sub": user.object_id,
        "tid": identity.tenant_id,
        "upn": user.username,
        "ver": "1.0",
    }
