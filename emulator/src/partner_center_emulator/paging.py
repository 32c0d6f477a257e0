"""
Server-driven paging: snapshots of the matching ids and self-sufficient ``$skiptoken`` values.

The first page of a query takes a snapshot of the ids that match it, in order. Later pages are
slices of that snapshot, so paging is exact (no duplicates, none missing) however the data
changes meanwhile. Snapshots live in a bounded LRU; a token also carries the query, the user,
the offset and the last id served, so when its snapshot has been evicted (or the emulator was
restarted) the query is run again and paging resumes after the last id served.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from partner_center_emulator.query import ODataError, Query


@dataclass(frozen=True)
class Cursor:
    """What a ``$skiptoken`` says: where the next page starts, and how to rebuild its snapshot."""

    snapshot: str
    offset: int
    query: Query
    user: str
    last_id: str | None


def encode_token(cursor: Cursor) -> str:
    """Pack a cursor into an opaque, URL-safe token."""
    payload = {
        "s": cursor.snapshot,
        "o": cursor.offset,
        "q": cursor.query.to_json(),
        "u": cursor.user,
        "l": cursor.last_id,
    }
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Cursor:
    """
    Unpack a token made by :func:`encode_token`.

    :raises ODataError: when the token is not one this emulator issued.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        query = payload["q"]
        return Cursor(
            snapshot=str(payload["s"]),
            offset=int(payload["o"]),
            query=Query(
                filter=query["filter"],
                orderby=query["orderby"],
                select=query["select"],
                top=query["top"],
                skip=int(query["skip"]),
                count=bool(query["count"]),
            ),
            user=str(payload["u"]),
            last_id=payload["l"],
        )
    except (ValueError, KeyError, TypeError):
        raise ODataError(
            "The $skiptoken is invalid: pass the @odata.nextLink's $skiptoken unchanged.",
            code="InvalidSkipToken",
        ) from None


class SnapshotCache:
    """
    A bounded, thread-safe LRU of id snapshots.

    :param capacity: how many snapshots to keep (each is a list of ids).
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, ids: list[str]) -> str:
        """Store a snapshot; return its key."""
        key = secrets.token_hex(8)
        with self._lock:
            self._items[key] = ids
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> list[str] | None:
        """The snapshot, or ``None`` when it was evicted."""
        with self._lock:
            ids = self._items.get(key)
            if ids is not None:
                self._items.move_to_end(key)
            return ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def resume_offset(ids: list[str], cursor: Cursor) -> int:
    """Where to continue in a re-run query: after the last id served, else at the old offset."""
    if cursor.last_id is not None:
        try:
            return ids.index(cursor.last_id) + 1
        except ValueError:
            pass
    return min(cursor.offset, len(ids))


def page_payload(records: list[dict[str, Any]], select: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Apply ``$select`` to the records of one page."""
    if select is None:
        return records
    return [{field: record.get(field) for field in select} for record in records]
