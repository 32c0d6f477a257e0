"""
The WSGI application: Entra ID endpoints, the Referrals API, faults, and the admin endpoints.

Every API and identity response carries ``MS-CorrelationId`` (the request's, or a new one),
``MS-RequestId`` and ``Request-ID`` (the request's ``MS-RequestId``, or a new one).
The Entra ID endpoints are :mod:`.entra_routes`'; the list endpoint is :mod:`.listing`'; the
admin endpoints are :mod:`.admin`'s; this module routes, authorizes and injects faults.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from partner_center_emulator import entra_routes
from partner_center_emulator.admin import handle_admin
from partner_center_emulator.identity import User
from partner_center_emulator.listing import REFERRALS, list_page
from partner_center_emulator.paging import SnapshotCache, page_payload
from partner_center_emulator.query import ODataError, parse_select
from partner_center_emulator.responses import (
    RejectError,
    fault_response,
    json_response,
    odata_error,
    render_error,
    truncate,
    unauthorized,
)
from partner_center_emulator.settings import TOP_MODES, Settings
from partner_center_emulator.store import QueryCancelledError, on_team
from partner_center_emulator.watch import AbandonedError, client_gone, pause, reset_connection
from partner_center_emulator.writes import StoreError

if TYPE_CHECKING:
    from partner_center_emulator.server import Emulator

# Imported from here before they moved out: kept importable.
__all__ = ["REFERRALS", "TOP_MODES", "EmulatorApp", "Settings", "client_gone"]


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
        #: endpoint -> handler(request, **route arguments)
        self.handlers: dict[str, Callable[..., Response]] = {
            "openid": partial(entra_routes.openid, emulator),
            "token": partial(entra_routes.token, emulator),
            "devicecode": partial(entra_routes.devicecode, emulator),
            "userrealm": partial(entra_routes.userrealm, emulator),
            "devicelogin": partial(entra_routes.devicelogin, emulator),
            "list": self.on_list,
            "create": self.on_create,
            "get": self.on_get,
            "update": self.on_update,
        }

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
                response = self.handlers[endpoint](request, **args)
            except RejectError as reject:
                response = reject.response
            except ODataError as err:
                response = odata_error(400, err.code, err.message)
            except StoreError as err:
                response = odata_error(err.status, err.code, err.message)
            except QueryCancelledError:
                self.emu.counters.abandon()
                return Response(status=499, headers={"Connection": "close"})
            except AbandonedError:
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
            raise RejectError(unauthorized("No access token was sent: send Authorization: Bearer <token>."))
        user, why = self.emu.identity.check_access_token(header[len("Bearer ") :].strip())
        if user is None:
            raise RejectError(unauthorized(why))
        if user.role is None:
            raise RejectError(
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
            raise RejectError(response)
        if fault == "reset":
            reset_connection(request.environ.get("emulator.socket"))
        if fault == "slow":
            pause(request.environ, self.emu.settings.slow_seconds, self.emu.stopping, self.emu.counters)
        elif fault in ("truncated", "malformed"):
            # Cut or broken after the handler made its answer (see _faulty, listing.list_page).
            request.environ["emulator.fault"] = fault

    # -- API: endpoints ---------------------------------------------------------------------

    def on_list(self, request: Request) -> Response:
        return list_page(self.emu, self.snapshots, request, self._authorize(request))

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
            truncate(response)
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
