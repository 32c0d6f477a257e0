"""The stores' former home: they live in :mod:`airflow_provider_partner.stores` now."""

from __future__ import annotations

from airflow_provider_partner.stores.base import (
    TextStore,
    open_store,
    store_lease,
    validate_location,
)
from airflow_provider_partner.stores.lease import LeaseGuarantee
from airflow_provider_partner.stores.objects import ObjectStorageTextStore

__all__ = [
    "LeaseGuarantee",
    "ObjectStorageTextStore",
    "TextStore",
    "open_store",
    "store_lease",
    "validate_location",
]
