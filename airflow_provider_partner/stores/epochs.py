"""
The lease of an object-store location: numbered lease records, each created at most once.

Object stores (S3, Azure Blob Storage / ADLS, GCS) can create an object only if it does not exist
(S3 ``If-None-Match: *``, Azure ``If-None-Match: *``, GCS ``ifGenerationMatch=0``; fsspec's
``pipe_file(mode="create")``), but a lease kept in *one* object needs a second conditional operation to
take it over from a dead holder: read the expired record, then delete or overwrite it. Done
without a condition, two waiters can both see it expired, both delete it and both create their own.

So there is no takeover. The lease of ``<key>`` is a folder of records ``<key>.lease/<n>``
(``n`` zero-padded): the newest record is the lease's state. To acquire, a waiter reads the
newest, ``n``; if it is released or expired (or there is none), it creates ``n + 1`` exclusively.
Of all waiters that saw ``n``, exactly one creates ``n + 1``; the others retry. A waiter whose
look was stale (it saw ``n`` while others moved on and old records were deleted) may still
create ``n + 1``; it then lists again and, finding a newer record, gives up: a newer record can
exist only if its creator saw ``n + 1``'s predecessor free before this waiter created it.
A waiter whose creation and look took a third of the lease's life (a stalled store or process)
steps back too, so a holder always has most of its lease ahead of it. Release marks the own
record released (only its holder writes it). Each new holder deletes the records older than its
predecessor's, so the folder keeps two or three small objects.

This relies on the store's strong read-after-write consistency for objects and listings, which
S3 (since December 2020), Azure Blob Storage and GCS give; the listing cache of the filesystem
instance is bypassed on every look.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
import weakref
from typing import Any

from airflow_provider_partner.stores.lease import LEASE_SECONDS, fields_expired, lease_pause, lease_text

__all__ = ["EpochLease"]

log = logging.getLogger(__name__)

#: Whether a filesystem instance really refuses to create over an existing object (probed once).
_PROBED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

#: Digits of a record's number: names sort as numbers do.
_DIGITS = 20
#: An acquisition slower than this leaves its holder too little of the lease: it steps back.
_STALLED_SECONDS = LEASE_SECONDS / 3


class EpochLease:
    """
    The lease of one object-store location, as numbered records in ``<key>.lease/``.

    :param fs: the fsspec filesystem of the location.
    :param key: the location's path in ``fs`` (``bucket/key``).
    """

    def __init__(self, fs: Any, key: str) -> None:
        self.fs = fs
        self.folder = f"{key}.lease"

    def exclusive_creation(self) -> bool:
        """
        Whether this filesystem refuses to create an object that exists: probed once per instance.

        Libraries older than fsspec's "create" mode (2024.12) and S3-compatible servers that
        ignore ``If-None-Match`` would overwrite instead; the lease would then only pretend.
        """
        known = _PROBED.get(self.fs)
        if known is None:
            known = _PROBED[self.fs] = self._probe()
        return known

    def _probe(self) -> bool:
        probe = f"{self.folder}/probe-{uuid.uuid4().hex}"
        try:
            self.fs.pipe_file(probe, b"1", mode="create")
            try:
                self.fs.pipe_file(probe, b"2", mode="create")
            except FileExistsError:
                return True
            log.warning(
                "%s overwrote an object it was asked to create only if absent (%s): the credential "
                "store's lease is off there; upgrade the filesystem library or use a store that "
                "honours conditional writes",
                type(self.fs).__name__,
                self.folder,
            )
            return False
        except Exception as err:  # noqa: BLE001 - an old library's "unknown parameter", say
            log.warning(
                "%s cannot create objects exclusively (%s: %s): the credential store's lease is off",
                type(self.fs).__name__,
                type(err).__name__,
                err,
            )
            return False
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm_file(probe)

    def acquire(self, owner: str, timeout: float) -> int | None:
        """
        Create the next lease record; return its number, or ``None`` after ``timeout`` seconds.

        :param owner: who holds the lease (written into the record).
        :param timeout: how long to wait for another holder, seconds.
        """
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            numbers = self._numbers()
            newest = numbers[-1] if numbers else 0
            if newest == 0 or self._free(newest):
                mine, began = newest + 1, time.monotonic()
                if self._create(mine, owner) and self._confirmed(mine, owner, began):
                    self._forget(before=newest)
                    return mine
            if time.monotonic() >= deadline:
                return None
            lease_pause(attempt)
            attempt += 1

    def _confirmed(self, mine: int, owner: str, began: float) -> bool:
        """Whether the record just created is the lease (else it is released: it holds nobody up)."""
        try:
            newer = max(self._numbers(), default=0) > mine
        except BaseException:
            with contextlib.suppress(Exception):
                self.release(mine, owner)
            raise
        # A stale look (others moved on meanwhile), or a store so slow to answer that the record
        # may expire while its holder works: stepped back from.
        if not newer and time.monotonic() - began < _STALLED_SECONDS:
            return True
        self.release(mine, owner)
        return False

    def release(self, number: int, owner: str) -> None:
        """Mark record ``number`` released, so the next waiter need not wait for its expiry."""
        record = json.dumps({"owner": owner, "expires": time.time(), "released": True})
        self.fs.pipe_file(self._record(number), record.encode())

    def _record(self, number: int) -> str:
        return f"{self.folder}/{number:0{_DIGITS}d}"

    def _numbers(self) -> list[int]:
        # Another process may have added records since this instance last listed the folder.
        self.fs.invalidate_cache(self.folder)
        try:
            entries = self.fs.ls(self.folder, detail=False)
        except FileNotFoundError:
            return []
        names = (str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
        ours = (name for name in names if len(name) == _DIGITS and name.isascii() and name.isdigit())
        return sorted(int(name) for name in ours)

    def _read(self, number: int) -> dict[str, Any] | None:
        """Record ``number``'s fields: ``None`` if it does not exist, ``{}`` if it is unreadable."""
        try:
            data = self.fs.cat_file(self._record(number))
        except FileNotFoundError:
            return None
        with contextlib.suppress(ValueError):  # UnicodeDecodeError is one
            fields = json.loads(data)
            if isinstance(fields, dict):
                return fields
        return {}

    def _free(self, number: int) -> bool:
        fields = self._read(number)
        # A record removed by hand holds nobody; a released one needs no wait for its expiry.
        return fields is None or fields.get("released") is True or fields_expired(fields)

    def _create(self, number: int, owner: str) -> bool:
        # One request that fails if the object exists (s3fs, adlfs, gcsfs; fsspec's "create"):
        # a buffered "xb" file would stage blocks first, and on Azure a losing writer's staged
        # blocks wait out the SDK's retries (tens of seconds).
        try:
            self.fs.pipe_file(self._record(number), lease_text(owner).encode(), mode="create")
        except FileExistsError:
            # The client may have retried a create whose answer was lost: the record is ours then.
            return self._owner(number) == owner
        except OSError as err:
            # AWS answers two simultaneous conditional writes of one key with 409
            # ConditionalRequestConflict (s3fs: a plain OSError): a lost race like a 412.
            if _error_code(err) == "ConditionalRequestConflict":
                return False
            raise
        return True

    def _owner(self, number: int) -> str | None:
        owner = (self._read(number) or {}).get("owner")
        return str(owner) if owner else None

    def _forget(self, before: int) -> None:
        # Records older than the predecessor are never read again. Best effort: a failed delete
        # is retried by the next holder, and without delete rights the folder only grows.
        try:
            for number in self._numbers():
                if number >= before:
                    break
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(self._record(number))
        except Exception as err:  # noqa: BLE001 - every client raises its own kind
            log.warning(
                "Could not delete old lease records in %s (%s); they only take space: allow deleting "
                "objects below it",
                self.folder,
                err,
            )


def _error_code(err: BaseException) -> str | None:
    """The service's error code behind a client error (botocore's ``ClientError``), if any."""
    response = getattr(err.__cause__, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None
