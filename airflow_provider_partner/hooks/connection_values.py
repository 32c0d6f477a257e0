"""
Read one value of a ``partner_center`` connection: https URLs, booleans, numbers, proxies, scopes,
``verify``.

Each reader takes the raw value as Airflow stores it (text, or JSON types from the extra), and
raises :class:`~.errors.PartnerCenterConfigError` naming the field and the fix;
:mod:`.connection` combines them into the settings.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.hooks.connection_schema import (
    DEFAULT_API_URL,
    DEFAULT_SCOPE,
    FIELDS,
    REFERRALS_PATH,
    ExtraField,
    FieldKind,
)
from airflow_provider_partner.hooks.urls import origin, redact_url

__all__ = [
    "api_url",
    "boolean",
    "https_url",
    "is_empty",
    "number",
    "optional_text",
    "proxies",
    "scopes",
    "verify",
]

_HTTPS_PORT = 443
_PROXY_KEYS = {"http", "https", "all", "no_proxy"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def https_url(name: str, value: str, *, allow_path: bool) -> str:
    """
    Validate an https URL field; return it normalised (scheme added, no trailing slash).

    :param name: the field, for messages.
    :param value: the field's value.
    :param allow_path: whether a path prefix is allowed (the API host) or not (the authority).
    """
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


def api_url(host: str | None, port: int | None, schema: str | None) -> str:
    """
    The API URL from the connection's host, port and schema (the default when host is empty).

    :param host: the host field.
    :param port: the port field, used only with a bare host name (443, the https port, adds nothing:
        the form asks for it so that Airflow 3.3's Test button finds a port).
    :param schema: the schema field (a URL scheme when host has none).
    """
    if not host:
        return DEFAULT_API_URL
    text = host.strip()
    if "://" not in text and schema and schema.strip().lower() in {"http", "https"}:
        text = f"{schema.strip().lower()}://{text}"
    if port and port != _HTTPS_PORT and "://" not in text:
        text = f"{text}:{port}"
    return https_url("host", text, allow_path=True)


def is_empty(value: Any) -> bool:
    """Whether a field is unset (``None`` or an empty string)."""
    return value is None or value == ""


def optional_text(value: Any) -> str | None:
    """A text field stripped, or ``None`` when it is empty."""
    if is_empty(value):
        return None
    text = str(value).strip()
    return text or None


def boolean(name: str, value: Any, default: bool) -> bool:
    """
    A boolean extra: a bool, or true/false, 1/0, yes/no, on/off.

    :param name: the extra, for messages.
    :param value: its value.
    :param default: what an empty value stands for.
    """
    if is_empty(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PartnerCenterConfigError(f"Connection extra {name} must be true or false, got {value!r}.")


def number(field: ExtraField, value: Any) -> float:
    """
    A number extra, checked against the schema's kind and minimum.

    :param field: the declared extra.
    :param value: its value.
    """
    # An empty value stands for the declared default; the declared minimum is checked.
    if is_empty(value):
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


def proxies(value: Any) -> dict[str, str]:
    """The ``proxies`` extra (a JSON object or a mapping) as a requests-style mapping."""
    if is_empty(value):
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


def scopes(value: Any) -> tuple[str, ...]:
    """The ``scope`` extra (a list, or a space- or comma-separated string) as a tuple."""
    if is_empty(value):
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


def verify(extras: Mapping[str, Any]) -> bool | str:
    """The ``requests`` verify value from extras ``verify`` and ``ca_bundle``."""
    ca_bundle = optional_text(extras.get("ca_bundle"))
    verify = boolean("verify", extras.get("verify"), FIELDS["verify"].default)
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
