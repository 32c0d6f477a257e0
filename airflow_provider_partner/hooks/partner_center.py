"""Hook for the Microsoft Partner Center Referrals API (placeholder until the hook lands)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook


class PartnerCenterHook(BaseHook):
    """Interact with the Microsoft Partner Center Referrals API."""

    conn_name_attr = "partner_center_conn_id"
    default_conn_name = "partner_center_default"
    conn_type = "partner_center"
    hook_name = "Microsoft Partner Center"

    def __init__(self, partner_center_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partner_center_conn_id = partner_center_conn_id

    def get_conn(self) -> Any:
        """Return an authenticated session (not implemented yet)."""
        raise NotImplementedError
