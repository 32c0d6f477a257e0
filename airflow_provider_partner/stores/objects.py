"""
A text value in a file or object store (``file://``, ``s3://``, ``abfs://``, ``gs://``, ...).

A reader never sees a half-written value. A local file is written to a temporary file beside it
(0600, in folders 0700), then renamed over it. An object store replaces an object atomically in
one upload (a reader gets the old object or the new one), so the value is uploaded in one
request: no temporary object, no copy, nothing left behind by a killed process.

The lease is ``flock`` on a local file (``local.py``) and numbered, exclusively created lease
records on an object store (``epochs.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_partner.stores.epochs import EpochLease
from airflow_provider_partner.stores.lease import LeaseGuarantee, lease_owner
from airflow_provider_partner.stores.local import file_lock, make_private_dirs

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = ["ObjectStorageTextStore", "make_private_dirs"]

log = logging.getLogger(__name__)

_LOCAL_PROTOCOLS = frozenset({"file", "local"})
#: Filesystems whose ``pipe_file(mode="create")`` is one request that fails if the object exists
#: (S3 ``If-None-Match``, Azure ``If-None-Match``, GCS ``ifGenerationMatch=0``; fsspec's memory
#: filesystem). Elsewhere the mode may be ignored, so no lease is claimed there.
_EXCLUSIVE_CREATE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "memory"})
#: What to install for a scheme no provider registers here (Airflow's ObjectStoragePath schemes).
_PROVIDER_OF_SCHEME = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "s3a": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
    "msgdrive": "apache-airflow-providers-microsoft-azure",
}


class ObjectStorageTextStore:
    """
    A text value in a file or object store, replaced atomically.

    :param url: an ObjectStoragePath URL (``file:///...``, ``s3://conn_id@bucket/key``, ...).
    :param what: how error messages name the setting.
    """

    def __init__(self, url: str, what: str = "Token cache location") -> None:
        self.location = url
        self.what = what
        self._resolved: tuple[ObjectStoragePath, Any, str] | None = None

    def _target(self) -> tuple[ObjectStoragePath, Any, str]:
        """The path, its filesystem and its key there (resolved once: the connection is read once)."""
        if self._resolved is None:
            self._resolved = _resolve(self.location, self.what)
        return self._resolved

    @property
    def _local(self) -> bool:
        return self._target()[0].protocol in _LOCAL_PROTOCOLS

    def load(self) -> str | None:
        """Return the stored text, or ``None`` when the object does not exist yet."""
        _, fs, key = self._target()
        try:
            data: bytes = fs.cat_file(key)
        except FileNotFoundError:
            return None
        return data.decode("utf-8") or None

    def save(self, data: str) -> None:
        """Replace the stored text with ``data``: one upload, or a local temporary file renamed."""
        path, fs, key = self._target()
        if not self._local:
            fs.pipe_file(key, data.encode("utf-8"))
            return
        make_private_dirs(os.path.dirname(key))
        tmp = os.path.join(os.path.dirname(key), f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            # A local token cache holds refresh tokens: create it readable by the owner only.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, key)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def lease(self, timeout: float) -> Iterator[LeaseGuarantee]:
        """
        Hold the refresh lease: ``flock`` for a local file, a numbered lease record elsewhere.

        :param timeout: how long to wait for another holder, seconds.
        """
        path, fs, key = self._target()
        if self._local:
            with file_lock(f"{key}.lock", timeout) as held:
                yield LeaseGuarantee.EXCLUSIVE if held else LeaseGuarantee.NONE
            return
        lease, owner = EpochLease(fs, key), lease_owner()
        if path.protocol not in _EXCLUSIVE_CREATE_PROTOCOLS or not lease.exclusive_creation():
            yield LeaseGuarantee.NONE
            return
        number = lease.acquire(owner, timeout)
        try:
            yield LeaseGuarantee.EXCLUSIVE if number is not None else LeaseGuarantee.NONE
        finally:
            if number is not None:
                try:
                    lease.release(number, owner)
                except Exception as err:  # noqa: BLE001 - an unreleased lease expires by itself
                    log.warning("Could not release the lease in %s (%s); it expires by itself", key, err)

    def __repr__(self) -> str:
        return f"ObjectStorageTextStore({self.location!r})"


def _resolve(location: str, what: str) -> tuple[ObjectStoragePath, Any, str]:
    """The path of ``location``, its filesystem and key; a missing connection or provider named."""
    from airflow.sdk import BaseHook, ObjectStoragePath

    from airflow_provider_partner.compat import connection_not_found_error
    from airflow_provider_partner.errors import PartnerCenterConfigError

    path = ObjectStoragePath(location)
    conn_id = urlsplit(location).username  # ObjectStoragePath's conn_id attribute is 3.2's
    if conn_id:
        # Without this check a misspelt connection id is no error: the Amazon provider, for one,
        # falls back to anonymous access and the store fails later with "access denied".
        try:
            BaseHook.get_connection(conn_id)
        except connection_not_found_error():
            raise PartnerCenterConfigError(
                f"{what} {location!r} names the Airflow connection {conn_id!r}, which is not "
                "defined here: create it (where the workers, the triggerer and partner-center-login "
                "read connections), or correct the id before the '@' of the URL."
            ) from None
    try:
        fs = path.fs
    except ValueError as err:
        if "No filesystem registered" not in str(err):
            raise
        package = _PROVIDER_OF_SCHEME.get(path.protocol, f"the provider that handles {path.protocol}://")
        raise PartnerCenterConfigError(
            f"{what} {location!r} is on {path.protocol}://, and no installed provider handles it: "
            f"install {package} wherever the provider runs (workers, triggerer, partner-center-login)."
        ) from None
    return path, fs, path.path
