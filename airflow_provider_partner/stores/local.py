"""
Local files of the stores: owner-only folders, and the ``flock`` lease of a ``file://`` store.

``flock`` is exclusive between the processes of one machine (and on NFS v4 between machines) and
released by the kernel when its holder dies, so a local store needs no expiring lease record.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from airflow_provider_partner.stores.lease import lease_pause

__all__ = ["file_lock", "make_private_dirs"]


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
def file_lock(lock_path: str, timeout: float) -> Iterator[bool]:
    """
    Hold an exclusive ``flock`` on ``lock_path`` (created 0600) for a ``with`` block.

    :param lock_path: the lock file, beside the store's file.
    :param timeout: how long to wait for another holder, seconds; yields whether it is held.
    """
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
