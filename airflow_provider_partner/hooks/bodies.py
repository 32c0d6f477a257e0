"""
The server's response bodies as JSON: one decoder for pages and single objects, every failure named.

Whatever a server or a proxy sends (HTML, a body cut off, JSON nested deeper than a decoder
can follow), the caller gets a :class:`~.errors.PartnerCenterResponseError` that says what was
requested, what came back and what to do; never a bare ``ValueError`` or ``RecursionError``.

Imports nothing heavy (DAG files import the hook at parse time): ``orjson`` loads on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_partner.errors import PartnerCenterResponseError
from airflow_provider_partner.hooks.urls import redact_url

if TYPE_CHECKING:
    import requests

__all__ = ["decode_json", "json_object", "request_id_of", "snippet"]


def snippet(text: str | bytes, limit: int = 200) -> str:
    """
    ``text`` for a message: decoded leniently, whitespace collapsed, at most ``limit`` chars.

    :param text: a body or a part of one.
    :param limit: the most chars kept (``...`` marks a cut).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(text.split())
    return flat[:limit] + ("..." if len(flat) > limit else "")


def _loads(body: str | bytes) -> Any:
    """
    Decode with orjson (3-4x faster than ``json``: the biggest cost of paging), else ``json``.

    ``json`` is the fallback for what orjson refuses but JSON text may be: UTF-16/32 bodies, a
    UTF-8 BOM, ``NaN``/``Infinity``; its error is the one reported when both fail. Unlike ``json``,
    orjson reads integers beyond 64 bits as floats (no Partner Center field holds one).
    """
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def decode_json(body: str | bytes, content_type: str | None, where: Callable[[], str]) -> Any:
    """
    The decoded JSON of a server's response body.

    :param body: the body (bytes are decoded as JSON text: UTF-8/16/32).
    :param content_type: the response's ``Content-Type`` (JSON media types only).
    :param where: what was requested, for messages (called only on failure: the hot path skips it).
    :raises PartnerCenterResponseError: not JSON, invalid JSON, or nested deeper than a decoder follows.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        raise PartnerCenterResponseError(
            f"Expected JSON for {where()} but got Content-Type {content_type or 'none'!r}; "
            f"a proxy or gateway may have answered instead of the API. Body starts: {snippet(body)!r}"
        )
    try:
        return _loads(body)
    except RecursionError:
        raise PartnerCenterResponseError(
            f"The JSON of {where()} is nested deeper than a decoder can follow ({len(body)} chars, "
            f"starting {snippet(body, 60)!r}); no Partner Center response is. A proxy or server on the "
            "way to the API is misbehaving: check the connection host and proxies, and report the "
            "MS-RequestId to Microsoft if it is the API."
        ) from None
    except ValueError as err:  # UnicodeDecodeError included
        raise PartnerCenterResponseError(
            f"Invalid JSON in {where()}: {err} ({len(body)} chars received; the response was probably "
            f"cut off). Body ends: {snippet(body[-200:])!r}. Run the task again; if this persists, a "
            "proxy on the way to the API is altering responses."
        ) from None


def request_id_of(response: requests.Response) -> str | None:
    """The ``MS-RequestId`` sent for ``response``, else the server's ``Request-ID``."""
    sent = response.request.headers.get("MS-RequestId") if response.request is not None else None
    return sent or response.headers.get("Request-ID")


def json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """
    The JSON object a single-object call returned (a referral read, updated or created).

    :param response: the successful response.
    :param what: what was asked for, for messages (``"referral <id>"``).
    :raises PartnerCenterResponseError: the body is not one JSON object (see :func:`decode_json`).
    """

    def where() -> str:
        method = response.request.method if response.request else ""
        return f"{what} ({method} {redact_url(response.url or '')}, MS-RequestId={request_id_of(response)})"

    data = decode_json(response.content, response.headers.get("Content-Type"), where)
    if not isinstance(data, dict):
        raise PartnerCenterResponseError(f"Expected a JSON object for {where()}, got {type(data).__name__}.")
    return data
