"""
Durable one-value text stores: the serialized MSAL token caches and the triggers' watermarks.

Partner Center refresh tokens rotate: every refresh returns a new one, and the old one may stop
working. A scheduled job therefore has to keep the *newest* token cache somewhere that outlives
the task process; the event trigger likewise keeps its watermark between triggerer restarts.
Both are one text value, kept in one of two stores chosen by a location (the connection extra
``token_cache``, the trigger's ``watermark_location``):

- ``variable://<key>``: an Airflow Variable (put "token" or "secret" in the key so the UI
  masks it), :class:`~.variables.VariableTextStore`. Inside a task it goes through the Task
  SDK (the API server); outside a task (the ``partner-center-login`` command, scripts, tests)
  through the metadata database.
- any ``ObjectStoragePath`` URL (``file:///...``, ``s3://conn_id@bucket/key``, ``gs://...``):
  a local file is written beside the target and renamed over it, an object replaced in one upload,
  so a reader never sees a half-written cache (``objects.py``).

Concurrency: a token cache is refreshed by one task at a time where the store allows it.
:meth:`TextStore.lease` is the critical section the token provider holds while it re-reads the
cache, refreshes and saves; what it guarantees depends on the store (:class:`LeaseGuarantee`):

- ``file://``: ``flock`` on a ``<name>.lock`` file beside the cache: exclusive between the
  processes of one machine (and on NFS v4 between machines); released by the kernel when its
  holder dies.
- ``variable://`` outside a task (metadata database): a lease row (Variable ``<key>.lease``)
  inserted under the table's unique key, i.e. compare-and-swap: exclusive.
- ``variable://`` inside a task (Task SDK, no conditional write): write the lease, wait, read it
  back: *best effort* (two tasks can rarely both believe they hold it).
- ``s3://``, ``abfs://``, ``gs://``: numbered lease records ``<key>.lease/<n>``, each created at
  most once by a conditional upload (``epochs.py``): exclusive, with no takeover of an expired
  record; other fsspec filesystems: none.

Every lease expires (a dead holder never blocks the others for long). Where the lease is only
best effort or absent, the token provider converges anyway: a refresh token refused after a
lost race is retried from the winner's cache once it is saved (see ``credential.py``).

A ``variable://`` token cache is kept encrypted with Airflow's ``[core] fernet_key`` (see
``variables.py``). This module holds the protocol, the locations and :func:`open_store`;
``objects.py`` the file/object-storage store, ``variables.py`` the Variable store, ``lease.py``
the lease record.
"""

from __future__ import annotations

import contextlib
from typing import Protocol
from urllib.parse import urlsplit

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.stores.lease import LeaseGuarantee

__all__ = ["TextStore", "open_store", "store_lease", "validate_location"]

VARIABLE_SCHEME = "variable"


class TextStore(Protocol):
    """Where one text value (a token cache, a watermark) lives between task runs."""

    location: str

    def load(self) -> str | None:
        """Return the stored text, or ``None`` when nothing is stored yet."""

    def save(self, data: str) -> None:
        """Replace the stored text with ``data``."""


def store_lease(store: TextStore, timeout: float) -> contextlib.AbstractContextManager[LeaseGuarantee]:
    """
    Hold the store's lease (its refresh critical section) for a ``with`` block.

    :param store: the store; one without a ``lease`` method gives :attr:`LeaseGuarantee.NONE`.
    :param timeout: how long to wait for another holder, seconds; after it the block runs with
        :attr:`LeaseGuarantee.NONE` (a stuck holder must not stop every task).
    """
    lease = getattr(store, "lease", None)
    if lease is None:
        return contextlib.nullcontext(LeaseGuarantee.NONE)
    manager: contextlib.AbstractContextManager[LeaseGuarantee] = lease(timeout)
    return manager


def validate_location(location: str, what: str = "Token cache location") -> str:
    """
    Check that ``location`` names a supported store; return it unchanged.

    :param location: ``variable://<key>`` or an ObjectStoragePath URL (``file:///abs/path``, ...).
    :param what: how error messages name the setting.
    """
    parts = urlsplit(location)
    if parts.scheme == VARIABLE_SCHEME:
        key = location[len("variable://") :]
        if not key or "/" in key:
            raise PartnerCenterConfigError(
                f"{what} {location!r} must be variable://<key> with a non-empty key "
                "and no slash, e.g. variable://partner_center_credentials."
            )
        return location
    if not parts.scheme or len(parts.scheme) == 1:  # "C:\..." is a Windows path, not a scheme
        raise PartnerCenterConfigError(
            f"{what} {location!r} needs a scheme: variable://<key>, file:///<absolute path> "
            "or an object store URL such as s3://<conn_id>@<bucket>/<key>."
        )
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise PartnerCenterConfigError(
            f"{what} {location!r} must be an absolute file URL: file:///<absolute path>."
        )
    if location.endswith("/"):
        raise PartnerCenterConfigError(f"{what} {location!r} must name a file, not a folder.")
    return location


def open_store(location: str, what: str = "Token cache location") -> TextStore:
    """
    Return the store for a location (a ``credential_store`` extra, a ``watermark_location``).

    :param location: ``variable://<key>`` or an ObjectStoragePath URL.
    :param what: how error messages name the setting.
    """
    validate_location(location, what)
    if location.startswith("variable://"):
        from airflow_provider_partner.stores.variables import VariableTextStore

        # The UI shows the Variable's description: a watermark must not be labelled a token cache.
        cache = what == "Token cache location"
        held = "MSAL token cache" if cache else what.removesuffix(" location")
        return VariableTextStore(
            location[len("variable://") :], f"{held} of airflow-provider-partner", encrypt=cache
        )
    from airflow_provider_partner.stores.objects import ObjectStorageTextStore

    return ObjectStorageTextStore(location, what)
