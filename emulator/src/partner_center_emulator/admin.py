"""
The admin HTTP endpoints under ``/_emulator/`` (for a CLI-started emulator in another process).

They mirror the Python methods of :class:`~partner_center_emulator.server.Emulator`.
Every one (``info`` too: it holds the client secret, a refresh token and a password) needs
``Authorization: Bearer <admin token>``, the token the emulator generated at start and only its
starter knows (``Emulator.admin_token``; the CLI prints it in its JSON line as ``admin_token``).
A loopback address alone is no guard: any local user or process could otherwise read the secrets.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from partner_center_emulator.server import Emulator

_GET = frozenset({"info", "stats", "handshakes", "referrals", "users", "token_counts", "issued_tokens"})


def _body(request: Request) -> Any:
    text = request.get_data(as_text=True)
    return json.loads(text) if text.strip() else {}


def _reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def _authorized(emu: Emulator, request: Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: the answer's timing must not reveal how much of a guess matched.
    # An empty token never matches, even on an emulator not started yet (its token is still "").
    return (
        bool(emu.admin_token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), emu.admin_token.encode())
    )


def _unauthorized() -> Response:
    response = _reply({"error": "the admin endpoints need Authorization: Bearer <admin_token>"}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="partner-center-emulator admin"'
    return response


def handle_admin(emu: Emulator, action: str, request: Request) -> Response:
    """
    Run one admin action (401 without the admin token, before anything else is looked at).

    GET ``info``, ``stats``, ``handshakes``, ``users``, ``referrals``, ``token_counts``,
    ``issued_tokens``; POST ``configure`` (settings object),
    ``script_faults`` (list of kinds, or ``{"faults": [...]}``), ``release_incoming``
    (``{"n": 3, ...overrides}``), ``approve`` (``{"user_code", "username"}``), ``reset_stats``,
    ``expire_access_tokens``, ``age_refresh_tokens`` (``{"days"}``), ``issue_refresh_token``
    (``{"username"}``).
    """
    if not _authorized(emu, request):
        return _unauthorized()
    if request.method == "GET" and action not in _GET:
        return _reply({"error": f"use POST for /_emulator/{action}"}, 405)
    try:
        body = _body(request) if request.method == "POST" else {}
        if action == "info":
            return _reply(emu.info)
        if action == "stats":
            return _reply(emu.stats())
        if action == "handshakes":
            return _reply({"handshakes": emu.handshakes()})
        if action == "users":
            return _reply(emu.users)
        if action == "referrals":
            return _reply(emu.referrals())
        if action == "token_counts":
            return _reply(emu.token_counts())
        if action == "issued_tokens":
            return _reply(emu.issued_tokens())
        if action == "configure":
            emu.configure(**body)
        elif action == "script_faults":
            emu.script_faults(body["faults"] if isinstance(body, dict) else body)
        elif action == "release_incoming":
            n = int(body.pop("n", 1))
            return _reply(emu.release_incoming(n, **body))
        elif action == "approve":
            emu.approve_device_code(body["user_code"], body["username"])
        elif action == "reset_stats":
            emu.reset_stats()
        elif action == "expire_access_tokens":
            emu.expire_access_tokens()
        elif action == "age_refresh_tokens":
            return _reply({"aged": emu.age_refresh_tokens(float(body["days"]))})
        elif action == "issue_refresh_token":
            return _reply({"refresh_token": emu.issue_refresh_token(body["username"])})
        else:
            return _reply({"error": f"unknown admin action {action!r}"}, 404)
    except (ValueError, KeyError, TypeError) as err:
        return _reply({"error": f"{type(err).__name__}: {err}"}, 400)
    return _reply({"ok": True})
