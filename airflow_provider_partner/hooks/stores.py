"""
Durable one-value text stores: the serialized MSAL token caches and the triggers' watermarks.

Partner Center refresh tokens rotate: every refresh returns a new one, and the old one may stop
working. A scheduled job therefore has to keep the *newest* token cache somewhere that outlives
the task process; the event trigger likewise keeps its watermark between triggerer restarts.
Both are one text value, kept in one of two stores chosen by a location (the connection extra
``token_cache``, the trigger's ``watermark_location``):

- ``variable://<key>``: an Airflow Variable (put "token" or "secret" in the key so the UI
  masks it), :class:`~.variable_store.VariableTextStore`. Inside a task it goes through the Task
  SDK (the API server); outside a task (the ``partner-center-login`` command, scripts, tests)
  through the metadata database.
- any ``ObjectStoragePath`` URL (``file:///...``, ``s3://conn_id@bucket/key``, ``gs://...``):
  written to a temporary key next to the target, then moved over it, so a reader never sees a
  half-written cache.

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
- other object stores: an exclusively created ``<key>.lease`` object where the filesystem
  supports exclusive creation (``xb``; e.g. ``s3fs`` with conditional writes), else none.

Every lease expires (a dead holder never blocks the others for long). Where the lease is only
best effort or absent, the token provider converges anyway: a refresh token refused after a
lost race is retried from the winner's cache once it is saved (see ``credential.py``).

A ``variable://`` token cache is kept encrypted with Airflow's ``[core] fernet_key`` (see
``variable_store.py``). This module holds the protocol, the locations, the lease helpers both
stores use, and the file/object-storage store.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from airflow_provider_partner.hooks.errors import PartnerCenterConfigError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = [
    "LeaseGuarantee",
    "ObjectStorageTextStore",
    "TextStore",
    "open_store",
    "store_lease",
    "validate_location",
]

log = logging.getLogger(__name__)

VARIABLE_SCHEME = "variable"
#: How long a lease is honoured; a holder refreshes within seconds, so a longer one is a dead holder.
LEASE_SECONDS = 30.0


class LeaseGuarantee(str, enum.Enum):
    """What holding a store's lease guarantees."""

    #: No other cooperating process holds it at the same time.
    EXCLUSIVE = "exclusive"
    #: Usually exclusive; two holders are possible in a narrow race (no conditional write).
    BEST_EFFORT = "best-effort"
    #: Nothing: the store has no way to coordinate (convergence relies on retries alone).
    NONE = "none"


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


def lease_owner() -> str:
    """Who holds a lease, for a person reading it: host, process, and a unique part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_pause(attempt: int) -> None:
    """Wait before the next try: jittered, growing, capped, so waiters do not poll in lockstep."""
    time.sleep(random.uniform(0.005, min(0.25, 0.01 * 2**attempt)))


def lease_text(owner: str) -> str:
    """The stored value of a lease: its owner and when it expires (:data:`LEASE_SECONDS` from now)."""
    return json.dumps({"owner": owner, "expires": time.time() + LEASE_SECONDS})


def lease_expired(text: str | None) -> bool:
    """Whether a stored lease value has expired (an unreadable one counts as expired)."""
    try:
        return float(json.loads(text or "{}").get("expires", 0)) < time.time()
    except (ValueError, TypeError, AttributeError):
        return True


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


def open_store(location: str, what: str = "Token cache location") -> TextStore:
    """
    Return the store for a location (a ``credential_store`` extra, a ``watermark_location``).

    :param location: ``variable://<key>`` or an ObjectStoragePath URL.
    :param what: how error messages name the setting.
    """
    validate_location(location, what)
    if location.startswith("variable://"):
        from airflow_provider_partner.hooks.variable_store import VariableTextStore

        # The UI shows the Variable's description: a watermark must not be labelled a token cache.
        cache = what == "Token cache location"
        held = "MSAL token cache" if cache else what.removesuffix(" location")
        return VariableTextStore(
            location[len("variable://") :], f"{held} of airflow-provider-partner", encrypt=cache
        )
    return ObjectStorageTextStore(location)
