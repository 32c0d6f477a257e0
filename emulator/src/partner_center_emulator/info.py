"""``Emulator.info``: what a client needs to reach one running emulator, Airflow connection included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from partner_center_emulator.identity import Identity
from partner_center_emulator.listing import REFERRALS


def client_info(
    identity: Identity, api_url: str, ca_file: Path, refresh_token: str, admin_token: str
) -> dict[str, Any]:
    """
    The ``info`` dict of an emulator serving at ``api_url`` (see ``docs/emulator.md``).

    :param identity: the tenant (ids, client secret, the Referral Admin's sign-in).
    :param api_url: ``https://host:port``.
    :param ca_file: the CA certificate clients trust.
    :param refresh_token: a refresh token of the Referral Admin.
    :param admin_token: the admin endpoints' bearer token of this start.
    """
    admin = identity.users["admin"]
    conn = {
        "conn_type": "partner_center",
        "host": api_url,
        "login": identity.client_id,
        "password": identity.client_secret,
        "extra": {
            "tenant_id": identity.tenant_id,
            "authority_host": api_url,
            "refresh_token": refresh_token,
            "ca_bundle": str(ca_file),
            # As in production: the rotating token cache is kept in a credential store.
            "credential_store": f"file://{ca_file.with_suffix('.credentials.json')}",
        },
    }
    return {
        "api_url": api_url,
        "referrals_url": api_url + REFERRALS,
        "authority_host": api_url,
        "tenant_id": identity.tenant_id,
        "authority": f"{api_url}/{identity.tenant_id}",
        "client_id": identity.client_id,
        "client_secret": identity.client_secret,
        "refresh_token": refresh_token,
        "username": admin.username,
        "password": admin.password,
        "ca_bundle": str(ca_file),
        "admin_url": f"{api_url}/_emulator",
        "admin_token": admin_token,
        "airflow_conn": json.dumps(conn),
    }
