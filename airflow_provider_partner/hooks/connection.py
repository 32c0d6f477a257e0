"""
Turn an Airflow Connection of type ``partner_center`` into validated, frozen settings.

All parsing and validation happens here, once, so the rest of the hook works with typed values
and every mistake in a connection is reported with the field name and the fix. Which extras
exist, their defaults and kinds are declared in :mod:`.connection_schema`; this module adds the
rules that tie fields together (``ca_bundle`` with ``verify``, the credential combinations).
Secrets are registered with Airflow's secrets masker as soon as they are read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_partner.hooks.connection_schema import (
    ALIASES,
    DEFAULT_API_URL,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_SCOPE,
    EXTRA_FIELDS,
    FIELDS,
    KNOWN_EXTRAS,
    REFERRALS_PATH,
    ExtraField,
    FieldKind,
)
from airflow_provider_partner.hooks.errors import PartnerCenterConfigError
from airflow_provider_partner.hooks.urls import origin, redact_url

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_SCOPE",
    "REFERRALS_PATH",
    "PartnerCenterSettings",
    "mask_secrets",
    "settings_from_connection",
]

_PROXY_KEYS = {"http", "https", "all", "no_proxy"}
#: Older connection forms stored each extra under this prefix; newer ones use the bare name.
_LEGACY_PREFIX = "extra__partner_center__"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def mask_secrets(*values: str | None) -> None:
    """
    Register values with Airflow's secrets masker (task logs and the supervisor's).

    :param values: secrets; empty values are skipped.
    """
    from airflow.sdk.log import mask_secret

    for value in values:
        if value:
            mask_secret(value)


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


def _https_url(name: str, value: str, *, allow_path: bool) -> str:
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    try:
        origin(text)
        parts = urlsplit(text)
    except ValueError as err:  # UnsafeURLError included
        raise PartnerCenterConfigError(f"Connection field {name} is not a usable URL: {err}") from None
    if parts.scheme.lower() != "https":
        raise PartnerCenterConfigError(
            f"Connection field {name} must be an https URL, got scheme {parts.scheme!r} "
            f"({redact_url(text)}): the bearer token and credentials are never sent over plain http. Use https://..."
        )
    if not parts.hostname:
        raise PartnerCenterConfigError(f"Connection field {name} has no host name: {redact_url(value)!r}.")
    if parts.username or parts.password:
        raise PartnerCenterConfigError(
            f"Connection field {name} must not embed credentials in the URL; use the login/password fields."
        )
    if parts.query or parts.fragment:
        raise PartnerCenterConfigError(
            f"Connection field {name} must not carry a query or fragment: {redact_url(text)}"
        )
    path = parts.path.rstrip("/")
    if path and not allow_path:
        raise PartnerCenterConfigError(
            f"Connection field {name} must be a bare host URL such as https://login.microsoftonline.com "
            f"(no path), got {redact_url(text)}."
        )
    if path.endswith(REFERRALS_PATH):
        # Users often paste the full collection URL; the hook appends it itself.
        path = path[: -len(REFERRALS_PATH)]
    return f"https://{parts.netloc}{path}"


def _api_url(host: str | None, port: int | None, schema: str | None) -> str:
    if not host:
        return DEFAULT_API_URL
    text = host.strip()
    if "://" not in text and schema and schema.strip().lower() in {"http", "https"}:
        text = f"{schema.strip().lower()}://{text}"
    if port and "://" not in text:
        text = f"{text}:{port}"
    return _https_url("host", text, allow_path=True)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _text(value: Any) -> str | None:
    if _empty(value):
        return None
    text = str(value).strip()
    return text or None


def _bool(name: str, value: Any, default: bool) -> bool:
    if _empty(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PartnerCenterConfigError(f"Connection extra {name} must be true or false, got {value!r}.")


def _number(field: ExtraField, value: Any) -> float:
    # An empty value stands for the declared default; the declared minimum is checked.
    if _empty(value):
        return float(field.default)
    integer = field.kind is FieldKind.INTEGER
    minimum = field.minimum if field.minimum is not None else -math.inf
    try:
        # bool is an int subclass: true/false in a number field is a mistake, not 1/0.
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or number < minimum or (integer and number != int(number)):
        kind = "an integer" if integer else "a number"
        raise PartnerCenterConfigError(
            f"Connection extra {field.name} must be {kind} >= {minimum:g}, got {value!r}."
        )
    return number


def _proxies(value: Any) -> dict[str, str]:
    if _empty(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise PartnerCenterConfigError(
                f'Connection extra proxies must be a JSON object such as {{"https": "http://proxy:3128"}}; '
                f"it is not valid JSON ({err.msg} at char {err.pos})."
            ) from None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PartnerCenterConfigError(
            'Connection extra proxies must map "http"/"https" to proxy URLs, e.g. {"https": "http://proxy:3128"}.'
        )
    unknown = sorted(set(value) - _PROXY_KEYS)
    if unknown:
        raise PartnerCenterConfigError(
            f"Connection extra proxies has unknown keys {unknown}; use {sorted(_PROXY_KEYS)}."
        )
    return dict(value)


def _scopes(value: Any) -> tuple[str, ...]:
    if _empty(value):
        return (FIELDS["scope"].default,)
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    scopes = tuple(str(item).strip() for item in items if str(item).strip())
    reserved = sorted({"openid", "profile", "offline_access"} & set(scopes))
    if not scopes or reserved:
        raise PartnerCenterConfigError(
            f"Connection extra scope must list the API scope(s) only (got {value!r}); MSAL adds "
            f"openid/profile/offline_access itself and refuses them ({reserved}). Default: {DEFAULT_SCOPE}"
        )
    return scopes


def _verify(extras: Mapping[str, Any]) -> bool | str:
    ca_bundle = _text(extras.get("ca_bundle"))
    verify = _bool("verify", extras.get("verify"), FIELDS["verify"].default)
    if ca_bundle:
        path = os.path.expanduser(ca_bundle)
        if not os.path.isfile(path):
            raise PartnerCenterConfigError(
                f"Connection extra ca_bundle points to {path}, which is not a readable file; "
                "give the path of a PEM bundle present on every worker, or remove the extra."
            )
        if not verify:
            raise PartnerCenterConfigError(
                "Connection extras ca_bundle and verify=false contradict each other; keep only one."
            )
        return path
    return verify


def _known_extras(conn_id: str, extras: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(extras or {})
    for key in list(values):
        if key.startswith(_LEGACY_PREFIX):
            values.setdefault(key.removeprefix(_LEGACY_PREFIX), values.pop(key))
    for alias, name in ALIASES.items():
        if alias in values:
            old = values.pop(alias)
            if not _empty(values.get(name)) and not _empty(old) and values[name] != old:
                raise PartnerCenterConfigError(
                    f"Connection {conn_id!r} sets both extra {name} and its former name {alias} to "
                    f"different values; keep only {name}."
                )
            if _empty(values.get(name)):
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
        name: _text(extras.get(name))
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
        from airflow_provider_partner.hooks.stores import validate_location

        validate_location(found["credential_store"])
    return {"client_id": client_id, "client_secret": client_secret, **found}


def _authority(extras: Mapping[str, Any]) -> dict[str, Any]:
    host = _text(extras.get("authority_host")) or FIELDS["authority_host"].default
    tenant_id = _text(extras.get("tenant_id")) or FIELDS["tenant_id"].default
    if "/" in tenant_id or " " in tenant_id:
        raise PartnerCenterConfigError(
            f"Connection extra tenant_id must be a tenant id (GUID) or domain, got {tenant_id!r}."
        )
    return {"authority_host": _https_url("authority_host", host, allow_path=False), "tenant_id": tenant_id}


def _numbers(extras: Mapping[str, Any]) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    for declared in EXTRA_FIELDS:
        if declared.kind in (FieldKind.NUMBER, FieldKind.INTEGER):
            number = _number(declared, extras.get(declared.name))
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
        api_url=_api_url(host, port, schema),
        **credentials,
        **authority,
        scopes=_scopes(values.get("scope")),
        verify=_verify(values),
        **_numbers(values),
        proxies=_proxies(values.get("proxies")),
    )
