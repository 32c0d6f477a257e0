"""
The WSGI application: Entra ID endpoints, the Referrals API, faults, and the admin endpoints.

Every API and identity response carries ``MS-CorrelationId`` (the request's, or a new one),
``MS-RequestId`` and ``Request-ID`` (the request's ``MS-RequestId``, or a new one).
"""

from __future__ import annotations

import _socket
import json
import os
import select
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from partner_center_emulator.admin import handle_admin
from partner_center_emulator.entra_errors import OAuthError
from partner_center_emulator.identity import User
from partner_center_emulator.paging import (
    Cursor,
    SnapshotCache,
    decode_token,
    encode_token,
    page_payload,
    resume_offset,
)
from partner_center_emulator.query import ODataError, Query, parse_query, parse_select
from partner_center_emulator.responses import (
    fault_response,
    json_response,
    odata_error,
    render_error,
    unauthorized,
)
from partner_center_emulator.store import QueryCancelledError, on_team
from partner_center_emulator.writes import StoreError

if TYPE_CHECKING:
    from partner_center_emulator.server import Emulator

REFERRALS = "/v1.0/engagements/referrals"
#: The two readings of $top (the top_mode setting; see EmulatorApp._window).
TOP_MODES = ("total", "page_size")
_GRANT_NAMES = {
    "refresh_token": "refresh_token",
    "password": "password",
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
}


@dataclass
class Settings:
    """Switches that ``Emulator.configure`` changes while it runs."""

    page_size: int = 100
    latency_per_page: float = 0.0
    doc_style_next_link: bool = False
    foreign_next_link_host: str | None = None
    retry_after: int = 1
    slow_seconds: float = 1.0
    #: What $top means: "total" (the connector contract) or "page_size" (the docs page).
    top_mode: str = "total"
    #: Shape of API error bodies: "partner-center" (documented) or "odata" (see responses.py).
    error_format: str = "partner-center"
    #: Answer ``Connection: close`` and close the connection after every API and identity response:
    #: each request then pays a new TLS handshake (the benchmarks' "connection-per-request" server).
    close_connections: bool = False


#: How often a waiting or filtering request looks whether its client is still there, seconds.
_WATCH_INTERVAL = 0.05


class _AbandonedError(Exception):
    """The client went away (or the emulator is stopping): drop the request without an answer."""


def client_gone(environ: dict[str, Any]) -> bool:
    """
    Whether the client of this request has closed its connection.

    While a request is being worked on, a keep-alive client sends nothing (``requests`` does not
    pipeline), so a readable socket means a FIN (or a reset): a peek at the raw TCP bytes,
    beneath TLS, tells which without consuming anything.
    """
    sock = environ.get("emulator.socket")
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        # _socket.socket.recv: the raw TCP stream, not SSLSocket.recv (which refuses flags).
        return _socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class _RejectError(Exception):
    """Answer the request with this response (auth failures, faults)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class EmulatorApp:
    """
    The WSGI callable of one emulator.

    :param emulator: the owning emulator (state, settings and admin actions).
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.snapshots = SnapshotCache()
        self.url_map = Map(
            [
                Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="openid", methods=["GET"]),
                Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
                Rule("/<tenant>/oauth2/v2.0/devicecode", endpoint="devicecode", methods=["POST"]),
                Rule("/common/userrealm/<path:username>", endpoint="userrealm", methods=["GET"]),
                Rule("/devicelogin", endpoint="devicelogin", methods=["GET"]),
                Rule(REFERRALS, endpoint="list", methods=["GET"]),
                Rule(REFERRALS, endpoint="create", methods=["POST"]),
                Rule(f"{REFERRALS}/<referral_id>", endpoint="get", methods=["GET"]),
                Rule(f"{REFERRALS}/<referral_id>", endpoint="update", methods=["PATCH"]),
                Rule("/_emulator/<action>", endpoint="admin", methods=["GET", "POST"]),
            ],
            strict_slashes=False,
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route one request; add the correlation headers to what it answers."""
        correlation = request.headers.get("MS-CorrelationId") or str(uuid.uuid4())
        request_id = request.headers.get("MS-RequestId") or str(uuid.uuid4())
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as err:
            status = err.code or 404
            code = "MethodNotAllowed" if status == 405 else "NotFound"
            response = odata_error(status, code, f"No such endpoint: {request.method} {request.path}")
        else:
            if endpoint == "admin":
                return handle_admin(self.emu, args["action"], request)
            self.emu.counters.request(endpoint)
            try:
                response = getattr(self, f"on_{endpoint}")(request, **args)
            except _RejectError as reject:
                response = reject.response
            except ODataError as err:
                response = odata_error(400, err.code, err.message)
            except StoreError as err:
                response = odata_error(err.status, err.code, err.message)
            except QueryCancelledError:
                self.emu.counters.abandon()
                return Response(status=499, headers={"Connection": "close"})
            except _AbandonedError:
                # Nobody reads the answer; close the connection (a client that is still there
                # sees it closed, as after a server-side timeout).
                return Response(status=499, headers={"Connection": "close"})
        render_error(response, self.emu.settings.error_format)
        response.headers["MS-CorrelationId"] = correlation
        response.headers["MS-RequestId"] = request_id
        response.headers["Request-ID"] = request_id
        if self.emu.settings.close_connections:
            response.headers["Connection"] = "close"
        return response

    # -- identity ---------------------------------------------------------------------------

    def _check_tenant(self, tenant: str) -> None:
        if tenant != self.emu.identity.tenant_id:
            error = OAuthError(
                "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check the tenant id of the authority."
            )
            raise _RejectError(json_response(error.body(), 400))

    def on_openid(self, request: Request, tenant: str) -> Response:
        self._check_tenant(tenant)
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

    def on_token(self, request: Request, tenant: str) -> Response:
        self._check_tenant(tenant)
        form = {k: request.form.get(k, "") for k in request.form}
        try:
            body = self.emu.identity.token(form, f"https://{request.host}")
        except OAuthError as err:
            return json_response(err.body(), err.status)
        self.emu.counters.grant(_GRANT_NAMES[form["grant_type"]])
        self.emu.on_tokens_changed()
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def on_devicecode(self, request: Request, tenant: str) -> Response:
        self._check_tenant(tenant)
        form = {k: request.form.get(k, "") for k in request.form}
        try:
            body = self.emu.identity.start_device_flow(form, f"https://{request.host}/devicelogin")
        except OAuthError as err:
            return json_response(err.body(), err.status)
        return json_response(body)

    def on_userrealm(self, request: Request, username: str) -> Response:
        # msal asks this (without the port!) before a password grant; "Managed" means "no ADFS".
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

    def on_devicelogin(self, request: Request) -> Response:
        return Response(
            "<html><body><p>Partner Center emulator: approve device codes with "
            "Emulator.approve_device_code(user_code, username) or POST /_emulator/approve.</p></body></html>",
            content_type="text/html; charset=utf-8",
        )

    # -- API: auth and faults ---------------------------------------------------------------

    def _authorize(self, request: Request) -> User:
        header = request.headers.get("Authorization")
        if header:
            self.emu.counters.auth_header(request.host)
        fault = self.emu.faults.next()
        if fault is not None:
            self.emu.counters.fault(fault)
            self._inject(fault, request)
        if not header or not header.startswith("Bearer "):
            raise _RejectError(unauthorized("No access token was sent: send Authorization: Bearer <token>."))
        user, why = self.emu.identity.check_access_token(header[len("Bearer ") :].strip())
        if user is None:
            raise _RejectError(unauthorized(why))
        if user.role is None:
            raise _RejectError(
                odata_error(
                    403,
                    "Forbidden",
                    f"User {user.username} is missing the Referral Admin or Referral User role "
                    "required to access referrals; ask a Partner Center global admin to assign one.",
                )
            )
        return user

    def _inject(self, fault: str, request: Request) -> None:
        response = fault_response(fault, self.emu.settings.retry_after)
        if response is not None:
            raise _RejectError(response)
        if fault == "reset":
            connection = request.environ.get("emulator.socket")
            if connection is not None:
                # SO_LINGER 0 and a real close of the connection: the kernel sends a TCP RST, so
                # the client sees "connection reset" (shutdown() would send a clean FIN). The
                # close is a dup2() of an unconnected socket over the descriptor: the server
                # still owns a valid descriptor, and its own close later fails harmlessly with
                # ENOTCONN instead of EBADF (which would kill the worker thread).
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                with socket.socket(connection.family, socket.SOCK_STREAM) as placeholder:
                    os.dup2(placeholder.fileno(), connection.fileno())
            raise ConnectionResetError("injected connection reset")
        if fault == "slow":
            self._pause(request, self.emu.settings.slow_seconds)
        elif fault in ("truncated", "malformed"):
            # Cut or broken after the handler made its answer (see _faulty / on_list).
            request.environ["emulator.fault"] = fault

    def _pause(self, request: Request, seconds: float) -> None:
        """
        Wait ``seconds`` (latency, slow faults), but no longer than the client or the server lives.

        A client that gave up, or ``stop()``, ends the wait: the request is abandoned, so neither
        a worker thread nor ``stop()`` waits out a delay nobody will read.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.emu.stopping.wait(min(left, _WATCH_INTERVAL)):
                raise _AbandonedError
            if client_gone(request.environ):
                self.emu.counters.abandon()
                raise _AbandonedError

    # -- API: endpoints ---------------------------------------------------------------------

    def _page_size(self, request: Request) -> tuple[int, str | None]:
        limit = self.emu.settings.page_size
        for part in request.headers.get("Prefer", "").split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
                size = min(int(value), limit)
                return size, f"odata.maxpagesize={size}"
        return limit, None

    def _window(self, matched: list[str], query: Query, size: int) -> tuple[range, int]:
        """
        The positions in ``matched`` a query serves and its page size, under the ``top_mode`` setting.

        Positions, not a copy: a page of a query over 200,000 referrals must not copy 200,000 ids.

        ``total`` (the connector: "total number of entries to retrieve"): ``$top`` cuts the whole
        result, pages are the server's size. ``page_size`` (the docs page: a page size, at most
        100): ``$top`` is the size of every page, and paging goes on over every match.
        """
        start = min(query.skip, len(matched))
        if query.top is None:
            return range(start, len(matched)), size
        if self.emu.settings.top_mode == "total":
            return range(start, min(len(matched), start + query.top)), size
        if query.top == 0:
            return range(start, start), size
        return range(start, len(matched)), min(size, query.top)

    def on_list(self, request: Request) -> Response:
        user = self._authorize(request)
        email = user.email if user.role == "Referral User" else None
        params = {k: request.args.get(k, "") for k in request.args}
        size, applied = self._page_size(request)
        token = params.get("$skiptoken")
        if token:
            # The token alone recovers the query: other options sent beside it are ignored.
            cursor = decode_token(token)
            if cursor.user != user.username:
                raise ODataError("The $skiptoken was issued to another user.", code="InvalidSkipToken")
            query = cursor.query
            matched = self.snapshots.get(cursor.snapshot)
            key, offset = cursor.snapshot, cursor.offset
            if matched is None:
                matched = self.emu.store.select_ids(query, email, lambda: client_gone(request.environ))
                key = self.snapshots.put(matched)
                served, size = self._window(matched, query, size)
                offset = resume_offset(matched[served.start : served.stop], cursor)
            else:
                served, size = self._window(matched, query, size)
        else:
            query = parse_query(params)
            matched = self.emu.store.select_ids(query, email, lambda: client_gone(request.environ))
            served, size = self._window(matched, query, size)
            key, offset = "", 0
        select = parse_select(query.select)
        page_ids = matched[served.start + offset : min(served.start + offset + size, served.stop)]
        body: dict[str, Any] = {"@odata.context": f"https://{request.host}/v1.0/$metadata#Referrals"}
        if query.count:
            # The connector: "a count of the matching results", whatever $skip/$top cut.
            body["@odata.count"] = len(matched)
        body["value"] = page_payload(self.emu.store.get_many(page_ids), select)
        if offset + size < len(served):
            key = key or self.snapshots.put(matched)
            body["@odata.nextLink"] = self._next_link(
                request, Cursor(key, offset + size, query, user.username, page_ids[-1] if page_ids else None)
            )
        if self.emu.settings.latency_per_page:
            self._pause(request, self.emu.settings.latency_per_page)
        headers = {"Preference-Applied": applied} if applied else None
        fault = request.environ.get("emulator.fault")
        if fault == "malformed":
            body.pop("value")
            body["values"] = "not a list"
            return json_response(body, headers=headers)
        response = json_response(body, headers=headers)
        if fault == "truncated":
            data = response.get_data()
            response.set_data(data[: max(1, len(data) // 2)])
            return response
        self.emu.counters.page()
        return response

    def _next_link(self, request: Request, cursor: Cursor) -> str:
        token = encode_token(cursor)
        settings = self.emu.settings
        if settings.foreign_next_link_host:
            return f"https://{settings.foreign_next_link_host}{REFERRALS}?$skiptoken={token}"
        if settings.doc_style_next_link:
            return f"http://{request.host}/v1.0/referrals?$skiptoken={token}"
        return f"https://{request.host}{REFERRALS}?$skiptoken={token}"

    def on_get(self, request: Request, referral_id: str) -> Response:
        user = self._authorize(request)
        record = self.emu.store.get(referral_id)
        if record is not None and user.role == "Referral User" and not on_team(record, user.email):
            record = None
        if record is None:
            return odata_error(404, "NotFound", f"Referral {referral_id} was not found.")
        for name in request.args:
            if name.startswith("$") and name != "$select":
                raise ODataError(f"The query option '{name}' is not supported on one referral; use $select.")
        select = parse_select(request.args.get("$select"))
        body = page_payload([record], select)[0]
        return self._faulty(request, self._single(request, body, record["eTag"]))

    def _single(self, request: Request, record: dict[str, Any], etag: str, status: int = 200) -> Response:
        """One referral as the contract returns it: ``@odata.context`` first, ``ETag`` header."""
        body = {"@odata.context": f"https://{request.host}/v1.0/$metadata#Referrals/$entity", **record}
        return json_response(body, status, {"ETag": etag})

    def _faulty(self, request: Request, response: Response) -> Response:
        fault = request.environ.get("emulator.fault")
        if fault == "malformed":
            response.set_data(b'{"id": ')
        elif fault == "truncated":
            data = response.get_data()
            response.set_data(data[: max(1, len(data) // 2)])
        return response

    def _json_body(self, request: Request) -> Any:
        try:
            return json.loads(request.get_data(as_text=True) or "null")
        except ValueError as err:
            raise StoreError(400, "BadRequest", f"The request body is not valid JSON: {err}") from None

    def on_update(self, request: Request, referral_id: str) -> Response:
        user = self._authorize(request)
        if user.role == "Referral User":
            current = self.emu.store.get(referral_id)
            if current is None or not on_team(current, user.email):
                return odata_error(404, "NotFound", f"Referral {referral_id} was not found.")
        updated = self.emu.store.update(
            referral_id, self._json_body(request), request.headers.get("If-Match")
        )
        if "return=representation" in request.headers.get("Prefer", ""):
            return self._faulty(request, self._single(request, updated, updated["eTag"]))
        return Response(status=204, headers={"ETag": updated["eTag"]})

    def on_create(self, request: Request) -> Response:
        self._authorize(request)
        created = self.emu.store.create(self._json_body(request))
        # The contract: 200 with the created Referral (not 201 + Location).
        return self._faulty(request, self._single(request, created, created["eTag"]))
