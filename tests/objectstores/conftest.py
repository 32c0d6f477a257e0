"""The object-store servers' fixtures (defined in servers.py, where other test packages import them)."""

from __future__ import annotations

from objectstores.servers import abfs_store, gs_store, object_store, s3_store

__all__ = ["abfs_store", "gs_store", "object_store", "s3_store"]
