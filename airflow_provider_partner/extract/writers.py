"""
Output files of the referrals operator: formats, and publishing them atomically to object storage.

A file is written to a temporary key beside the target (``.<name>.partial-<random>``) and moved
over the target only once it is complete. On a local file system the move is a ``rename`` (atomic);
object stores have no rename, but the target key only ever appears as a whole object (copy, then
delete of the temporary key). A failed or killed task therefore never leaves a partial target;
leftover temporary keys of a killed task are removed by the next run for the same target, and so
are, on S3, the unfinished multipart uploads of those keys (an upload larger than s3fs's block
size goes in parts, which S3 keeps, unseen among the objects and billed, until aborted).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_partner.errors import PartnerCenterCancelledError
from airflow_provider_partner.extract.closing import CloseGuard

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_partner.extract.spool import ReferralSpool

__all__ = ["OUTPUT_FORMATS", "TEMP_MARKER", "AtomicObjectWriter", "write_output"]

log = logging.getLogger(__name__)

#: Output formats the operator writes.
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "jsonl.gz", "parquet")
#: Marker in the names of temporary keys (``.<target name>.partial-<hex>``).
TEMP_MARKER = ".partial-"

#: Bytes collected before each write call: few calls, and memory stays at about this much.
_WRITE_CHUNK = 1 << 20
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})


class AtomicObjectWriter:
    """
    Write one object through a temporary key and move it into place when complete.

    :meth:`discard` may be called from a signal handler (``on_kill``) interrupting the thread
    that writes: inside :meth:`in_use` it then only marks the writer discarded, and the writing
    thread discards when it leaves the block, so nothing ever writes to a closed file.

    :param target: the final location.
    """

    def __init__(self, target: ObjectStoragePath) -> None:
        self.target = target
        self.temp = target.parent / f".{target.name}{TEMP_MARKER}{uuid.uuid4().hex}"
        self._file: IO[bytes] | None = None
        self.published = False
        self._adopted = False
        self._guard = CloseGuard(
            self._discard,
            lambda: PartnerCenterCancelledError(
                "Stopped because the task is being killed (the output was discarded); no output was written."
            ),
        )

    def __repr__(self) -> str:
        return f"AtomicObjectWriter({self.target})"

    @property
    def _fs(self) -> Any:
        return self.target.fs

    def remove_stale(self) -> list[str]:
        """
        Delete what earlier (killed) attempts left beside the target; return what was removed.

        Their temporary keys, and on S3 the unfinished multipart uploads of such keys.
        """
        prefix = f".{self.target.name}{TEMP_MARKER}"
        parent = self.target.parent.path
        aborted = self._abort_unfinished_uploads(f"{parent}/{prefix}")
        try:
            entries = self._fs.ls(parent, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return aborted
        stale = [e for e in entries if str(e).rstrip("/").rsplit("/", 1)[-1].startswith(prefix)]
        for entry in stale:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(entry)
        return [str(e) for e in stale] + aborted

    def _abort_unfinished_uploads(self, path_prefix: str) -> list[str]:
        """Abort the S3 multipart uploads of keys starting with ``path_prefix`` (other stores: none)."""
        # s3fs only: a killed task's upload of more than one block stays a multipart upload.
        # (Azure discards uncommitted blocks after a week, GCS an unfinished resumable upload.)
        call_s3 = getattr(self._fs, "call_s3", None)
        if call_s3 is None:
            return []
        bucket, key_prefix, _ = self._fs.split_path(path_prefix)
        try:
            listed = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key_prefix)
        except Exception as err:  # noqa: BLE001 - best effort: s3fs's and botocore's errors alike
            log.info(
                "Could not list the unfinished uploads of earlier attempts under %s/%s (%s); an S3 "
                "lifecycle rule with AbortIncompleteMultipartUpload removes them",
                bucket,
                key_prefix,
                err,
            )
            return []
        aborted = []
        for upload in listed.get("Uploads", []):
            try:
                self._fs.abort_mpu(bucket, upload["Key"], upload["UploadId"])
            except Exception as err:  # noqa: BLE001 - e.g. another run aborted it first
                log.info("Could not abort the unfinished upload of %s/%s (%s)", bucket, upload["Key"], err)
                continue
            aborted.append(f"{bucket}/{upload['Key']} (unfinished multipart upload)")
        return aborted

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        """Hold off :meth:`discard` until the block ends (a cancellation error if it came first)."""
        return self._guard.step()

    def adopt(self, local: Path) -> None:
        """
        Make a finished local file the temporary key (then :meth:`publish` it); ``local`` is consumed.

        On the same local file system the file is renamed (no copy); otherwise it is copied or
        uploaded in ~1 MiB writes.
        """
        if self.target.protocol in _LOCAL_PROTOCOLS:
            self._fs.makedirs(self.target.parent.path, exist_ok=True)
            try:
                os.replace(local, self.temp.path)
            except OSError:  # another file system (EXDEV): copy instead
                pass
            else:
                self._adopted = True
                return
        with open(local, "rb") as source, self._fs.open(self.temp.path, "wb") as copy:
            shutil.copyfileobj(source, copy, _WRITE_CHUNK)
        local.unlink()
        self._adopted = True

    def open(self) -> IO[bytes]:
        """Open the temporary key for writing (parent folders are created on local file systems)."""
        if self.target.protocol in _LOCAL_PROTOCOLS:
            self._fs.makedirs(self.target.parent.path, exist_ok=True)
        # Straight to the file system: the temporary key is no lineage-worthy asset, and the
        # path's tracking wrapper would add a call per write.
        self._file = self._fs.open(self.temp.path, "wb")
        return self._file

    def publish(self) -> None:
        """Close the temporary key and move it over the target (replacing an earlier output)."""
        if self._file is None and not self._adopted:
            raise RuntimeError("publish() before open() or adopt().")
        if self._file is not None:
            self._file.close()
        self._fs.mv(self.temp.path, self.target.path)
        self.published = True

    def discard(self) -> None:
        """Close and delete the temporary key, if any (safe to call twice, and from on_kill)."""
        self._guard.close()

    def _discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
        if not self.published:
            with contextlib.suppress(FileNotFoundError, OSError):
                self._fs.rm(self.temp.path)


def _chunks(bodies: Iterable[bytes], check: Callable[[], None]) -> Iterator[tuple[bytes, int]]:
    """Yield ``(lines, number of lines)``: JSON lines joined into chunks of about 1 MiB."""
    parts: list[bytes] = []
    size = 0
    for body in bodies:
        parts.append(body)
        size += len(body) + 1
        if size >= _WRITE_CHUNK:
            check()
            lines = len(parts)
            parts.append(b"")
            yield b"\n".join(parts), lines
            parts, size = [], 0
    if parts:
        lines = len(parts)
        parts.append(b"")
        yield b"\n".join(parts), lines


def write_output(
    output_format: str,
    spool: ReferralSpool,
    fileobj: IO[bytes],
    check: Callable[[], None] = lambda: None,
) -> int:
    """
    Write every referral of the spool to ``fileobj`` in ``output_format``; return the count written.

    - ``jsonl``: one compact JSON object per line (UTF-8, ``\\n`` after every line), in spool order.
    - ``jsonl.gz``: the same, gzip-compressed with a fixed header (no name, mtime 0), so the same
      data always gives the same bytes.
    - ``parquet``: see :mod:`airflow_provider_partner.extract.parquet`.

    :param output_format: one of :data:`OUTPUT_FORMATS`.
    :param spool: the deduplicated referrals.
    :param fileobj: a binary file opened for writing (not closed here).
    :param check: called between chunks; raises to abort (e.g. when the task is being killed).
    """
    if output_format == "parquet":
        from airflow_provider_partner.extract.parquet import write_parquet

        def checked() -> Iterator[dict[str, Any]]:
            for number, record in enumerate(spool.iter_records()):
                if number % 4096 == 0:
                    check()
                yield record

        return write_parquet(checked(), fileobj)
    count = 0
    if output_format == "jsonl":
        for chunk, lines in _chunks(spool.iter_json(), check):
            fileobj.write(chunk)
            count += lines
        return count
    if output_format == "jsonl.gz":
        with gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0, compresslevel=6) as zipped:
            for chunk, lines in _chunks(spool.iter_json(), check):
                zipped.write(chunk)
                count += lines
        return count
    raise ValueError(f"Unknown output_format {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}.")
