"""
Where a killed extraction's progress is kept for its retry, and how a retry takes it back.

A checkpoint has two parts:

- **chunks**: the referrals spooled so far, each slice's spool file cut into consecutive
  pieces (compact JSON lines, the spool's own bytes), in a hidden folder beside the output on
  its ``ObjectStoragePath``: ``.<output name>.resume/<slice>-<n>.jsonl``. Beside the output,
  not on the worker's disk, because a retry usually runs on another machine.
- **the manifest**: who wrote it (DAG, run, task, map index), what it read (the plan: window,
  filters, order, slices, output path), each slice's cursor (see
  :mod:`~airflow_provider_partner.extract.cursor`) and its chunks. On Airflow 3.3 it goes to the
  task state store (``context["task_state_store"]``, shared by the tries of one task instance);
  on 3.1 and 3.2, which have none, to ``manifest.json`` in the same folder.

A retry uses a checkpoint only when its manifest names the same task instance and the same plan;
otherwise it is discarded with an INFO line saying why. A successful run removes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_partner.extract.cursor import ExtractionCursor

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_partner.extract.slices import ExtractionPlan
    from airflow_provider_partner.extract.spool import ReferralSpool

__all__ = [
    "FOLDER_SUFFIX",
    "MANIFEST_NAME",
    "STATE_KEY",
    "CheckpointStore",
    "Restored",
    "StateStore",
    "describe_plan",
    "identity_of",
]

log = logging.getLogger(__name__)

#: The task state store key of the manifest (Airflow 3.3+).
STATE_KEY = "partner_referrals_checkpoint"
#: The manifest's file name in the checkpoint folder (Airflow 3.1 and 3.2).
MANIFEST_NAME = "manifest.json"
#: The checkpoint folder is ``.<output name>`` followed by this.
FOLDER_SUFFIX = ".resume"
#: Version of the manifest's layout; another version is discarded.
VERSION = 1
_COPY_BLOCK = 1 << 20
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})


class StateStore(Protocol):
    """What the provider uses of Airflow 3.3's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default``."""

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when missing)."""


def identity_of(context: Any, task_id: str) -> dict[str, Any]:
    """
    The task instance a checkpoint belongs to: DAG, run, task and map index, from the context.

    :param context: the task's context (``ti`` is read when present).
    :param task_id: the operator's task id (used when the context has no ``ti``).
    """
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:
        return {"dag_id": None, "run_id": context.get("run_id"), "task_id": task_id, "map_index": -1}
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "run_id": getattr(ti, "run_id", None),
        "task_id": getattr(ti, "task_id", task_id),
        "map_index": -1 if map_index is None else map_index,
    }


def describe_plan(plan: ExtractionPlan, target: ObjectStoragePath) -> dict[str, Any]:
    """What a checkpoint must share with a retry to be used: the query, window, plan and output."""
    window = plan.window
    described = {
        "window_field": plan.window_field,
        "window": None if window is None else [str(window.start), str(window.end)],
        "filter": plan.filter,
        "orderby": plan.orderby,
        "select": plan.select,
        "top": plan.top,
        "parallelism": plan.parallelism,
        "output": str(target),
    }
    normalised: dict[str, Any] = json.loads(json.dumps(described, default=str))
    return normalised


class Restored:
    """
    A checkpoint taken back into a spool: its cursor and what it held.

    :param cursor: each slice's progress, as saved.
    :param chunks: each slice's chunks (``[size, records]``), as saved.
    """

    def __init__(self, cursor: ExtractionCursor, chunks: list[list[list[int]]]) -> None:
        self.cursor = cursor
        self.chunks = chunks
        self.pages = cursor.pages
        self.received = sum(state.received for state in cursor.slices)


class CheckpointStore:
    """
    One task instance's checkpoint: chunk files beside the output, the manifest in the state store.

    :param target: the extraction's output path.
    :param identity: see :func:`identity_of`.
    :param plan: see :func:`describe_plan`.
    :param state_store: ``context["task_state_store"]`` (Airflow 3.3+); ``None``: the manifest is a
        file in the checkpoint folder.
    """

    def __init__(
        self,
        target: ObjectStoragePath,
        identity: dict[str, Any],
        plan: dict[str, Any],
        state_store: StateStore | None = None,
    ) -> None:
        self.folder = target.parent / f".{target.name}{FOLDER_SUFFIX}"
        self.identity = identity
        self.plan = plan
        self.state_store = state_store
        self._fs: Any = target.fs
        self._local = target.protocol in _LOCAL_PROTOCOLS

    def __repr__(self) -> str:
        where = "task state store" if self.state_store is not None else MANIFEST_NAME
        return f"CheckpointStore({self.folder}, manifest in the {where})"

    def _path(self, name: str) -> str:
        return str((self.folder / name).path)

    # -- writing -----------------------------------------------------------------------------------
    def write_chunk(self, index: int, number: int, source: Path, start: int, end: int) -> None:
        """Copy bytes ``[start, end)`` of a local spool file to chunk ``number`` of slice ``index``."""
        if self._local:
            self._fs.makedirs(self.folder.path, exist_ok=True)
        if self._local and hasattr(os, "copy_file_range"):
            with contextlib.suppress(OSError):  # e.g. another file system: copied below instead
                self._copy_in_kernel(source, self._path(f"{index}-{number}.jsonl"), start, end)
                return
        left = end - start
        with open(source, "rb") as spooled, self._fs.open(self._path(f"{index}-{number}.jsonl"), "wb") as out:
            spooled.seek(start)
            while left > 0:
                block = spooled.read(min(_COPY_BLOCK, left))
                if not block:
                    raise OSError(f"The spool file {source} ended {left} byte(s) early.")
                out.write(block)
                left -= len(block)

    @staticmethod
    def _copy_in_kernel(source: Path, chunk: str, start: int, end: int) -> None:
        """Copy bytes ``[start, end)`` with ``copy_file_range``: none pass through this process."""
        with open(source, "rb") as spooled, open(chunk, "wb") as out:
            offset = start
            while offset < end:
                copied = os.copy_file_range(spooled.fileno(), out.fileno(), end - offset, offset)
                if copied <= 0:
                    raise OSError(f"The spool file {source} ended {end - offset} byte(s) early.")
                offset += copied

    def write_manifest(self, cursor: list[dict[str, Any]], chunks: list[list[list[int]]]) -> None:
        """Record the cursor and the chunks written so far (after those chunks are complete)."""
        manifest = {
            "version": VERSION,
            "identity": self.identity,
            "plan": self.plan,
            "folder": str(self.folder),
            "cursor": cursor,
            "chunks": chunks,
            "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if self.state_store is not None:
            self.state_store.set(STATE_KEY, manifest)
            return
        if self._local:
            self._fs.makedirs(self.folder.path, exist_ok=True)
        # Written aside, then moved: a kill mid-write never leaves half a manifest.
        temp = self._path(f".{MANIFEST_NAME}.{uuid.uuid4().hex}")
        with self._fs.open(temp, "wb") as out:
            out.write(json.dumps(manifest).encode())
        self._fs.mv(temp, self._path(MANIFEST_NAME))

    def remove(self) -> None:
        """Delete the checkpoint: its folder and, on Airflow 3.3, its state store entry."""
        if self.state_store is not None:
            with contextlib.suppress(Exception):
                self.state_store.delete(STATE_KEY)
        if self._local:
            shutil.rmtree(self.folder.path, ignore_errors=True)
            return
        with contextlib.suppress(FileNotFoundError, OSError):
            self._fs.rm(self.folder.path, recursive=True)

    # -- reading -----------------------------------------------------------------------------------
    def _read_manifest(self) -> Any:
        if self.state_store is not None:
            return self.state_store.get(STATE_KEY)
        try:
            with self._fs.open(self._path(MANIFEST_NAME), "rb") as found:
                return json.loads(found.read())
        except FileNotFoundError:
            return None

    def _exists(self) -> bool:
        try:
            return bool(self._fs.exists(self.folder.path))
        except OSError:
            return False

    def _refusal(self, manifest: Any) -> str | None:
        """Why the manifest cannot be used by this try (``None``: it can)."""
        if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
            return "its manifest is of another version or unreadable"
        if manifest.get("identity") != self.identity:
            return (
                f"it belongs to another task instance or run ({manifest.get('identity')}), "
                f"not to this one ({self.identity})"
            )
        theirs = manifest.get("plan") or {}
        changed = sorted(k for k in {*theirs, *self.plan} if theirs.get(k) != self.plan.get(k))
        if changed:
            return f"the query or plan changed since it was written ({', '.join(changed)} differ)"
        cursor, chunks = manifest.get("cursor"), manifest.get("chunks")
        if not isinstance(cursor, list) or not isinstance(chunks, list) or len(cursor) != len(chunks):
            return "its cursor is unreadable"
        return None

    def load(self) -> tuple[ExtractionCursor, list[list[list[int]]]] | None:
        """
        The checkpoint of an earlier try of this task instance, if there is a usable one.

        Anything else found (another run's, another plan's, a broken one) is removed, with an INFO
        line saying why.
        """
        refusal: str | None
        try:
            manifest = self._read_manifest()
        except (OSError, ValueError) as err:
            manifest, refusal = None, f"its manifest could not be read ({err})"
        else:
            refusal = None if manifest is None else self._refusal(manifest)
        if manifest is not None and refusal is None:
            try:
                return ExtractionCursor.from_json(manifest["cursor"]), manifest["chunks"]
            except (TypeError, KeyError) as err:
                refusal = f"its cursor is unreadable ({err})"
        if refusal is not None:
            log.info("Discarding the checkpoint at %s, reading from the start: %s", self.folder, refusal)
            self.remove()
        elif self._exists():
            log.info("Removing %s: no checkpoint of this task instance refers to it", self.folder)
            self.remove()
        return None

    def restore(self, spool: ReferralSpool) -> Restored | None:
        """
        Load a usable checkpoint's referrals into ``spool`` (empty); return its cursor, else ``None``.

        A chunk that is missing or of another size than the manifest says discards the checkpoint;
        the spool is then left empty.
        """
        found = self.load()
        if found is None:
            return None
        cursor, chunks = found
        try:
            for index, saved in enumerate(chunks):
                for number, (size, _) in enumerate(saved):
                    if self._fs.size(self._path(f"{index}-{number}.jsonl")) != size:
                        raise ValueError(f"chunk {index}-{number} is not of the size its manifest says")
        except (OSError, ValueError) as err:
            log.info("Discarding the checkpoint at %s, reading from the start: %s", self.folder, err)
            self.remove()
            return None
        try:
            for index, saved in enumerate(chunks):
                for number in range(len(saved)):
                    self._restore_chunk(spool, index, number)
        except BaseException:
            # Whatever broke the restore would break the next retry's too: it starts over instead.
            self.remove()
            raise
        return Restored(cursor, chunks)

    def _restore_chunk(self, spool: ReferralSpool, index: int, number: int) -> None:
        with self._fs.open(self._path(f"{index}-{number}.jsonl"), "rb") as chunk:
            rest = b""
            while block := chunk.read(_COPY_BLOCK):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                spool.add_bodies(lines, index)
        if rest:
            raise ValueError(f"chunk {index}-{number} does not end with a newline")
