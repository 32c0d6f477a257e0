"""
Saving checkpoints while paging goes on: every :data:`CHECKPOINT_PAGES` pages or
:data:`CHECKPOINT_SECONDS` seconds, whichever comes first, in a thread of its own.

The thread that spools pages only flushes the spool's files and copies the cursor (a few
microseconds); a writer thread copies the bytes spooled since the last checkpoint to new chunk
files beside the output, then writes the manifest that names them, so a manifest never names a
chunk that is not complete. While one checkpoint is being written, the next is not started (the
one after it covers its pages). A checkpoint that cannot be written is logged once as a warning
and checkpointing stops: the extraction itself goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_partner.extract.checkpoint import CheckpointStore, Restored
    from airflow_provider_partner.extract.cursor import ExtractionCursor
    from airflow_provider_partner.extract.spool import ReferralSpool
    from airflow_provider_partner.hooks.paging import ReferralPage

__all__ = ["CHECKPOINT_PAGES", "CHECKPOINT_SECONDS", "Checkpointer"]

log = logging.getLogger(__name__)

#: A checkpoint after this many pages (over all slices) since the last one...
CHECKPOINT_PAGES = 50
#: ... or this many seconds, whichever comes first.
CHECKPOINT_SECONDS = 30.0


@dataclass(frozen=True)
class _Job:
    files: dict[int, tuple[Path, int]]
    cursor: list[dict[str, Any]]


class Checkpointer:
    """
    Keep a :class:`~airflow_provider_partner.extract.checkpoint.CheckpointStore` up to date.

    Its :meth:`on_page` and :meth:`on_done` are the fetch's callbacks (the spooling thread).

    :param store: where checkpoints go.
    :param spool: the extraction's spool.
    :param cursor: the slices' cursor, updated here from the pages spooled.
    :param restored: what the spool was restored from (its chunks are not written again).
    :param every_pages: pages between checkpoints (default :data:`CHECKPOINT_PAGES`).
    :param every_seconds: seconds between checkpoints (default :data:`CHECKPOINT_SECONDS`).
    """

    def __init__(
        self,
        store: CheckpointStore,
        spool: ReferralSpool,
        cursor: ExtractionCursor,
        restored: Restored | None = None,
        *,
        every_pages: int | None = None,
        every_seconds: float | None = None,
    ) -> None:
        self.store, self.spool, self.cursor = store, spool, cursor
        self.every_pages = CHECKPOINT_PAGES if every_pages is None else every_pages
        self.every_seconds = CHECKPOINT_SECONDS if every_seconds is None else every_seconds
        count = len(cursor.slices)
        self._chunks: list[list[list[int]]] = restored.chunks if restored else [[] for _ in range(count)]
        self._chunks += [[] for _ in range(count - len(self._chunks))]
        self._saved = [sum(size for size, _ in chunks) for chunks in self._chunks]
        self._saved_received = [state.received for state in cursor.slices]
        self._pages = 0
        self._last = time.monotonic()
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=1)
        self._idle = threading.Event()
        self._idle.set()
        self._failed = False
        #: Checkpoints written, and the seconds the writer thread spent on them.
        self.written = 0
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="partner-referrals-checkpoint", daemon=True)
        self._thread.start()

    def on_page(self, index: int, page: ReferralPage) -> None:
        """Slice ``index`` spooled ``page``: move its cursor; start a checkpoint when one is due."""
        self.cursor.on_page(index, page)
        self._pages += 1
        if self._pages >= self.every_pages or time.monotonic() - self._last >= self.every_seconds:
            self.submit()

    def on_done(self, index: int) -> None:
        """Slice ``index`` has no more pages."""
        self.cursor.on_done(index)

    def submit(self) -> bool:
        """Start a checkpoint of what is spooled now, unless one is being written; ``True`` if started."""
        if self._failed or not self._idle.is_set():
            return False
        self._idle.clear()
        self._pages, self._last = 0, time.monotonic()
        self._jobs.put(_Job(self.spool.sync(), self.cursor.to_json()))
        return True

    def finish(self) -> None:
        """Write a last checkpoint of everything spooled (waits for it), then stop the writer thread."""
        self._idle.wait()
        if self.submit():
            self._idle.wait()
        self.close()

    def close(self) -> None:
        """Stop the writer thread after the checkpoint being written, if any (safe to call twice)."""
        if self._thread.is_alive():
            self._idle.wait()
            self._jobs.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            started = time.monotonic()
            try:
                self._write(job)
            except Exception as err:  # noqa: BLE001 - a failed checkpoint must not fail the extraction
                self._failed = True
                log.warning(
                    "Could not write a checkpoint to %s (%s: %s); the extraction goes on without one, "
                    "and a retry after a kill would start from the beginning",
                    self.store.folder,
                    type(err).__name__,
                    err,
                )
            finally:
                self.seconds += time.monotonic() - started
                self._idle.set()

    def _write(self, job: _Job) -> None:
        for index, (path, end) in sorted(job.files.items()):
            if index >= len(self._chunks) or end <= self._saved[index]:
                continue
            received = job.cursor[index]["received"]
            chunks = self._chunks[index]
            self.store.write_chunk(index, len(chunks), path, self._saved[index], end)
            chunks.append([end - self._saved[index], received - self._saved_received[index]])
            self._saved[index], self._saved_received[index] = end, received
        self.store.write_manifest(job.cursor, self._chunks)
        self.written += 1
        log.debug("Checkpoint %d written to %s", self.written, self.store.folder)
