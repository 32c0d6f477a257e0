"""
Where each slice's paging is: the cursor a checkpoint saves, and paging that goes on from it.

A slice's continuation is its last ``@odata.nextLink`` and, as a fallback that never expires,
its **restart key**: the smallest order key (largest, when paging descends) of the last page
spooled. Paging is ordered by that key, so every referral the slice has not delivered yet has a
key at least that large, including one updated since it was first read (its ``updatedDateTime``
only grows). Restarting the slice's query with ``<order field> ge <restart key>`` therefore
misses nothing; it reads the last page's referrals again, which the spool removes (it upserts by
``id``, the newest ``updatedDateTime`` winning).

A retry first asks for the stored nextLink. A server that refuses it (HTTP 400, 404 or 410, an
``@odata.nextLink`` that may not be followed, a body that is no page) gets the restarted query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_partner import odata
from airflow_provider_partner.errors import (
    PartnerCenterHTTPError,
    PartnerCenterNextLinkError,
    PartnerCenterResponseError,
)
from airflow_provider_partner.instants import parse, sort_key

if TYPE_CHECKING:
    from airflow_provider_partner.hooks.paging import PageResponse, ReferralPage
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = ["QUERY_KEYS", "REFUSED_STATUSES", "ExtractionCursor", "SliceCursor", "open_pages"]

log = logging.getLogger(__name__)

#: What a slice's query holds besides its first page: what a checkpoint records of it.
QUERY_KEYS = ("filter", "orderby", "select", "top")
#: Statuses with which a server refuses a stored nextLink (expired or unknown ``$skiptoken``).
REFUSED_STATUSES = frozenset({400, 404, 410})
_QUERY_SAFE = "$'(),/:@"


@dataclass
class SliceCursor:
    """
    One slice's progress.

    :param query: the slice's ``iter_pages`` arguments (:data:`QUERY_KEYS`).
    :param pages: pages spooled.
    :param received: referrals spooled, duplicates included.
    :param next_link: the last page's ``@odata.nextLink`` (``None`` before the first page).
    :param key: the restart key (see the module docstring), ``None`` when there is none.
    :param done: the slice's last page is spooled.
    """

    query: dict[str, Any]
    pages: int = 0
    received: int = 0
    next_link: str | None = None
    key: str | None = None
    done: bool = False


def _order(orderby: str | None) -> tuple[str, bool]:
    """The paging order's first field and whether it descends."""
    first = (orderby or "updatedDateTime asc").split(",")[0].split()
    return first[0], len(first) > 1 and first[1].lower() == "desc"


@dataclass
class ExtractionCursor:
    """The cursors of every slice of an extraction, updated from the thread that spools pages."""

    slices: list[SliceCursor] = field(default_factory=list)

    @classmethod
    def start(cls, queries: Sequence[Mapping[str, Any]]) -> ExtractionCursor:
        """A cursor at the start of ``queries`` (the plan's slices)."""
        return cls([SliceCursor({k: query.get(k) for k in QUERY_KEYS}) for query in queries])

    def on_page(self, index: int, page: ReferralPage) -> None:
        """Slice ``index`` spooled ``page``."""
        state = self.slices[index]
        records = page.records
        state.pages += 1
        state.received += len(records)
        state.next_link = page.next_link
        if records:
            name, descending = _order(state.query.get("orderby"))
            keys = [sort_key(record.get(name)) for record in records]
            state.key = None if "" in keys else (max(keys) if descending else min(keys))
        if page.next_link is None:
            state.done = True

    def on_done(self, index: int) -> None:
        """Slice ``index`` has no more pages."""
        self.slices[index].done = True

    @property
    def pages(self) -> int:
        """Pages spooled over every slice."""
        return sum(state.pages for state in self.slices)

    def to_json(self) -> list[dict[str, Any]]:
        """The cursor as JSON values (a checkpoint's manifest)."""
        return [asdict(state) for state in self.slices]

    @classmethod
    def from_json(cls, value: list[dict[str, Any]]) -> ExtractionCursor:
        """The cursor :meth:`to_json` wrote."""
        return cls([SliceCursor(**item) for item in value])

    def queries(self) -> list[dict[str, Any]]:
        """The slices' queries for a retry: the done ones page nothing, the others go on."""
        return [
            {**state.query, "done": True} if state.done else {**state.query, "resume": state}
            for state in self.slices
        ]


def open_pages(
    hook: PartnerCenterHook, query: Mapping[str, Any], *, prefetch: bool = False
) -> Iterator[ReferralPage]:
    """
    The pages of one slice's query: from its start, or from where a checkpoint left it.

    :param hook: the slice's hook.
    :param query: ``iter_pages`` arguments; ``first`` (a first page read while planning), ``done``
        (nothing left to read) or ``resume`` (a :class:`SliceCursor` to go on from) may be added.
    :param prefetch: request the next page while this one is spooled.
    """
    if query.get("done"):
        return iter(())
    args = {k: query[k] for k in (*QUERY_KEYS, "first") if query.get(k) is not None}
    state: SliceCursor | None = query.get("resume")
    if state is None or state.pages == 0:
        return hook.iter_pages(**args, prefetch=prefetch)
    return _resumed(hook, args, state, prefetch)


def _resumed(
    hook: PartnerCenterHook, args: dict[str, Any], state: SliceCursor, prefetch: bool
) -> Iterator[ReferralPage]:
    if state.next_link is not None:
        try:
            first = _request_link(hook, args, state.next_link)
        except (PartnerCenterHTTPError, PartnerCenterNextLinkError, PartnerCenterResponseError) as err:
            if isinstance(err, PartnerCenterHTTPError) and err.status not in REFUSED_STATUSES:
                raise
            log.info(
                "The stored nextLink was refused (%s): restarting the slice's query from its restart key %s",
                str(err).splitlines()[0][:200],
                state.key or "(none: from its start)",
            )
        else:
            yield from hook.iter_pages(**args, first=first, prefetch=prefetch)
            return
    yield from hook.iter_pages(**{**args, "filter": restart_filter(args, state.key)}, prefetch=prefetch)


def restart_filter(args: Mapping[str, Any], key: str | None) -> str | None:
    """
    The slice's ``$filter`` restricted to keys from ``key`` on, in its paging order.

    :param args: the slice's ``iter_pages`` arguments.
    :param key: the restart key; ``None`` restarts the slice from its start.
    """
    user: str | None = args.get("filter")
    if key is None:
        return user
    name, descending = _order(args.get("orderby"))
    bound = (odata.le if descending else odata.ge)(name, parse(key, name))
    return odata.and_(user, bound)


def _request_link(hook: PartnerCenterHook, args: Mapping[str, Any], link: str) -> PageResponse:
    """
    Send the request of a stored nextLink (under the hook's nextLink policy); return its response.

    The body is checked to be a page here, so that a refusal dressed as a success falls back too.
    """
    from airflow_provider_partner.hooks.paging import NextLinkPolicy, parse_page

    params = {
        name: value
        for name, value in (
            ("$filter", args.get("filter")),
            ("$orderby", odata.validate_orderby(args["orderby"]) if args.get("orderby") else None),
            ("$select", odata.select(args["select"]) if args.get("select") else None),
        )
        if value
    }
    url, query = NextLinkPolicy(hook.settings.referrals_url, params).resolve(link)
    if query:
        url = f"{url}?{urlencode(query, quote_via=quote, safe=_QUERY_SAFE)}"
    response = hook.get_conn().request("GET", url)
    request_id = response.headers.get("MS-RequestId") or response.headers.get("Request-ID")
    body, content_type = response.content, response.headers.get("Content-Type")
    parse_page(body=body, content_type=content_type, number=1, url=url, request_id=request_id)
    return body, content_type, request_id
