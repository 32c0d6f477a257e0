"""Provider metadata read by Airflow's ``ProvidersManager`` through the entry point.

Airflow reads this without importing the hook, so the connection form below is declared
as data (``conn-fields`` / ``ui-field-behaviour``, the Airflow 3.2+ way).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_partner import __version__

_STRING = {"type": ["string", "null"]}
_SECRET = {"type": ["string", "null"], "format": "password"}


def _field(label: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "tenant_id": _field(
        "Tenant ID",
        "Entra ID tenant (directory) id or domain of the partner organisation (default: organizations).",
        _STRING,
    ),
    "authority_host": _field(
        "Authority host",
        "Entra ID authority host; change only for a sovereign cloud, e.g. https://login.microsoftonline.us.",
        {"type": ["string", "null"], "default": "https://login.microsoftonline.com"},
    ),
    "scope": _field(
        "Scope",
        "Delegated scope requested for the Partner Center API.",
        {"type": ["string", "null"], "default": "https://api.partner.microsoft.com/user_impersonation"},
    ),
    "refresh_token": _field(
        "Refresh token",
        "Initial refresh token from `partner-center-login` (device code sign-in with MFA). "
        "Rotated tokens are kept in the token cache below.",
        _SECRET,
    ),
    "token_cache": _field(
        "Token cache location",
        "Where the rotating MSAL token cache is persisted: `variable://<key>` for an Airflow "
        "Variable, or an ObjectStoragePath URL such as `file:///secure/partner-cache.json` or "
        "`s3://aws_default@bucket/partner/cache.json`. Written by `partner-center-login`.",
        _STRING,
    ),
    "username": _field(
        "Username (legacy password grant)",
        "Only for tenants without MFA on App+User calls; prefer the refresh token.",
        _STRING,
    ),
    "user_password": _field("User password (legacy password grant)", "See Username.", _SECRET),
    "ca_bundle": _field(
        "CA bundle",
        "Path to a PEM CA bundle used to verify TLS (API and authority).",
        _STRING,
    ),
    "verify": _field(
        "Verify TLS",
        "Verify TLS certificates. Never disable in production.",
        {"type": ["boolean", "null"], "default": True},
    ),
    "timeout": _field(
        "Timeout (seconds)",
        "Connect and read timeout of each HTTP request.",
        {"type": ["number", "null"], "default": 60},
    ),
    "max_retries": _field(
        "Max retries",
        "Retries of one request on 429, 5xx and connection errors.",
        {"type": ["integer", "null"], "default": 8},
    ),
    "backoff_factor": _field(
        "Backoff factor (seconds)",
        "Base of the exponential backoff between retries (jitter is added).",
        {"type": ["number", "null"], "default": 1.0},
    ),
    "max_retry_wait": _field(
        "Max wait per retry (seconds)",
        "Cap on one backoff or Retry-After wait.",
        {"type": ["number", "null"], "default": 120},
    ),
    "max_retry_time": _field(
        "Max total retry time (seconds)",
        "Cap on the total time spent on one request, retries and waits included.",
        {"type": ["number", "null"], "default": 900},
    ),
    "proxies": _field(
        "Proxies (JSON)",
        'Requests-style proxies, e.g. {"https": "http://proxy:3128"}.',
        _STRING,
    ),
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow registers (package name must equal the distribution)."""
    integration = "Microsoft Partner Center"
    return {
        "package-name": "airflow-provider-partner",
        "name": "Microsoft Partner Center",
        "description": "Referrals (leads and co-sell opportunities) from the Microsoft Partner Center API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://learn.microsoft.com/partner-center/developer/get-a-list-of-referrals",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_partner.hooks.partner_center"],
            }
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_partner.operators.referrals"],
            }
        ],
        "sensors": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_partner.sensors.referrals"],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_partner.triggers.referrals"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "partner_center",
                "hook-class-name": "airflow_provider_partner.hooks.partner_center.PartnerCenterHook",
                "hook-name": "Microsoft Partner Center",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Application (client) ID",
                        "password": "Client secret (empty for a public client)",
                    },
                    "placeholders": {
                        "host": "https://api.partner.microsoft.com",
                        "login": "00000000-0000-0000-0000-000000000000",
                    },
                },
            }
        ],
    }
