"""
Turn an Airflow Connection of type ``partner_center`` into validated, frozen settings.

All parsing and validation happens here, once, so the rest of the hook works with typed values
and every mistake in a connection is reported with the field name and the fix. Which extras
exist, their defaults and kinds are declared in :mod:`.connection_schema`; each value is read by
:mod:`.connection_values` (URLs, booleans, numbers, proxies, scopes, ``verify`` with
``ca_bundle``); this module adds the rules that tie fields together (aliases, the credential
combinations, the authority).
Secrets are registered with Airflow's secrets masker as soon as they are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.hooks import connection_values as parse
from airflow_provider_partner.hooks.connection_schema import (
    ALIASES,
    DEFAULT_API_URL,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_SCOPE,
    EXTRA_FIELDS,
    FIELDS,
    KNOWN_EXTRAS,
    REFERRALS_PATH,
    FieldKind,
)
from airflow_provider_partner.hooks.masking import mask_secrets
from airflow_provider_partner.hooks.urls import origin

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_SCOPE",
    "REFERRALS_PATH",
    "PartnerCenterSettings",
    "mask_secrets",
    "settings_from_connection",
]

#: Older connection forms stored each extra under this prefix; newer ones use the bare name.
_LEGACY_PREFIX = "extra__partner_center__"


@dataclass(frozen=True, repr=False)
class PartnerCenterSettings:
    """
    Everything the hook reads from its connection, validated.

    :param conn_id: the Airflow connection id (for messages).
    :param api_url: API origin (plus optional path prefix), https, no trailing slash.
    :param client_id: application (client) id.
    :param client_secret: client secret; ``None`` means a public client.
    :param tenant_id: Entra ID tenant id or domain.
    :param authority_host: Entra ID authority host URL, https.
    :param scopes: delegated scopes requested.
    :param refresh_token: bootstrap refresh token from the connection, if any.
    :param credential_store: where the MSAL token cache is persisted (``variable://key`` or a
        URL); the extra ``credential_store`` (formerly ``token_cache``).
    :param username: user for the legacy password grant.
    :param user_password: password for the legacy password grant.
    :param verify: ``requests`` verify value: a CA bundle path, or a bool.
    :param timeout: connect/read timeout per socket operation, seconds.
    :param attempt_timeout: wall-clock limit of one attempt, seconds.
    :param max_response_mb: largest response body read (received and decompressed), MB.
    :param max_pages: most pages one query may page through.
    :param max_empty_pages: most empty or repeated pages in a row that still carry a nextLink.
    :param max_retries: retries of one request after the first attempt.
    :param backoff_factor: base of the exponential backoff, seconds.
    :param max_retry_wait: cap of one wait (backoff or ``Retry-After``), seconds.
    :param max_retry_time: cap of the total time spent on one request including retries, seconds.
    :param proxies: requests-style proxies mapping.
    """

    conn_id: str
    api_url: str = DEFAULT_API_URL
    client_id: str = ""
    client_secret: str | None = None
    tenant_id: str = FIELDS["tenant_id"].default
    authority_host: str = FIELDS["authority_host"].default
    scopes: tuple[str, ...] = (FIELDS["scope"].default,)
    refresh_token: str | None = None
    credential_store: str | None = None
    username: str | None = None
    user_password: str | None = None
    verify: bool | str = FIELDS["verify"].default
    timeout: float = FIELDS["timeout"].default
    attempt_timeout: float = FIELDS["attempt_timeout"].default
    max_response_mb: float = FIELDS["max_response_mb"].default
    max_pages: int = FIELDS["max_pages"].default
    max_empty_pages: int = FIELDS["max_empty_pages"].default
    max_retries: int = FIELDS["max_retries"].default
    backoff_factor: float = FIELDS["backoff_factor"].default
    max_retry_wait: float = FIELDS["max_retry_wait"].default
    max_retry_time: float = FIELDS["max_retry_time"].default
    proxies: Mapping[str, str] = field(default_factory=dict)

    @property
    def authority(self) -> str:
        """The MSAL authority URL (``<authority_host>/<tenant_id>``)."""
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def token_cache(self) -> str | None:
        """The former name of :attr:`credential_store`."""
        return self.credential_store

    @property
    def referrals_url(self) -> str:
        """URL of the referrals collection."""
        return f"{self.api_url}{REFERRALS_PATH}"

    @property
    def api_origin(self) -> tuple[str, str, int]:
        """``(scheme, hostname, port)`` of the API: the only place the bearer token may go."""
        return origin_of(self.api_url)

    def __repr__(self) -> str:
        return (
            f"PartnerCenterSettings(conn_id={self.conn_id!r}, api_url={self.api_url!r}, "
            f"client_id={self.client_id!r}, client_secret={'***' if self.client_secret else None}, "
            f"tenant_id={self.tenant_id!r}, authority_host={self.authority_host!r}, "
            f"refresh_token={'***' if self.refresh_token else None}, "
            f"credential_store={self.credential_store!r}, "
            f"username={self.username!r}, user_password={'***' if self.user_password else None}, "
            f"verify={self.verify!r})"
        )


def origin_of(url: str) -> tuple[str, str, int]:
    """
    Return ``(scheme, hostname, port)`` of a URL as urllib3 will connect to it.

    :param url: an absolute URL.
    :raises UnsafeURLError: a URL that cannot be followed safely (see :func:`.urls.origin`).
    """
    return origin(url)


def _known_extras(conn_id: str, extras: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(extras or {})
    for key in list(values):
        if key.startswith(_LEGACY_PREFIX):
            values.setdefault(key.removeprefix(_LEGACY_PREFIX), values.pop(key))
    for alias, name in ALIASES.items():
        if alias in values:
            old = values.pop(alias)
            if not parse.is_empty(values.get(name)) and not parse.is_empty(old) and values[name] != old:
                raise PartnerCenterConfigError(
                    f"Connection {conn_id!r} sets both extra {name} and its former name {alias} to "
                    f"different values; keep only {name}."
                )
            if parse.is_empty(values.get(name)):
                values[name] = old
    unknown = sorted(set(values) - KNOWN_EXTRAS)
    if unknown:
        raise PartnerCenterConfigError(
            f"Connection {conn_id!r} has unknown extra field(s) {unknown}; "
            f"known fields: {sorted(KNOWN_EXTRAS)}. Check for typos."
        )
    return values


def _credentials(
    conn_id: str,
    login: str | None,
    password: str | None,
    extras: Mapping[str, Any],
    *,
    require_credentials: bool,
) -> dict[str, Any]:
    client_id = (login or "").strip()
    if not client_id:
        raise PartnerCenterConfigError(
            f"Connection {conn_id!r} has no login: set it to the application (client) id of the "
            "Entra ID app registration that holds the Partner Center API permission."
        )
    found = {
        name: parse.optional_text(extras.get(name))
        for name in ("refresh_token", "credential_store", "username", "user_password")
    }
    client_secret = password or None
    mask_secrets(client_secret, found["refresh_token"], found["user_password"])
    if bool(found["username"]) != bool(found["user_password"]):
        raise PartnerCenterConfigError(
            f"Connection {conn_id!r}: the legacy password grant needs both extras username and "
            "user_password; set both or neither."
        )
    if require_credentials and not (found["refresh_token"] or found["credential_store"] or found["username"]):
        raise PartnerCenterConfigError(
            f"Connection {conn_id!r} has no way to obtain a user token: run `partner-center-login` "
            "and set extra credential_store (recommended) or refresh_token, or (legacy, no MFA) "
            "username and user_password."
        )
    if found["credential_store"]:
        from airflow_provider_partner.stores import validate_location

        validate_location(found["credential_store"])
    return {"client_id": client_id, "client_secret": client_secret, **found}


def _authority(extras: Mapping[str, Any]) -> dict[str, Any]:
    host = parse.optional_text(extras.get("authority_host")) or FIELDS["authority_host"].default
    tenant_id = parse.optional_text(extras.get("tenant_id")) or FIELDS["tenant_id"].default
    if "/" in tenant_id or " " in tenant_id:
        raise PartnerCenterConfigError(
            f"Connection extra tenant_id must be a tenant id (GUID) or domain, got {tenant_id!r}."
        )
    return {
        "authority_host": parse.https_url("authority_host", host, allow_path=False),
        "tenant_id": tenant_id,
    }


def _numbers(extras: Mapping[str, Any]) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    for declared in EXTRA_FIELDS:
        if declared.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
            number = parse.number(declared, extras.get(declared.name))
            numbers[declared.attribute] = int(number) if declared.kind is FieldKind.INTEGER else number
    return numbers


def settings_from_connection(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    schema: str | None = None,
    port: int | None = None,
    extras: Mapping[str, Any] | None = None,
    require_credentials: bool = True,
) -> PartnerCenterSettings:
    """
    Validate connection fields into :class:`PartnerCenterSettings` and mask its secrets.

    Which extras exist, their defaults and how numbers and booleans are read come from
    :mod:`airflow_provider_partner.hooks.connection_schema`.

    :param conn_id: connection id, used in messages.
    :param host: API base URL (``https://api.partner.microsoft.com`` when empty).
    :param login: application (client) id.
    :param password: client secret (empty for a public client).
    :param schema: optional URL scheme when ``host`` has none.
    :param port: optional port when ``host`` has none.
    :param extras: the connection's extra fields.
    :param require_credentials: refuse a connection with no refresh token, token cache or
        password (``partner-center-login`` reads connections before they have any).
    """
    values = _known_extras(conn_id, extras)
    credentials = _credentials(conn_id, login, password, values, require_credentials=require_credentials)
    authority = _authority(values)
    return PartnerCenterSettings(
        conn_id=conn_id,
        api_url=parse.api_url(host, port, schema),
        **credentials,
        **authority,
        scopes=parse.scopes(values.get("scope")),
        verify=parse.verify(values),
        **_numbers(values),
        proxies=parse.proxies(values.get("proxies")),
    )
