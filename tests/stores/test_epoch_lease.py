"""
The object-store lease's rules on fsspec's memory filesystem (the servers' tests: tests/objectstores).

What a real store does rarely is made to happen here: a client retrying a create whose answer was
lost, AWS's 409 for simultaneous conditional writes, a bucket that refuses deletes, foreign names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_partner.stores.epochs import EpochLease


@pytest.fixture
def folder() -> Any:
    key = f"/bucket-{uuid.uuid4().hex}/credentials.json"
    yield key
    with contextlib.suppress(FileNotFoundError):
        fsspec.filesystem("memory").rm(key.rsplit("/", 1)[0], recursive=True)


def _names(fs: Any, key: str) -> list[str]:
    return sorted(str(p).rsplit("/", 1)[-1] for p in fs.ls(f"{key}.lease", detail=False))


def test_a_record_a_retried_create_finds_is_taken_when_it_is_ours(folder: str) -> None:
    fs = fsspec.filesystem("memory")
    lease = EpochLease(fs, folder)
    # The first create landed, its answer was lost, the client's retry met the object.
    fs.pipe_file(f"{folder}.lease/{1:020d}", json.dumps({"owner": "me", "expires": 2e9}).encode())
    assert lease._create(1, "me") is True
    assert lease._create(1, "someone else") is False


class _ConflictError(Exception):
    response = {"Error": {"Code": "ConditionalRequestConflict"}}


class _ConflictingFs(MemoryFileSystem):
    """AWS answers simultaneous conditional writes of one key with 409 (s3fs: a plain OSError)."""

    conflicts = 1

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        if mode == "create" and self.conflicts:
            self.conflicts -= 1
            raise OSError(5, "An error occurred (ConditionalRequestConflict)") from _ConflictError()
        super().pipe_file(path, value, mode=mode, **kwargs)


def test_a_409_conditional_request_conflict_is_a_lost_race_then_tried_again(folder: str) -> None:
    fs = _ConflictingFs()
    lease = EpochLease(fs, folder)
    assert lease.acquire("me", timeout=5) == 1
    assert fs.conflicts == 0


class _NoDeletes(MemoryFileSystem):
    """A bucket whose policy allows creating and reading objects, not deleting them."""

    def rm_file(self, path: str) -> None:
        raise PermissionError(f"Access Denied: {path}")


def test_a_bucket_that_refuses_deletes_still_leases_and_says_why_the_folder_grows(
    folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = _NoDeletes()
    lease = EpochLease(fs, folder)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_partner.stores.epochs"):
        for expected in (1, 2, 3, 4):
            assert lease.acquire("me", timeout=5) == expected
            lease.release(expected, "me")
    assert _names(fs, folder) == [f"{n:020d}" for n in (1, 2, 3, 4)]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0].startswith(f"Could not delete old lease records in {folder}.lease (Access Denied:")
    assert len(warnings) == 2  # the third and fourth holders tried to delete record 1, then 1 and 2


def test_names_that_are_not_records_are_ignored(folder: str) -> None:
    fs = fsspec.filesystem("memory")
    for name in ("²" * 20, "notes.txt", "0042", f"{7:020d}"):
        fs.pipe_file(f"{folder}.lease/{name}", b"{}")
    assert EpochLease(fs, folder)._numbers() == [7]


class _IgnoresCreateMode(MemoryFileSystem):
    """An S3-compatible server that ignores If-None-Match: "create" overwrites like any write."""

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        super().pipe_file(path, value, **kwargs)


class _NoCreateMode(MemoryFileSystem):
    """A filesystem library older than fsspec's "create" mode: the argument is unknown to it."""

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        if "mode" in kwargs:
            raise TypeError("put_object() got an unexpected keyword argument 'mode'")
        super().pipe_file(path, value, **kwargs)


def test_the_lease_is_on_only_where_a_probe_shows_exclusive_creation(
    folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_partner.stores.epochs"):
        assert EpochLease(MemoryFileSystem(), folder).exclusive_creation() is True
        assert EpochLease(_IgnoresCreateMode(), folder).exclusive_creation() is False
        assert EpochLease(_NoCreateMode(), folder).exclusive_creation() is False
    assert [r.getMessage() for r in caplog.records] == [
        f"_IgnoresCreateMode overwrote an object it was asked to create only if absent ({folder}.lease): "
        "the credential store's lease is off there; upgrade the filesystem library or use a store that "
        "honours conditional writes",
        "_NoCreateMode cannot create objects exclusively (TypeError: put_object() got an unexpected "
        "keyword argument 'mode'): the credential store's lease is off",
    ]
    assert MemoryFileSystem().find(folder.rsplit("/", 1)[0]) == []  # the probes are gone
