"""Provider metadata read by Airflow's ``ProvidersManager`` through the entry point.

Airflow reads this without importing the hook, so the connection form is declared as data
(``conn-fields`` / ``ui-field-behaviour``, the Airflow 3.2+ way), taken from
:mod:`airflow_provider_partner.hooks.connection_schema`, which imports neither ``requests`` nor
``msal``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_partner import __version__
from airflow_provider_partner.hooks.connection_schema import conn_fields, ui_field_behaviour

#: The extras of the connection form, built from the one connection schema.
CONN_FIELDS: dict[str, dict[str, Any]] = conn_fields()
_LINEAGE = "airflow_provider_partner.hooks.lineage"


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
        # The API endpoint as an asset (hook lineage): URI checks, factory and OpenLineage naming.
        "asset-uris": [
            {
                "schemes": ["partnercenter"],
                "handler": f"{_LINEAGE}.sanitize_uri",
                "factory": f"{_LINEAGE}.create_asset",
                "to_openlineage_converter": f"{_LINEAGE}.convert_asset_to_openlineage",
            }
        ],
        "extra-links": [
            "airflow_provider_partner.links.ReferralsWorkspaceLink",
            "airflow_provider_partner.links.NewestReferralLink",
        ],
        "connection-types": [
            {
                "connection-type": "partner_center",
                "hook-class-name": "airflow_provider_partner.hooks.partner_center.PartnerCenterHook",
                "hook-name": "Microsoft Partner Center",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
    }
