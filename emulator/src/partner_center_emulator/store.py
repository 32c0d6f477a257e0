"""
The referral store: thread-safe, append-only order, copy-on-write updates.

Records are never mutated in place: an update builds a new dict and swaps it in, so a reader
holding the old list (a query in progress, a page being encoded) never sees a half-applied
update, and generator pools can be shared between records.
"""

from __future__ import annotations

import copy
import heapq
import json
import threading
from collections.abc import Callable
from typing import Any

from partner_center_emulator.clock import Clock, format_ticks, parse_to_ticks
from partner_center_emulator.creation import REQUIRED_ON_CREATE, check_new, outgoing_record
from partner_center_emulator.data import Generator, new_etag
from partner_center_emulator.enums import MODIFIED_VIA_API
from partner_center_emulator.query import Query, compile_tree, parse_filter, parse_orderby
from partner_center_emulator.ranges import INDEXED_FIELD, Bounds, created_bounds, rows_within
from partner_center_emulator.writes import (
    StoreError,
    apply_operation,
    check_schema,
    check_update,
    etag_matches,
)

__all__ = ["REQUIRED_ON_CREATE", "QueryCancelledError", "ReferralStore", "on_team", "visible_to"]

Referral = dict[str, Any]


#: Rows a query filters between two looks at whether its client is still there.
_CANCEL_EVERY = 4096


class QueryCancelledError(Exception):
    """The query's ``cancelled()`` said its client has gone: the work stopped early."""


def on_team(record: Referral, email: str) -> bool:
    """Whether ``email`` is a member of the referral's (partner) ``team``."""
    return any(m.get("email") == email for m in record.get("team") or ())


def visible_to(email: str | None) -> Callable[[Referral], bool] | None:
    """The Referral User rule: only referrals whose ``team`` has them (``None``: sees all)."""
    if email is None:
        return None
    return lambda r: on_team(r, email)


def _filter_rows(
    rows: list[Referral], predicate: Callable[[Referral], bool], cancelled: Callable[[], bool] | None
) -> list[Referral]:
    if cancelled is None:
        return [r for r in rows if predicate(r)]
    kept: list[Referral] = []
    for start in range(0, len(rows), _CANCEL_EVERY):
        if cancelled():
            raise QueryCancelledError
        kept.extend(r for r in rows[start : start + _CANCEL_EVERY] if predicate(r))
    return kept


class ReferralStore:
    """
    All referrals of one emulator.

    :param generator: makes new referrals (arrivals, ids, eTags).
    :param clock: the emulator's clock.
    """

    def __init__(self, generator: Generator, clock: Clock) -> None:
        self.generator = generator
        self.clock = clock
        self._lock = threading.RLock()
        self._grown = threading.Condition(self._lock)
        self._records: list[Referral] = []
        self._index: dict[str, int] = {}
        #: (expirationDateTime ticks, id) of incoming New referrals: the 14-day rule's queue.
        self._expiry: list[tuple[int, str]] = []
        #: The 14-day rule applies (the ``expire_incoming`` setting); off, the data stays as it is.
        self.expire_incoming = True
        #: Called with every record written after load (the state dir's journal).
        self.on_write: Callable[[Referral], None] | None = None
        #: Whether the records are in ``createdDateTime`` order (the ``ranges`` index holds).
        self._created_ordered = True

    def _written(self, record: Referral) -> None:
        if self.on_write is not None:
            self.on_write(record)

    def load(self, records: list[Referral]) -> None:
        """Add generated records (oldest first), in bulk."""
        with self._lock:
            start = len(self._records)
            for record in records:
                self._keep_order(record)
                self._records.append(record)
            self._index.update((r["id"], start + i) for i, r in enumerate(records))
            for record in records:
                self._track_expiry(record)
            self._grown.notify_all()

    def _keep_order(self, appended: Referral) -> None:
        """Note whether the store stays in ``createdDateTime`` order with ``appended`` at its end."""
        if not self._created_ordered:
            return  # once out of order, for good; the last record may hold no string to compare
        created = appended.get(INDEXED_FIELD)
        last = self._records[-1][INDEXED_FIELD] if self._records else ""
        if not isinstance(created, str) or created < last:
            # Journal replays or records loaded out of order: every query scans, as before.
            self._created_ordered = False

    def _replace(self, index: int, record: Referral) -> None:
        if record.get(INDEXED_FIELD) != self._records[index].get(INDEXED_FIELD):
            self._created_ordered = False
        self._records[index] = record

    def _append(self, record: Referral) -> None:
        self._keep_order(record)
        self._index[record["id"]] = len(self._records)
        self._records.append(record)
        self._grown.notify_all()
        self._track_expiry(record)

    def _track_expiry(self, record: Referral) -> None:
        expiration = record.get("expirationDateTime")
        if record["status"] == "New" and record["direction"] == "Incoming" and expiration:
            heapq.heappush(self._expiry, (parse_to_ticks(expiration), record["id"]))

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: Referral) -> None:
        """Replace (same id) or add a record as it is (replaying a journal)."""
        with self._lock:
            index = self._index.get(record["id"])
            if index is None:
                self._append(record)
            else:
                self._replace(index, record)

    def all(self) -> list[Referral]:
        """A deep copy of every referral, in store order (oldest created first)."""
        with self._lock:
            records = list(self._records)
        return list(json.loads(json.dumps(records)))

    def wait_for_count(self, count: int, timeout: float) -> bool:
        """Block until the store holds at least ``count`` referrals; ``False`` on timeout."""
        with self._grown:
            return self._grown.wait_for(lambda: len(self._records) >= count, timeout)

    def ids(self) -> list[str]:
        """Every id, in store order."""
        with self._lock:
            return [r["id"] for r in self._records]

    def get(self, referral_id: str) -> Referral | None:
        """The current record (shared: do not mutate)."""
        with self._lock:
            index = self._index.get(referral_id)
            return None if index is None else self._records[index]

    def get_many(self, ids: list[str]) -> list[Referral]:
        """The current records of ``ids`` (in that order)."""
        with self._lock:
            return [self._records[self._index[i]] for i in ids]

    def select_ids(
        self, query: Query, email: str | None, cancelled: Callable[[], bool] | None = None
    ) -> list[str]:
        """
        The ids of every referral matching a query, ordered (``$skip``/``$top`` not applied).

        :param query: validated query options.
        :param email: the Referral User's e-mail (``None`` for a Referral Admin).
        :param cancelled: asked every few thousand rows; ``True`` stops the work.
        :raises QueryCancelledError: when ``cancelled()`` said so.
        """
        self.expire_due()
        predicate, bounds = None, None
        if query.filter is not None:
            tree = parse_filter(query.filter)
            predicate = compile_tree(tree)
            bounds = created_bounds(tree)
        rows = self._candidates(bounds)
        visible = visible_to(email)
        if visible is not None:
            rows = [r for r in rows if visible(r)]
        if predicate is not None and not (bounds is not None and bounds.exact and self._created_ordered):
            rows = _filter_rows(rows, predicate, cancelled)
        order = parse_orderby(query.orderby)
        if order is not None:
            field, descending = order
            if descending:
                # Stable sorts: ties on the date-time keep id order (ascending) in both directions.
                rows.sort(key=lambda r: r["id"])
                rows.sort(key=lambda r: r.get(field) or "", reverse=True)
            else:
                # The same order in one sort, nearly free on rows already in creation order.
                rows.sort(key=lambda r: (r.get(field) or "", r["id"]))
        # $skip and $top are the caller's (their meaning is the top_mode setting's): all matches.
        return [r["id"] for r in rows]

    def _candidates(self, bounds: Bounds | None) -> list[Referral]:
        """The records a filter with ``bounds`` can match, in store order (a copy of the list)."""
        with self._lock:
            if bounds is None or not self._created_ordered:
                return list(self._records)
            return list(rows_within(self._records, bounds))

    def update(self, referral_id: str, operations: Any, if_match: str | None) -> Referral:
        """
        Apply a JSON Patch (``replace``/``add``), enforcing ``If-Match`` and the status transitions.

        :raises StoreError: 404, 412 or 400 with a message naming the problem.
        """
        if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
            raise StoreError(400, "BadRequest", "The body must be a JSON Patch array of operations.")
        with self._lock:
            current = self.get(referral_id)
            if current is None:
                raise StoreError(404, "NotFound", f"Referral {referral_id} was not found.")
            if not etag_matches(if_match, current["eTag"]):
                raise StoreError(
                    412,
                    "PreconditionFailed",
                    f"If-Match {if_match} does not match the current eTag of referral {referral_id}.",
                )
            updated = copy.deepcopy(current)
            for op in operations:
                apply_operation(updated, op)
            check_update(current, updated)
            check_schema(updated)
            now = self.clock.tick()
            updated["lastModifiedVia"] = MODIFIED_VIA_API
            updated["updatedDateTime"] = format_ticks(now)
            if updated["status"] == "Active" and not updated.get("acceptedDateTime"):
                updated["acceptedDateTime"] = format_ticks(now)
            if updated["status"] == "Closed" and current["status"] != "Closed":
                updated["closedDateTime"] = format_ticks(now)
            updated["eTag"] = new_etag(self.generator.rng)
            self._replace(self._index[referral_id], updated)
            self._written(updated)
            return updated

    def create(self, body: Any) -> Referral:
        """
        Create an outgoing referral from a POST body.

        ``type``, ``customerProfile``, ``consent`` and ``details`` are required.

        :raises StoreError: 400 naming the missing or invalid fields.
        """
        state = check_new(body)
        with self._lock:
            record = outgoing_record(body, self.generator, format_ticks(self.clock.tick()), state)
            check_schema(record)
            self._append(record)
            self._written(record)
            return record

    def release_incoming(self, count: int, **overrides: Any) -> list[Referral]:
        """Add ``count`` new Incoming/New/Pending referrals created now (distinct stamps)."""
        self.expire_due()
        with self._lock:
            made = [self.generator.incoming(self.clock.tick(), **overrides) for _ in range(count)]
            for record in made:
                self._append(record)
                self._written(record)
        return made

    def expire_due(self) -> int:
        """Archive incoming New referrals whose 14 days have passed as Closed/Expired; return how many."""
        if not self.expire_incoming:
            return 0
        now = self.clock.now()
        expired = 0
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now:
                _, referral_id = heapq.heappop(self._expiry)
                current = self.get(referral_id)
                if current is None or current["status"] != "New":
                    continue
                stamp = format_ticks(self.clock.tick())
                archived = {
                    **current,
                    "status": "Closed",
                    "substatus": "Expired",
                    "updatedDateTime": stamp,
                    "closedDateTime": stamp,
                    "eTag": new_etag(self.generator.rng),
                }
                self._replace(self._index[referral_id], archived)
                self._written(archived)
                expired += 1
        return expired
