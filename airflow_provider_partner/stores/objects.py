"""
A text value in a file or object store (``file://``, ``s3://``, ``abfs://``, ``gs://``, ...).

Written to a temporary object beside the target, then moved over it, so a reader never sees a
half-written value. The lease is ``flock`` on a local file and an exclusively created object
elsewhere (see ``base.py`` for what each store guarantees).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from airflow_provider_partner.stores.lease import (
    LeaseGuarantee,
    lease_expired,
    lease_owner,
    lease_pause,
    lease_text,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = ["ObjectStorageTextStore", "make_private_dirs"]


class ObjectStorageTextStore:
    """
    A text value in a file or object store, replaced by write-to-temporary-then-move.

    :param url: an ObjectStoragePath URL (``file:///...``, ``s3://conn_id@bucket/key``, ...).
    """

    def __init__(self, url: str) -> None:
        self.location = url

    def _path(self) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.location)

    def load(self) -> str | None:
        """Return the stored text, or ``None`` when the object does not exist yet."""
        path = self._path()
        if not path.exists():
            return None
        text: str = path.read_text(encoding="utf-8")
        return text or None

    def save(self, data: str) -> None:
        """Write ``data`` to a temporary object beside the target, then move it over the target."""
        path = self._path()
        local = path.protocol in ("file", "local")
        if local:
            make_private_dirs(path.parent.path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            if local:
                # A local token cache holds refresh tokens: create it readable by the owner only.
                fd = os.open(tmp.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                os.replace(tmp.path, path.path)
            else:
                tmp.write_text(data, encoding="utf-8")
                tmp.move(path)
        except BaseException:
            if tmp.exists():
                tmp.unlink()
            raise

    @contextlib.contextmanager
    def lease(self, timeout: float) -> Iterator[LeaseGuarantee]:
        """
        Hold the refresh lease: ``flock`` for a local file, an exclusively created object elsewhere.

        :param timeout: how long to wait for another holder, seconds.
        """
        path = self._path()
        if path.protocol in ("file", "local"):
            with _file_lock(f"{path.path}.lock", timeout) as held:
                yield LeaseGuarantee.EXCLUSIVE if held else LeaseGuarantee.NONE
            return
        lease = path.parent / f"{path.name}.lease"
        owner = lease_owner()
        held = _create_exclusive(lease, owner, timeout)
        try:
            yield LeaseGuarantee.EXCLUSIVE if held else LeaseGuarantee.NONE
        finally:
            if held:
                with contextlib.suppress(Exception):  # an unreleased lease expires by itself
                    lease.unlink()

    def __repr__(self) -> str:
        return f"ObjectStorageTextStore({self.location!r})"


def make_private_dirs(folder: str) -> None:
    """
    Create a local ``folder`` and its missing parents readable by the owner only (0700).

    The mode is set after creating each folder: ``mkdir``'s is masked by the umask, and
    ``os.makedirs`` gives intermediate folders the umask's default (0777 under umask 000).
    Folders that already exist, or that another process creates meanwhile, are left as they are.

    :param folder: an absolute local path.
    """
    missing: list[str] = []
    current = os.path.abspath(folder)
    while not os.path.isdir(current) and os.path.dirname(current) != current:
        missing.append(current)
        current = os.path.dirname(current)
    for item in reversed(missing):
        try:
            os.mkdir(item, 0o700)
        except FileExistsError:
            if not os.path.isdir(item):
                raise
            continue
        os.chmod(item, 0o700)


@contextlib.contextmanager
def _file_lock(lock_path: str, timeout: float) -> Iterator[bool]:
    import fcntl

    make_private_dirs(os.path.dirname(lock_path))
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        attempt = 0
        while not (held := _try_flock(fd)) and time.monotonic() < deadline:
            lease_pause(attempt)
            attempt += 1
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _create_exclusive(lease: ObjectStoragePath, owner: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            with lease.open("xb") as handle:  # type: ignore[no-untyped-call]
                handle.write(lease_text(owner).encode())
            return True
        except FileExistsError:
            with contextlib.suppress(Exception):
                if lease_expired(lease.read_text()):
                    lease.unlink()
                    continue
        except (ValueError, NotImplementedError, TypeError):
            return False  # no exclusive creation on this filesystem: no lease
        if time.monotonic() >= deadline:
            return False
        lease_pause(attempt)
        attempt += 1
