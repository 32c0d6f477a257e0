"""
The ``partner_center`` connection, declared once as data.

Every extra field is one :class:`ExtraField`: its name, label and description, kind, default,
bounds, and whether the connection form shows it. From this one table come the extras the hook
accepts, the defaults of :class:`~airflow_provider_partner.hooks.connection.PartnerCenterSettings`,
how each value is parsed (by its kind), and the connection form (``conn-fields`` and
``ui-field-behaviour``) that ``get_provider_info`` hands to Airflow.

The form is lean: it shows the few extras a person must decide (:data:`FORM_FIELDS`), with no
default filled in, because Airflow's form saves the value of every field it shows: a pre-filled
default would be frozen into each connection and a later release could not improve it. Every
other extra (timeouts, retries, page caps, proxies, ...) is documented in ``docs/connection.md``
and set, when needed, in the form's "Extra Fields JSON".

This module is pure data and imports nothing of the provider: Airflow's providers manager loads
``get_provider_info`` (which imports it) while ``airflow.sdk`` itself is still importing, so even
``hooks.errors`` would be a circular import here. The parsers that raise are in
:mod:`.connection`.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALIASES",
    "DEFAULT_API_URL",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_SCOPE",
    "DEFAULT_TENANT",
    "EXTRA_FIELDS",
    "FIELDS",
    "FORM_FIELDS",
    "KNOWN_EXTRAS",
    "REFERRALS_PATH",
    "UI_FIELD_BEHAVIOUR",
    "ExtraField",
    "FieldKind",
    "conn_fields",
    "form_widgets",
    "hook_field_behaviour",
    "ui_field_behaviour",
]

DEFAULT_API_URL = "https://api.partner.microsoft.com"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://api.partner.microsoft.com/user_impersonation"
DEFAULT_TENANT = "organizations"
REFERRALS_PATH = "/v1.0/engagements/referrals"


class FieldKind(str, enum.Enum):
    """How an extra is entered in the form and parsed by the hook."""

    TEXT = "text"
    SECRET = "secret"  # noqa: S105 - the name of a kind of field, not a secret
    BOOL = "bool"
    NUMBER = "number"
    INTEGER = "integer"
    JSON = "json"
    URL = "url"


# The JSON schema type of each kind in the Airflow 3 connection form (``null``: the field may stay empty).
_FORM_TYPES = {
    FieldKind.TEXT: "string",
    FieldKind.SECRET: "string",
    FieldKind.BOOL: "boolean",
    FieldKind.NUMBER: "number",
    FieldKind.INTEGER: "integer",
    FieldKind.JSON: "string",
    FieldKind.URL: "string",
}


@dataclass(frozen=True)
class ExtraField:
    """
    One extra field of the ``partner_center`` connection.

    :param name: the key in the connection's extra JSON.
    :param label: the form label.
    :param description: the form help text (what the field does, not how it is tested).
    :param kind: how the value is entered and parsed.
    :param default: the value an unset (absent, null or empty) extra stands for (``None``: no value).
        It is never shown in the form nor saved into a connection.
    :param minimum: smallest accepted value of a number or integer.
    :param setting: the :class:`PartnerCenterSettings` attribute it fills (``None``: ``name``).
    :param in_form: whether the connection form shows it (a documented extra otherwise).
    """

    name: str
    label: str
    description: str
    kind: FieldKind = FieldKind.TEXT
    default: Any = None
    minimum: float | None = None
    setting: str | None = None
    in_form: bool = False

    @property
    def attribute(self) -> str:
        """The settings attribute this field fills."""
        return self.setting or self.name

    def form(self) -> dict[str, Any]:
        """
        The field's ``conn-fields`` entry (label, description, JSON schema), with no default.

        Airflow's form starts each field at its schema's default and saves it as it stands, so a
        default here would be saved into every new connection.
        """
        schema: dict[str, Any] = {"type": [_FORM_TYPES[self.kind], "null"]}
        if self.kind is FieldKind.SECRET:
            schema["format"] = "password"
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        return {"label": self.label, "description": self.description, "schema": schema}


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    # The form's fields, in form order: what a person must decide.
    ExtraField(
        "tenant_id",
        "Tenant ID",
        "Entra ID tenant of your partner organisation: its ID or a domain such as "
        "contoso.onmicrosoft.com. Empty: organizations (any work account).",
        default=DEFAULT_TENANT,
        in_form=True,
    ),
    ExtraField(
        "credential_store",
        "Credential store (token cache location)",
        "Where partner-center-login saved the sign-in, and the rotating tokens are kept: "
        "variable://KEY for an Airflow Variable (encrypted), or a file or object storage URL "
        "such as s3://aws_default@bucket/partner/cache.json.",
        setting="credential_store",
        in_form=True,
    ),
    ExtraField(
        "refresh_token",
        "Refresh token (bootstrap)",
        "Optional: a refresh token from partner-center-login, used only while the credential "
        "store holds none. Leave empty when the credential store is set.",
        FieldKind.SECRET,
        in_form=True,
    ),
    ExtraField(
        "ca_bundle",
        "CA bundle",
        "Optional: path of a PEM file of CA certificates, present on every worker, trusted for "
        "TLS to the API and to Entra ID (for a TLS-inspecting proxy).",
        setting="verify",
        in_form=True,
    ),
    # Documented extras: set in the form's Extra Fields JSON, or wherever the connection is defined.
    ExtraField(
        "authority_host",
        "Authority host",
        "Entra ID authority host; change only for a sovereign cloud or another Entra ID compatible "
        "authority.",
        FieldKind.URL,
        default=DEFAULT_AUTHORITY_HOST,
    ),
    ExtraField(
        "scope",
        "Scope",
        "Delegated scope requested for the Partner Center API.",
        default=DEFAULT_SCOPE,
        setting="scopes",
    ),
    ExtraField(
        "username",
        "Username (legacy password grant)",
        "Only for tenants without MFA on App+User calls; prefer the credential store.",
    ),
    ExtraField("user_password", "User password (legacy password grant)", "See Username.", FieldKind.SECRET),
    ExtraField(
        "verify",
        "Verify TLS",
        "Verify TLS certificates. Never disable in production.",
        FieldKind.BOOL,
        default=True,
    ),
    ExtraField(
        "timeout",
        "Timeout (seconds)",
        "Connect and read timeout of each HTTP request.",
        FieldKind.NUMBER,
        default=60.0,
        minimum=0.001,
    ),
    ExtraField(
        "attempt_timeout",
        "Attempt deadline (seconds)",
        "Wall-clock limit of one attempt (connect, TLS, headers and body): a server that trickles "
        "bytes cannot hold a request longer. max_retry_time bounds the whole call.",
        FieldKind.NUMBER,
        default=120.0,
        minimum=0.001,
    ),
    ExtraField(
        "max_response_mb",
        "Max response size (MB)",
        "Largest response body read, in MB, counted both as received and after decompression.",
        FieldKind.NUMBER,
        default=32.0,
        minimum=0.001,
    ),
    ExtraField(
        "max_pages",
        "Max pages per query",
        "Stop paging with an error after this many pages of one query (100 referrals each).",
        FieldKind.INTEGER,
        default=100_000,
        minimum=1,
    ),
    ExtraField(
        "max_empty_pages",
        "Max empty or repeated pages",
        "Stop paging with an error after this many empty or repeated pages in a row that still "
        "carry a nextLink (a server paging in circles).",
        FieldKind.INTEGER,
        default=10,
        minimum=1,
    ),
    ExtraField(
        "max_retries",
        "Max retries",
        "Retries of one request on 429, 5xx and connection errors.",
        FieldKind.INTEGER,
        default=8,
        minimum=0,
    ),
    ExtraField(
        "backoff_factor",
        "Backoff factor (seconds)",
        "Base of the exponential backoff between retries (jitter is added).",
        FieldKind.NUMBER,
        default=1.0,
        minimum=0,
    ),
    ExtraField(
        "max_retry_wait",
        "Max wait per retry (seconds)",
        "Cap on one backoff or Retry-After wait.",
        FieldKind.NUMBER,
        default=120.0,
        minimum=0,
    ),
    ExtraField(
        "max_retry_time",
        "Max total retry time (seconds)",
        "Cap on the total time spent on one request, retries and waits included.",
        FieldKind.NUMBER,
        default=900.0,
        minimum=0,
    ),
    ExtraField(
        "proxies",
        "Proxies (JSON)",
        'Requests-style proxies, e.g. {"https": "http://proxy:3128"}.',
        FieldKind.JSON,
    ),
)

#: The extras by name.
FIELDS: Mapping[str, ExtraField] = {field.name: field for field in EXTRA_FIELDS}
#: The extras the connection form shows, in form order.
FORM_FIELDS: tuple[ExtraField, ...] = tuple(field for field in EXTRA_FIELDS if field.in_form)
#: Former names still accepted, mapped to the current one. ``token_cache`` was renamed because
#: Airflow masks the value of every extra whose name contains "token": the location of the
#: cache (not a secret) was shown as ``***`` in every log line.
ALIASES: Mapping[str, str] = {"token_cache": "credential_store"}
#: Every extra the hook accepts; any other key is refused as a probable typo.
KNOWN_EXTRAS = frozenset(FIELDS) | frozenset(ALIASES)

#: How the form shows the standard fields (the extras come from :func:`conn_fields`). Port is shown
#: because the Test button of Airflow 3.3 (3.3.2 checked) refuses a connection without one (the list
#: sends ``Number(null)``, 0, which its ``_same_endpoint`` check takes for another destination).
#: The hook uses Port only with a bare host name; 443 is the API's port.
UI_FIELD_BEHAVIOUR: Mapping[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {
        "host": "API base URL",
        "port": "Port (enter 443)",
        "login": "Application (client) ID",
        "password": "Client secret (empty for a public client)",
    },
    "placeholders": {
        "host": DEFAULT_API_URL,
        "port": "443",
        "login": "00000000-0000-0000-0000-000000000000",
    },
}


def conn_fields() -> dict[str, dict[str, Any]]:
    """The ``conn-fields`` of the connection form, one entry per :data:`FORM_FIELDS` item."""
    return {field.name: field.form() for field in FORM_FIELDS}


def ui_field_behaviour() -> dict[str, Any]:
    """A fresh copy of :data:`UI_FIELD_BEHAVIOUR` (callers may change theirs)."""
    return copy.deepcopy(dict(UI_FIELD_BEHAVIOUR))


def hook_field_behaviour() -> dict[str, Any]:
    """
    :data:`UI_FIELD_BEHAVIOUR` as a hook's ``get_ui_field_behaviour`` returns it (Airflow 3.1).

    The provider info spells its keys as provider.yaml does (``hidden-fields``); the hook method
    Airflow 3.1 calls spells them as Python names (``hidden_fields``).
    """
    return {key.replace("-", "_"): value for key, value in ui_field_behaviour().items()}


# The WTForms field class of each kind in Airflow 3.1's form: the api-server of 3.1 accepts only
# these four classes (it stands in for them when WTForms is not installed), so numbers, URLs and
# JSON are text fields there; the hook parses them by kind either way.
_WIDGET_CLASSES = {
    FieldKind.SECRET: "PasswordField",
    FieldKind.BOOL: "BooleanField",
    FieldKind.INTEGER: "IntegerField",
}


def form_widgets() -> dict[str, Any]:
    """
    The form's extras as WTForms fields, for Airflow 3.1's form (``get_connection_form_widgets``).

    Airflow 3.2+ reads :func:`conn_fields` from the provider info instead and never calls this.
    The imports are those Airflow 3.1's api-server provides (or stands in for) while it reads
    the hooks, so they are done here, when it asks.
    """
    import wtforms
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for field in FORM_FIELDS:
        class_name = _WIDGET_CLASSES.get(field.kind, "StringField")
        secret = field.kind is FieldKind.SECRET
        # No default, as in conn_fields(): the form would save it into every connection.
        widgets[field.name] = getattr(wtforms, class_name)(
            lazy_gettext(field.label),
            validators=[Optional()],
            description=field.description,
            widget=BS3PasswordFieldWidget() if secret else BS3TextFieldWidget(),
        )
    return widgets
