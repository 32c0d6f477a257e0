"""Response builders shared by the API handlers: JSON, OData errors, 401s, canned faults, rejections."""

from __future__ import annotations

import json
from typing import Any

import orjson
from werkzeug.wrappers import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """
    A JSON response (UTF-8, compact).

    orjson, not ``json.dumps``: a page of 100 referrals (~350 KB) encodes in 0.15 ms instead of
    2.4, and that work is the emulator's, which the real service does on its own machines; with
    eight slices in flight it held the emulator's one GIL in the benchmarks' latency scenario.
    """
    return Response(
        orjson.dumps(body), status=status, headers=headers, content_type="application/json; charset=utf-8"
    )


class RejectError(Exception):
    """Answer the request with this response (auth failures, faults, an unknown tenant)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


#: Error body shapes of the API (the ``error_format`` setting).
ERROR_FORMATS = ("partner-center", "odata")
#: The ``source`` of every error body in the Partner Center shape (the service's value is unknown).
ERROR_SOURCE = "PartnerCenterEmulator"


def odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """
    An API error; its body is made by :func:`error_body` when the response leaves the app.

    The handlers do not know the ``error_format`` setting: the code and message travel on the
    response (``api_error``) and the application renders them once, in the chosen shape.
    """
    response = json_response(error_body("odata", code, message), status, headers)
    response.api_error = (code, message)  # type: ignore[attr-defined]
    return response


def error_body(error_format: str, code: str, message: str) -> dict[str, Any]:
    """
    The body of an API error in one of :data:`ERROR_FORMATS`.

    ``partner-center``: ``{"code", "description", "data", "source"}``, the documented shape of
    Partner Center API errors; ``odata``: ``{"error": {"code", "message"}}`` (OData JSON).
    """
    if error_format == "odata":
        return {"error": {"code": code, "message": message}}
    return {"code": code, "description": message, "data": [], "source": ERROR_SOURCE}


def render_error(response: Response, error_format: str) -> None:
    """Rewrite the body of an API error made by :func:`odata_error` into ``error_format``."""
    made = getattr(response, "api_error", None)
    if made is not None and error_format != "odata":
        response.set_data(
            json.dumps(error_body(error_format, *made), ensure_ascii=False, separators=(",", ":"))
        )


def unauthorized(why: str) -> Response:
    """401 with ``WWW-Authenticate: Bearer error="invalid_token", error_description=...``."""
    quoted = why.replace('"', "'")
    return odata_error(
        401,
        "InvalidAuthenticationToken",
        why,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'},
    )


def truncate(response: Response) -> Response:
    """Cut the body of ``response`` in half (the ``truncated`` fault; ``Content-Length`` follows)."""
    data = response.get_data()
    response.set_data(data[: max(1, len(data) // 2)])
    return response


def fault_response(kind: str, retry_after: int) -> Response | None:
    """The whole answer of a fault that replaces the response, or ``None`` for the other kinds."""
    if kind in ("429", "503"):
        code = "TooManyRequests" if kind == "429" else "ServiceUnavailable"
        return odata_error(
            int(kind), code, "Injected fault: try again later.", {"Retry-After": str(retry_after)}
        )
    if kind == "500":
        return odata_error(500, "InternalServerError", "Injected fault: internal server error.")
    if kind == "token_expired":
        return unauthorized("The access token has expired.")
    if kind == "html":
        return Response(
            "<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
            "<body><h1>The service is temporarily unavailable.</h1></body></html>",
            status=200,
            content_type="text/html; charset=utf-8",
        )
    return None
