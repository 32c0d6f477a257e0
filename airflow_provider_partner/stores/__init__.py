"""
Where the provider keeps its state between task runs: token caches and watermarks.

One text value per location: ``variable://<key>`` (an Airflow Variable) or an ObjectStoragePath
URL (``file://``, ``s3://``, ``abfs://``, ``gs://``, ...). :func:`open_store` picks the store.
"""

from __future__ import annotations

from airflow_provider_partner.stores.base import TextStore, open_store, store_lease, validate_location
from airflow_provider_partner.stores.lease import LeaseGuarantee
from airflow_provider_partner.stores.objects import ObjectStorageTextStore
from airflow_provider_partner.stores.variables import VariableTextStore

__all__ = [
    "LeaseGuarantee",
    "ObjectStorageTextStore",
    "TextStore",
    "VariableTextStore",
    "open_store",
    "store_lease",
    "validate_location",
]
