"""The Variable store's former home: it lives in :mod:`airflow_provider_partner.stores.variables` now."""

from __future__ import annotations

from airflow_provider_partner.stores.variables import ENCRYPTED_PREFIX, VariableTextStore

__all__ = ["ENCRYPTED_PREFIX", "VariableTextStore"]
