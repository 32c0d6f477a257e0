"""Response builders shared by the API handlers: JSON, OData errors, 401s and canned faults."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (UTF-8, compact)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, headers=headers, content_type="application/json; charset=utf-8")


def odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An OData-style error: ``{"error": {"code", "message"}}``."""
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def unauthorized(why: str) -> Response:
    """401 with ``WWW-Authenticate: Bearer error="invalid_token", error_description=...``."""
    quoted = why.replace('"', "'")
    return odata_error(
        401,
        "InvalidAuthenticationToken",
        why,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'},
    )


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
