"""
The Entra ID endpoints of the WSGI application: discovery, token, device code, user realm.

Each handler takes the emulator, the request and the route's arguments, and answers as Entra
does; the grants themselves are :mod:`.grants`' (through :class:`~.identity.Identity`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from partner_center_emulator.entra_errors import OAuthError
from partner_center_emulator.responses import RejectError, json_response

if TYPE_CHECKING:
    from partner_center_emulator.server import Emulator

_GRANT_NAMES = {
    "refresh_token": "refresh_token",
    "password": "password",
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
}


def check_tenant(emu: Emulator, tenant: str) -> None:
    """Refuse another tenant than the emulator's (400 AADSTS90002)."""
    if tenant != emu.identity.tenant_id:
        error = OAuthError(
            "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check the tenant id of the authority."
        )
        raise RejectError(json_response(error.body(), 400))


def openid(emu: Emulator, request: Request, tenant: str) -> Response:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``: the https endpoints."""
    check_tenant(emu, tenant)
    base = f"https://{request.host}/{tenant}"
    return json_response(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }
    )


def _form_call(
    emu: Emulator, request: Request, tenant: str, call: Callable[[dict[str, str]], dict[str, Any]]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The form of a POST and what ``call(form)`` answers; an Entra error answers the request instead."""
    check_tenant(emu, tenant)
    form = {k: request.form.get(k, "") for k in request.form}
    try:
        return form, call(form)
    except OAuthError as err:
        raise RejectError(json_response(err.body(), err.status)) from None


def token(emu: Emulator, request: Request, tenant: str) -> Response:
    """``POST /{tenant}/oauth2/v2.0/token``: a grant, counted; the refresh tokens persisted."""
    form, body = _form_call(emu, request, tenant, lambda f: emu.identity.token(f, f"https://{request.host}"))
    emu.counters.grant(_GRANT_NAMES[form["grant_type"]])
    emu.on_tokens_changed()
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def devicecode(emu: Emulator, request: Request, tenant: str) -> Response:
    """``POST /{tenant}/oauth2/v2.0/devicecode``: a new pending device code."""
    verification_uri = f"https://{request.host}/devicelogin"
    _, body = _form_call(emu, request, tenant, lambda f: emu.identity.start_device_flow(f, verification_uri))
    return json_response(body)


def userrealm(emu: Emulator, request: Request, username: str) -> Response:
    """``GET /common/userrealm/{user}``: msal asks this (without the port!) before a password grant."""
    # "Managed" means "no ADFS".
    domain = username.rsplit("@", 1)[-1]
    return json_response(
        {
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
    )


def devicelogin(emu: Emulator, request: Request) -> Response:
    """``GET /devicelogin``: where a person would enter the code; says how the emulator approves."""
    return Response(
        "<html><body><p>Partner Center emulator: approve device codes with "
        "Emulator.approve_device_code(user_code, username) or POST /_emulator/approve.</p></body></html>",
        content_type="text/html; charset=utf-8",
    )
