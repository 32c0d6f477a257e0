"""
OData paging for the referrals collection: page validation and the ``@odata.nextLink`` policy.

nextLink policy (the published examples show ``http://api.partner.microsoft.com/v1.0/referrals?
$skiptoken=...``: plain http and a path without ``/engagements``):

- a nextLink on the configured API host is followed over https (``http`` is upgraded);
- if its path differs from the configured referrals endpoint, its ``$skiptoken`` is carried,
  with the original query, to the configured endpoint;
- a nextLink on any other host raises :class:`PartnerCenterNextLinkError` and no request (so no
  token) goes there;
- a nextLink seen before in the same iteration raises :class:`PartnerCenterNextLinkError` (loop).

This module does no IO and imports nothing heavy: :class:`ReferralPage` is part of the public
interface imported at DAG parse time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from airflow_provider_partner.errors import PartnerCenterNextLinkError, PartnerCenterResponseError
from airflow_provider_partner.hooks.bodies import decode_json, snippet
from airflow_provider_partner.hooks.prefetch import Prefetcher
from airflow_provider_partner.hooks.urls import origin, redact_url

__all__ = ["NextLinkPolicy", "PageFetcher", "ReferralPage", "iterate_pages", "parse_page"]

log = logging.getLogger(__name__)

SKIPTOKEN = "$skiptoken"


@dataclass(frozen=True)
class ReferralPage:
    """
    One page of referrals as returned by the API.

    :param records: the referrals of this page (after the ``top`` cap).
    :param number: 1-based page number within the iteration.
    :param count: ``@odata.count`` when the server sent it, else ``None``.
    :param next_link: the raw ``@odata.nextLink`` of this page, ``None`` on the last page.
    :param request_id: the ``MS-RequestId`` sent for this page (server ``Request-ID`` if absent).
    """

    records: list[dict[str, Any]] = field(repr=False)
    number: int
    count: int | None = None
    next_link: str | None = None
    request_id: str | None = None

    def __len__(self) -> int:
        return len(self.records)


def parse_page(
    *,
    body: str | bytes,
    content_type: str | None,
    number: int,
    url: str,
    request_id: str | None,
) -> ReferralPage:
    """
    Validate one list response and return it as a :class:`ReferralPage`.

    :param body: response body (bytes are decoded as JSON text: UTF-8/16/32).
    :param content_type: the ``Content-Type`` header.
    :param number: page number (for messages).
    :param url: the URL requested (for messages).
    :param request_id: the request id (for messages and the page).
    """

    def where() -> str:  # called on failure only: redacting the URL costs 8 µs a page
        return f"page {number} ({redact_url(url)}, MS-RequestId={request_id})"

    data = decode_json(body, content_type, where)
    if not isinstance(data, dict):
        raise PartnerCenterResponseError(
            f"Expected a JSON object with a 'value' list in {where()}, got {type(data).__name__}."
        )
    records = data.get("value")
    if not isinstance(records, list):
        found = "missing" if "value" not in data else f"a {type(records).__name__}"
        raise PartnerCenterResponseError(
            f"The 'value' list is {found} in {where()}; keys present: {sorted(data)[:10]}."
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise PartnerCenterResponseError(
                f"Item {index} of 'value' in {where()} is a {type(record).__name__}, not a referral object."
            )
    next_link = data.get("@odata.nextLink")
    if next_link is not None and (not isinstance(next_link, str) or not next_link.strip()):
        raise PartnerCenterResponseError(f"'@odata.nextLink' in {where()} is not a URL: {next_link!r}.")
    count = data.get("@odata.count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        count = None
    return ReferralPage(
        records=records, number=number, count=count, next_link=next_link or None, request_id=request_id
    )


class NextLinkPolicy:
    """
    Decide where the request for the next page goes (see the module docstring).

    :param endpoint: the configured referrals URL (https).
    :param params: the query of the first request (carried along with a ``$skiptoken``).
    """

    def __init__(self, endpoint: str, params: Mapping[str, str]) -> None:
        self.endpoint = endpoint
        self.params = dict(params)
        parts = urlsplit(endpoint)
        self._host = (parts.hostname or "").lower()
        self._port = parts.port or 443
        self._netloc = parts.netloc
        self._path = parts.path.rstrip("/")
        self._seen: set[bytes] = set()

    def _absolute(self, link: str) -> SplitResult:
        try:
            origin(link if "://" in link else f"https://{self._netloc}/{link.lstrip('/')}")
            parts = urlsplit(link)
        except ValueError as err:  # UnsafeURLError included
            raise PartnerCenterNextLinkError(
                f"The API returned an @odata.nextLink that cannot be followed safely: {err}"
            ) from None
        if not parts.scheme and not parts.netloc:
            # A relative link is resolved against the configured API origin.
            parts = parts._replace(scheme="https", netloc=self._netloc)
        return parts

    def resolve(self, next_link: str) -> tuple[str, dict[str, str] | None]:
        """
        Return ``(url, params)`` for the next request; ``params`` is ``None`` when ``url`` has them.

        :param next_link: the ``@odata.nextLink`` value.
        """
        parts = self._absolute(next_link.strip())
        scheme, host, port = origin(urlunsplit(parts))
        if scheme == "http" and not parts.netloc.rpartition("@")[2].rpartition("]")[2].count(":"):
            # The published examples show http:// links on the API's own host: upgraded to https,
            # so a link without a port means the API's port.
            port = self._port
        if scheme not in {"http", "https"} or host != self._host or port != self._port:
            shown = redact_url(f"{scheme}://{parts.netloc}")
            raise PartnerCenterNextLinkError(
                f"The API returned an @odata.nextLink to {shown}, which is not the "
                f"configured API host {self._netloc}; refusing to follow it (the bearer token only goes to "
                "the configured host). Check the connection host, or report this response to Microsoft."
            )
        if parts.path.rstrip("/") == self._path:
            url = urlunsplit(("https", self._netloc, parts.path, parts.query, ""))
            params: dict[str, str] | None = None
        else:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            skiptoken = query.get(SKIPTOKEN)
            if not skiptoken:
                raise PartnerCenterNextLinkError(
                    f"The @odata.nextLink path {parts.path!r} differs from the configured endpoint "
                    f"{self._path!r} and has no $skiptoken to carry over; cannot continue paging safely."
                )
            url = self.endpoint
            params = {**self.params, SKIPTOKEN: skiptoken}
        key = hashlib.blake2b(
            (url + "?" + urlencode(sorted((params or {}).items()))).encode(), digest_size=16
        ).digest()
        if key in self._seen:
            raise PartnerCenterNextLinkError(
                f"The API returned the same @odata.nextLink twice ({snippet(next_link)}); stopping to "
                "avoid an endless paging loop. Narrow the $filter or retry later."
            )
        self._seen.add(key)
        return url, params


#: One page's response: ``(body, content_type, request_id)``.
PageResponse = tuple[str | bytes, str | None, str | None]
#: ``fetch(url, params) -> (body, content_type, request_id)`` sends one page request.
PageFetcher = Callable[[str, Mapping[str, str] | None], PageResponse]


def iterate_pages(
    fetch: PageFetcher,
    *,
    endpoint: str,
    params: Mapping[str, str],
    top: int | None = None,
    log_every: int = 10,
    prefetch: bool = False,
    max_pages: int | None = None,
    max_empty_pages: int | None = None,
    first: PageResponse | None = None,
    summary_level: int = logging.INFO,
) -> Iterator[ReferralPage]:
    """
    Yield validated pages one at a time, following nextLinks under :class:`NextLinkPolicy`.

    Only the current page is held in memory. ``top`` caps the total number of records yielded,
    even if the server ignores ``$top``.

    :param fetch: sends one request and returns ``(body, content_type, request_id)``.
    :param endpoint: the configured referrals URL.
    :param params: the query of the first request.
    :param top: maximum number of records in total (``None``: all).
    :param log_every: log progress at INFO every this many pages (0: only at the end).
    :param prefetch: request the next page (from a daemon thread) as soon as this one is parsed,
        so it travels while the caller works on this one. Off by default: a caller that stops
        early would have sent one request for nothing.
    :param max_pages: stop with :class:`PartnerCenterNextLinkError` rather than follow a nextLink
        past this many pages (``None``: no cap).
    :param max_empty_pages: the same after this many empty or repeated pages in a row that still
        carry a nextLink: a server that hands out a fresh ``$skiptoken`` on every page.
    :param first: the response to the first request, already received (by a planner that read
        its ``@odata.count``): it is page 1, and paging goes on from its nextLink.
    :param summary_level: the level of the closing "Finished: N page(s) ..." line (a caller that
        summarises the whole run itself, such as the extraction engine, passes DEBUG).
    """
    policy, circling = NextLinkPolicy(endpoint, params), _Circling(max_pages, max_empty_pages)
    url = endpoint
    next_params: dict[str, str] | None = dict(params)
    number = records = 0
    started = time.monotonic()
    ahead = Prefetcher(fetch) if prefetch else None
    pending = False
    try:
        while True:
            if top is not None and records >= top:
                break
            number += 1
            if first is not None:
                (body, content_type, request_id), first = first, None
            else:
                body, content_type, request_id = (
                    ahead.result() if pending and ahead else fetch(url, next_params)
                )
            pending = False
            page = parse_page(
                body=body, content_type=content_type, number=number, url=url, request_id=request_id
            )
            del body
            if top is not None and records + len(page.records) > top:
                page = replace(page, records=page.records[: top - records])
            records += len(page.records)
            if log_every and number % log_every == 0:
                _log_progress(number, records, started)
            refused, follow = _follow(page, policy, circling)
            if follow is not None:
                url, next_params = follow
                if ahead is not None and (top is None or records < top):
                    ahead.send(url, next_params)
                    pending = True
            yield page
            if refused is not None:
                raise refused
            if page.next_link is None:
                break
    finally:
        if ahead is not None:
            ahead.close()
    _log_progress(number, records, started, level=summary_level)


def _follow(
    page: ReferralPage, policy: NextLinkPolicy, circling: _Circling
) -> tuple[PartnerCenterNextLinkError | None, tuple[str, dict[str, str] | None] | None]:
    """``(refusal, (url, params))`` of the page's nextLink: the refusal is raised after the page."""
    if page.next_link is None:
        return None, None
    try:
        circling.check(page)
        return None, policy.resolve(page.next_link)
    except PartnerCenterNextLinkError as err:
        return err, None


class _Circling:
    """Tells a server that pages for ever (too many pages, or empty/repeated ones in a row)."""

    def __init__(self, max_pages: int | None, max_empty_pages: int | None) -> None:
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self.in_a_row = 0
        self._last_ids: list[Any] | None = None

    def check(self, page: ReferralPage) -> None:
        """Raise before the nextLink of ``page`` is followed, if following it means circling."""
        if self.max_pages is not None and page.number >= self.max_pages:
            raise PartnerCenterNextLinkError(
                f"Stopped after max_pages={self.max_pages} pages: the API still returned an "
                "@odata.nextLink. Narrow the $filter or window (or raise the connection extra "
                "max_pages if the result really is that large)."
            )
        ids = [record.get("id") for record in page.records]
        self.in_a_row = self.in_a_row + 1 if not ids or ids == self._last_ids else 0
        self._last_ids = ids
        if self.max_empty_pages is not None and self.in_a_row >= self.max_empty_pages:
            raise PartnerCenterNextLinkError(
                f"Stopped after {self.in_a_row} empty or repeated pages in a row that each carried a new "
                "@odata.nextLink (max_empty_pages): the server is paging in circles. Retry later, or "
                "report the response to Microsoft."
            )


def _log_progress(pages: int, records: int, started: float, *, level: int | None = None) -> None:
    # level None: a progress line while paging (INFO); else the closing line at that level.
    elapsed = max(time.monotonic() - started, 1e-6)
    log.log(
        logging.INFO if level is None else level,
        "%s %d page(s), %d referral(s) in %.1f s (%.0f referrals/s)",
        "Progress:" if level is None else "Finished:",
        pages,
        records,
        elapsed,
        records / elapsed,
    )
