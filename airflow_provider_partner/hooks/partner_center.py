"""
Hook for the Microsoft Partner Center Referrals API (leads and co-sell opportunities).

DAG files import this module at parse time, so it imports nothing heavy: ``requests``,
``tenacity`` and ``msal`` are loaded on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseHook

from airflow_provider_partner.errors import PartnerCenterError
from airflow_provider_partner.hooks.arguments import (
    MAX_PAGE_SIZE,
    list_params,
    new_referral,
    patch_operations,
    query_string,
    referral_url,
)
from airflow_provider_partner.hooks.bodies import json_object, request_id_of
from airflow_provider_partner.hooks.connection import PartnerCenterSettings, settings_from_connection
from airflow_provider_partner.hooks.connection_schema import form_widgets, hook_field_behaviour
from airflow_provider_partner.hooks.paging import PageResponse, ReferralPage, iterate_pages

if TYPE_CHECKING:
    from airflow_provider_partner.hooks.http import PartnerCenterHttp
    from airflow_provider_partner.hooks.tokens import TokenProvider

__all__ = ["MAX_PAGE_SIZE", "PartnerCenterHook", "ReferralPage"]


class PartnerCenterHook(BaseHook):
    """
    Read and update Partner Center referrals with delegated (App+User) credentials.

    The connection holds the application id (login), an optional client secret (password) and,
    in its extras, the tenant, the token cache location and the bootstrap refresh token; see
    ``docs/connection.md``. Access tokens are acquired with MSAL and the rotating token cache is
    persisted after every refresh.

    :param partner_center_conn_id: the Airflow connection id.
    :param log_every_pages: log paging progress at INFO every this many pages.
    """

    conn_name_attr = "partner_center_conn_id"
    default_conn_name = "partner_center_default"
    conn_type = "partner_center"
    hook_name = "Microsoft Partner Center"
    #: The level of the paging layer's "Finished: N page(s) ..." line; the extraction engine,
    #: which writes one summary line per extraction, sets DEBUG on the hooks it pages with.
    paging_summary_level: int = logging.INFO

    def __init__(
        self,
        partner_center_conn_id: str = default_conn_name,
        *,
        log_every_pages: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.partner_center_conn_id = partner_center_conn_id
        self.log_every_pages = log_every_pages

    def __repr__(self) -> str:
        return f"{type(self).__name__}(partner_center_conn_id={self.partner_center_conn_id!r})"

    # -- wiring ------------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> PartnerCenterSettings:
        """The validated connection settings (secrets masked as soon as they are read)."""
        conn = self.get_connection(self.partner_center_conn_id)
        return settings_from_connection(
            self.partner_center_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            port=conn.port,
            extras=conn.extra_dejson,
        )

    @cached_property
    def tokens(self) -> TokenProvider:
        """
        The token provider of this hook, on this process's one credential for the connection.

        Every hook of the process on the same connection shares one refresh (single flight), and
        the refresh coordinates with other processes through the credential store's lease.
        """
        from airflow_provider_partner.hooks.tokens import TokenProvider
        from airflow_provider_partner.stores import open_store

        settings = self.settings
        store = open_store(settings.credential_store) if settings.credential_store else None
        return TokenProvider.shared(settings, store)

    @cached_property
    def http(self) -> PartnerCenterHttp:
        """The retrying HTTP client of this hook."""
        from airflow_provider_partner.hooks.http import PartnerCenterHttp

        return PartnerCenterHttp(
            self.settings,
            lambda rejected: self.tokens.get_token(force_refresh=rejected is not None, rejected=rejected),
        )

    def sibling(self) -> PartnerCenterHook:
        """
        Return a hook on the same connection that shares this hook's settings and token provider.

        Use one hook per thread: each has its own HTTP session (``requests`` sessions are not
        thread-safe), while the shared, lock-protected token provider makes k threads cost one
        token request instead of k racing refreshes of a rotating refresh token. Call it in the
        thread that read the connection (inside a task, connections come through the Task SDK).
        """
        other = type(self)(self.partner_center_conn_id, log_every_pages=self.log_every_pages)
        # Seed the cached properties: the sibling never reads the connection or builds its own tokens.
        other.__dict__["settings"] = self.settings
        other.__dict__["tokens"] = self.tokens
        return other

    def get_conn(self) -> PartnerCenterHttp:
        """
        Return this hook's HTTP client (:attr:`http`), for API calls the methods below lack.

        ``get_conn().request(method, url, json=..., headers=..., ok=...)`` retries like the
        methods do, and sends the bearer token only to https URLs on the configured API origin:
        a URL elsewhere raises :class:`~.errors.PartnerCenterNextLinkError` before any request.
        """
        return self.http

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields (read by Airflow 3.1; 3.2+ reads ``conn-fields``)."""
        return form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's hidden fields, labels and placeholders (for Airflow before 3.2)."""
        return hook_field_behaviour()

    # -- reading ---------------------------------------------------------------------------------
    def iter_pages(
        self,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        select: str | Iterable[str] | None = None,
        top: int | None = None,
        prefetch: bool = False,
        first: PageResponse | None = None,
    ) -> Iterator[ReferralPage]:
        """
        Yield the pages of a referrals query, one at a time.

        Arguments are validated at once; requests start when the iterator is first advanced.

        :param filter: OData ``$filter`` (see :mod:`airflow_provider_partner.odata`).
        :param orderby: ``$orderby``: ``createdDateTime`` or ``updatedDateTime``, ``asc``/``desc``.
        :param select: ``$select``: field names (string or iterable).
        :param top: cap on the total number of referrals (applied client-side too).
        :param prefetch: request the next page while the caller works on this one (for callers
            that spend real time per page; a caller that stops early has sent one request too many).
        :param first: the response to this query's first request, from :meth:`request_first_page`:
            it is page 1, and paging goes on from its nextLink.
        """
        params = list_params(filter, orderby, select, top)
        return self._pages(params, top, prefetch, first)

    def request_first_page(
        self,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        select: str | Iterable[str] | None = None,
        count: bool = False,
    ) -> PageResponse:
        """
        Send the first request of a referrals query; return its raw response for :meth:`iter_pages`.

        For a planner that reads the first page (its ``@odata.count``) before paging goes on.

        :param filter: OData ``$filter``.
        :param orderby: ``$orderby``.
        :param select: ``$select``.
        :param count: ask for ``@odata.count`` (``$count=true``).
        """
        params = list_params(filter, orderby, select, None)
        if count:
            params["$count"] = "true"
        return self._fetch_page(self.settings.referrals_url, params)

    def _fetch_page(self, url: str, query: Mapping[str, str] | None) -> PageResponse:
        full = f"{url}?{query_string(query)}" if query else url
        response = self.http.request("GET", full)
        return response.content, response.headers.get("Content-Type"), request_id_of(response)

    def _pages(
        self, params: dict[str, str], top: int | None, prefetch: bool, first: PageResponse | None
    ) -> Iterator[ReferralPage]:
        self._report_lineage("input")
        yield from iterate_pages(
            self._fetch_page,
            endpoint=self.settings.referrals_url,
            params=params,
            top=top,
            log_every=self.log_every_pages,
            summary_level=self.paging_summary_level,
            prefetch=prefetch,
            max_pages=self.settings.max_pages,
            max_empty_pages=self.settings.max_empty_pages,
            first=first,
        )

    def iter_referrals(
        self,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        select: str | Iterable[str] | None = None,
        top: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield referrals across pages (same arguments as :meth:`iter_pages`).

        :param filter: OData ``$filter``.
        :param orderby: ``$orderby``.
        :param select: ``$select``.
        :param top: cap on the total number of referrals.
        """
        pages = self.iter_pages(filter=filter, orderby=orderby, select=select, top=top)
        return (record for page in pages for record in page.records)

    def get_referral(self, referral_id: str) -> dict[str, Any]:
        """
        Return one referral.

        :param referral_id: the referral ``id``.
        """
        response = self.http.request("GET", referral_url(self.settings.referrals_url, referral_id))
        self._report_lineage("input")
        return json_object(response, f"referral {referral_id}")

    # -- writing ---------------------------------------------------------------------------------
    def update_referral(
        self,
        referral_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        etag: str | None = None,
        return_representation: bool = False,
    ) -> dict[str, Any] | None:
        """
        Apply a JSON Patch to a referral.

        :param referral_id: the referral ``id``.
        :param operations: JSON Patch operations; the API supports ``replace`` and ``add``.
        :param etag: the referral's ``eTag``; sent as ``If-Match`` (412 if it changed since).
        :param return_representation: ask for the updated referral (``Prefer: return=representation``).
        :return: the updated referral when asked for (and sent), else ``None``.
        """
        ops = patch_operations(operations)
        url = referral_url(self.settings.referrals_url, referral_id)
        headers = {"Content-Type": "application/json"}
        if etag:
            headers["If-Match"] = etag
        if return_representation:
            headers["Prefer"] = "return=representation"
        response = self.http.request("PATCH", url, json=ops, headers=headers, ok=(200, 204))
        self._report_lineage("output")
        if response.status_code == 204 or not response.content:
            return None
        return json_object(response, f"updated referral {referral_id}")

    def create_referral(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """
        Create a referral (the API requires ``type``, ``customerProfile``, ``consent``, ``details``).

        :param body: the new referral.
        :return: the created referral as returned by the API.
        """
        sent = new_referral(body)
        response = self.http.request("POST", self.settings.referrals_url, json=sent, ok=(200, 201))
        self._report_lineage("output")
        return json_object(response, "created referral")

    def _report_lineage(self, direction: Literal["input", "output"]) -> None:
        # The collection endpoint, not one URI per referral: lineage is about datasets, not rows.
        from airflow_provider_partner.hooks.lineage import endpoint_uri, report_lineage

        report_lineage(self, direction, endpoint_uri(self.settings.api_url))

    # -- UI --------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """
        Redeem the refresh token and read one referral id; return ``(ok, message)`` for the UI.

        The message also gives the stored refresh token's age (it dies after 90 days unused).
        """
        try:
            settings = self.settings
            # A token request, not a cached access token: only the authority can say whether the
            # client secret and the refresh token are still good.
            self.tokens.refresh()
            user = self.tokens.username or "the signed-in user"
            page = next(iter(self.iter_pages(select=["id"], top=1)), None)
        except PartnerCenterError as err:
            return False, str(err)
        except Exception as err:  # noqa: BLE001 - the UI shows any failure as a message
            return False, f"{type(err).__name__}: {err}"
        health = self._token_health()
        if page is None or not page.records:
            seen = "no referrals are visible to this user yet"
        else:
            seen = f"read referral {page.records[0].get('id')}"
        return True, f"Connected to {settings.api_url} as {user}; {seen}.{health}"

    def _token_health(self) -> str:
        from airflow_provider_partner.hooks.tokens import REFRESH_TOKEN_INACTIVE_DAYS

        if not self.settings.credential_store:
            return " No credential store: rotated refresh tokens are not kept (set extra credential_store)."
        age = self.tokens.refresh_token_age
        if age is None:
            return f" Credential store {self.settings.credential_store}: refresh token age unknown."
        return (
            f" Credential store {self.settings.credential_store}: the refresh token is "
            f"{age.total_seconds() / 86_400:.1f} days old "
            f"(it dies after {REFRESH_TOKEN_INACTIVE_DAYS} days unused)."
        )
