"""
The list endpoint, ``GET /v1.0/engagements/referrals``: a page of a query, and its nextLink.

A query's first page takes a snapshot of its matching ids (:mod:`.paging`); later pages, named by
their ``$skiptoken`` alone, are slices of it. The ``top_mode`` and ``page_size`` settings and
``Prefer: odata.maxpagesize`` decide how the matches are cut into pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

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
from partner_center_emulator.responses import json_response, truncate
from partner_center_emulator.watch import client_gone, pause

if TYPE_CHECKING:
    from partner_center_emulator.server import Emulator
    from partner_center_emulator.settings import Settings

REFERRALS = "/v1.0/engagements/referrals"


@dataclass
class _Matches:
    """A query's matching ids, the positions it serves, its page size, and where this page starts."""

    query: Query
    matched: list[str]
    served: range
    size: int
    snapshot: str
    offset: int


def page_size(request: Request, limit: int) -> tuple[int, str | None]:
    """The page size (``Prefer: odata.maxpagesize`` can only lower ``limit``) and what was applied."""
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
            size = min(int(value), limit)
            return size, f"odata.maxpagesize={size}"
    return limit, None


def window(matched: list[str], query: Query, size: int, top_mode: str) -> tuple[range, int]:
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
    if top_mode == "total":
        return range(start, min(len(matched), start + query.top)), size
    if query.top == 0:
        return range(start, start), size
    return range(start, len(matched)), min(size, query.top)


def next_link(request: Request, cursor: Cursor, settings: Settings) -> str:
    """The ``@odata.nextLink`` of a page: this endpoint, or a doc-style or foreign one by setting."""
    token = encode_token(cursor)
    if settings.foreign_next_link_host:
        return f"https://{settings.foreign_next_link_host}{REFERRALS}?$skiptoken={token}"
    if settings.doc_style_next_link:
        return f"http://{request.host}/v1.0/referrals?$skiptoken={token}"
    return f"https://{request.host}{REFERRALS}?$skiptoken={token}"


def _matches(emu: Emulator, snapshots: SnapshotCache, request: Request, user: User, size: int) -> _Matches:
    """The query of this request (its options, or its ``$skiptoken``'s) and its matching ids."""
    email = user.email if user.role == "Referral User" else None
    params = {k: request.args.get(k, "") for k in request.args}
    top_mode = emu.settings.top_mode
    token = params.get("$skiptoken")
    if not token:
        query = parse_query(params)
        matched = emu.store.select_ids(query, email, lambda: client_gone(request.environ))
        served, size = window(matched, query, size, top_mode)
        return _Matches(query, matched, served, size, "", 0)
    # The token alone recovers the query: other options sent beside it are ignored.
    cursor = decode_token(token)
    if cursor.user != user.username:
        raise ODataError("The $skiptoken was issued to another user.", code="InvalidSkipToken")
    query = cursor.query
    cached = snapshots.get(cursor.snapshot)
    if cached is not None:
        served, size = window(cached, query, size, top_mode)
        return _Matches(query, cached, served, size, cursor.snapshot, cursor.offset)
    # Evicted, or the emulator restarted: run the query again, resume after the last id served.
    matched = emu.store.select_ids(query, email, lambda: client_gone(request.environ))
    key = snapshots.put(matched)
    served, size = window(matched, query, size, top_mode)
    offset = resume_offset(matched[served.start : served.stop], cursor)
    return _Matches(query, matched, served, size, key, offset)


def list_page(emu: Emulator, snapshots: SnapshotCache, request: Request, user: User) -> Response:
    """
    One page of referrals for ``user`` (authorized already), with the faults the request drew.

    :param emu: the emulator (store, settings, counters).
    :param snapshots: the application's snapshots of matching ids.
    :param request: the list request.
    :param user: the signed-in user (a Referral User sees only their teams' referrals).
    """
    size, applied = page_size(request, emu.settings.page_size)
    m = _matches(emu, snapshots, request, user, size)
    select = parse_select(m.query.select)
    start = m.served.start + m.offset
    page_ids = m.matched[start : min(start + m.size, m.served.stop)]
    body: dict[str, Any] = {"@odata.context": f"https://{request.host}/v1.0/$metadata#Referrals"}
    if m.query.count:
        # The connector: "a count of the matching results", whatever $skip/$top cut.
        body["@odata.count"] = len(m.matched)
    body["value"] = page_payload(emu.store.get_many(page_ids), select)
    if m.offset + m.size < len(m.served):
        key = m.snapshot or snapshots.put(m.matched)
        last = page_ids[-1] if page_ids else None
        cursor = Cursor(key, m.offset + m.size, m.query, user.username, last)
        body["@odata.nextLink"] = next_link(request, cursor, emu.settings)
    if emu.settings.latency_per_page:
        pause(request.environ, emu.settings.latency_per_page, emu.stopping, emu.counters)
    headers = {"Preference-Applied": applied} if applied else None
    fault = request.environ.get("emulator.fault")
    if fault == "malformed":
        body.pop("value")
        body["values"] = "not a list"
        return json_response(body, headers=headers)
    response = json_response(body, headers=headers)
    if fault == "truncated":
        return truncate(response)
    emu.counters.page()
    return response
