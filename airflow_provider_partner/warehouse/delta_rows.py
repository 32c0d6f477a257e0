"""
The operator's JSONL files as Arrow record batches of the Delta table's rows, each ``id`` once.

One pass over the input parses each line once (orjson), checks it, builds Arrow batches of
``batch_size`` rows and spills them to a temporary Arrow IPC file, keeping only each row's ``id``
and exact ``updatedDateTime`` key in memory. The newest version of each ``id`` is then chosen
with Arrow's sort (an equal key keeps the first, as the SQL target does), and :class:`StagedRows`
replays the winners batch by batch, as often as a retried merge needs, without reading the
input again. A line that is not JSON, or a referral without ``id`` or ``updatedDateTime``, fails
the pass before anything is written to the table.

``pyarrow`` and ``orjson`` are imported when a load runs.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from airflow_provider_partner.instants import sort_key
from airflow_provider_partner.warehouse.schema import column_names

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FLAT_COLUMNS",
    "JSON_COLUMN",
    "UPDATED_EXACT_COLUMN",
    "StagedRows",
    "delta_column_names",
    "delta_schema",
    "stage_referrals",
]

#: Rows per Arrow record batch read from the input and handed to the merge.
DEFAULT_BATCH_SIZE = 2_000
#: The exact ``updatedDateTime`` (API spelling, 7 fractional digits): what the merge compares.
UPDATED_EXACT_COLUMN = "updated_date_time_exact"
#: The whole referral, the JSON line as the operator wrote it.
JSON_COLUMN = "raw_json"
#: The flat columns: the SQL table's (:func:`~airflow_provider_partner.warehouse.schema.column_names`).
FLAT_COLUMNS: tuple[str, ...] = tuple(name for name in column_names() if name != JSON_COLUMN)
_TEXT = ("status", "substatus", "type", "qualification", "direction")


def delta_column_names() -> tuple[str, ...]:
    """The Delta table's columns, in order: the SQL table's flat ones, the exact key, the JSON."""
    return (*FLAT_COLUMNS, UPDATED_EXACT_COLUMN, JSON_COLUMN)


def delta_schema() -> Any:
    """The table's ``pyarrow.Schema``; timestamps in UTC microseconds (Delta's ``timestamp``)."""
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="UTC")
    types = {"deal_value": pa.float64(), "created_date_time": stamp, "updated_date_time": stamp}
    required = {"id", "updated_date_time", UPDATED_EXACT_COLUMN, JSON_COLUMN}
    return pa.schema(
        [
            pa.field(name, types.get(name, pa.string()), nullable=name not in required)
            for name in delta_column_names()
        ]
    )


def _lines(path: Any) -> Iterator[bytes]:
    """The raw lines of a ``.jsonl``/``.jsonl.gz`` file (local path or ``ObjectStoragePath``)."""
    name = str(path)
    if name.endswith((".parquet", ".pq")):
        raise ValueError(
            f"{name}: the Delta load reads the operator's jsonl or jsonl.gz output, not Parquet "
            "(its timestamps drop the 7th fractional digit the merge compares); write output_format='jsonl'"
        )
    if hasattr(path, "open"):
        source = path
    elif "://" in name:  # the URL of an ObjectStoragePath (what the operator's manifest holds)
        from airflow.sdk import ObjectStoragePath

        source = ObjectStoragePath(name)
    else:
        source = Path(path)
    with source.open("rb") as raw:
        binary: IO[bytes] = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw  # type: ignore[assignment]
        yield from binary


def _row(number: int, line: bytes, path: Any) -> tuple[Any, ...] | None:
    """One line as ``(id, updated key, created key, referral, text)``; ``None`` for a blank line."""
    import orjson

    text = line.strip()
    if not text:
        return None
    try:
        referral = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise ValueError(
            f"line {number} of {path} is not valid JSON ({err.msg}); is this a JSONL referrals file "
            "(.jsonl or .jsonl.gz)? Nothing was written to the table."
        ) from None
    referral_id = referral.get("id") if isinstance(referral, dict) else None
    updated = sort_key(referral.get("updatedDateTime")) if isinstance(referral, dict) else ""
    if not referral_id or not updated:
        raise ValueError(
            f"line {number} of {path}: a referral needs an id and an updatedDateTime; nothing was "
            "written to the table"
        )
    return str(referral_id), updated, sort_key(referral.get("createdDateTime")), referral, text


def _batch(rows: Sequence[tuple[Any, ...]], schema: Any) -> Any:
    """A record batch of parsed lines (see :func:`_row`)."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {
        name: [] for name in ("id", "customer_name", "country", "deal_value", "currency", *_TEXT)
    }
    for referral_id, _, _, referral, _ in rows:
        customer = referral.get("customerProfile") or {}
        details = referral.get("details") or {}
        deal_value = details.get("dealValue")
        columns["id"].append(referral_id)
        for name in _TEXT:
            columns[name].append(referral.get(name))
        columns["customer_name"].append(customer.get("name"))
        columns["country"].append((customer.get("address") or {}).get("country"))
        columns["deal_value"].append(float(deal_value) if deal_value is not None else None)
        columns["currency"].append(details.get("currency"))
    updated = pa.array([row[1] for row in rows], pa.string())
    created = pa.array([row[2] or None for row in rows], pa.string())
    values = {
        **columns,
        "created_date_time": _timestamps(created),
        "updated_date_time": _timestamps(updated),
        UPDATED_EXACT_COLUMN: updated,
        JSON_COLUMN: pa.array([row[4] for row in rows], pa.binary()).cast(pa.string()),
    }
    return pa.RecordBatch.from_arrays([pa.array(values[f.name], f.type) for f in schema], schema=schema)


def _timestamps(keys: Any) -> Any:
    """7-digit UTC keys (``YYYY-MM-DDTHH:MM:SS.fffffffZ``) as ``timestamp[us, UTC]`` (7th digit dropped)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    micro = pc.utf8_slice_codeunits(keys, 0, 26)  # up to the 6th fractional digit, no zone
    return pc.assume_timezone(micro.cast(pa.timestamp("us")), "UTC")


@dataclass
class StagedRows:
    """
    The deduplicated rows of one load, spilled to a temporary Arrow IPC file.

    :param path: the IPC file (removed by :meth:`close`).
    :param keep: per input row, whether it is its ``id``'s winner (a ``pyarrow.BooleanArray``).
    :param read: referrals read.
    :param unique: rows after deduplication.
    :param ids: every spilled row's ``id`` (a ``pyarrow.ChunkedArray``, in spill order).
    :param keys: every spilled row's exact ``updatedDateTime`` key, likewise.
    """

    path: str
    keep: Any
    read: int
    unique: int
    ids: Any
    keys: Any

    def newer_than(self, current: Any) -> Any:
        """
        Per spilled row, whether it is a winner that the table's current rows do not already match.

        A winner is kept when its ``id`` is not in ``current`` or its key is strictly newer, so
        a replay merges nothing at all; the merge still compares (``current`` may be stale by the
        time it commits, and a stale view only ever keeps too much).

        :param current: a ``pyarrow.Table`` of the table's ``id`` and exact key columns.
        :return: a ``pyarrow.BooleanArray`` over the spilled rows.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = pa.array(range(len(self.ids)), pa.int64())
        staged = pa.table({"id": self.ids, "key": self.keys, "row": rows}).filter(self.keep)
        held = current.rename_columns(["id", "held"])
        joined = staged.join(held, keys="id", join_type="left outer")
        newer = pc.or_kleene(
            pc.is_null(joined.column("held")), pc.greater(joined.column("key"), joined.column("held"))
        )
        return pc.is_in(rows, value_set=joined.column("row").filter(newer).combine_chunks())

    def none_held(self, mask: Any, current: Any) -> bool:
        """
        Whether no row of ``mask`` has an ``id`` that ``current`` holds (the rows are all inserts).

        :param mask: the rows (:meth:`newer_than`).
        :param current: a ``pyarrow.Table`` of the table's ``id`` column (and others).
        """
        import pyarrow.compute as pc

        held = current.column("id").combine_chunks()
        return not pc.any(pc.is_in(self.ids.filter(mask), value_set=held)).as_py()

    def reader(self, mask: Any = None) -> Any:
        """
        A fresh ``pyarrow.RecordBatchReader`` over the winners (each call reads the file again).

        :param mask: the rows to read (:meth:`newer_than`); the winners by default.
        """
        import pyarrow as pa

        keep = self.keep if mask is None else mask

        # Read, not memory-mapped: a mapped file's pages count in the process's RSS as the
        # merge reads them (the whole spill by the end), read buffers are freed batch by batch.
        source = pa.ipc.open_file(pa.OSFile(self.path))
        schema = source.schema

        def batches() -> Iterator[Any]:
            offset = 0
            for index in range(source.num_record_batches):
                batch = source.get_batch(index)
                mask = keep.slice(offset, batch.num_rows)
                offset += batch.num_rows
                kept = batch.filter(mask)
                if kept.num_rows:
                    yield kept

        return pa.RecordBatchReader.from_batches(schema, batches())

    def close(self) -> None:
        """Remove the spill file."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _winners(ids: Any, keys: Any) -> Any:
    """Per row, whether it is the newest of its id (the first of equal keys): a ``BooleanArray``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    count = len(ids)
    rows = pa.array(range(count), pa.int64())
    if count == 0:
        return pa.array([], pa.bool_())
    order = pa.table({"id": ids, "key": keys, "row": rows}).sort_by(
        [("id", "ascending"), ("key", "descending"), ("row", "ascending")]
    )
    sorted_ids = order.column("id").combine_chunks()
    # In that order the first row of each run of one id is its winner.
    changes = pc.not_equal(sorted_ids.slice(1), sorted_ids.slice(0, count - 1))
    first = pa.concat_arrays([pa.array([True]), changes])
    winners = order.column("row").combine_chunks().filter(first)
    return pc.is_in(rows, value_set=winners)


def stage_referrals(paths: Iterable[Any], batch_size: int = DEFAULT_BATCH_SIZE) -> StagedRows:
    """
    Read, check and deduplicate the referrals of ``paths`` into a :class:`StagedRows`.

    :param paths: JSONL/JSONL.gz files (local paths or ``ObjectStoragePath``), read in order.
    :param batch_size: rows per record batch.
    :raises ValueError: at the first bad line (naming the file and line), before any write.
    """
    import pyarrow as pa

    schema = delta_schema()
    handle, spill = tempfile.mkstemp(prefix="partner-delta-", suffix=".arrow")
    os.close(handle)
    ids: list[Any] = []
    keys: list[Any] = []
    read = 0
    try:
        with pa.OSFile(spill, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for path in paths:
                rows: list[tuple[Any, ...]] = []
                for number, line in enumerate(_lines(path), start=1):
                    row = _row(number, line, path)
                    if row is None:
                        continue
                    rows.append(row)
                    if len(rows) >= batch_size:
                        read += _spill(writer, rows, schema, ids, keys)
                        rows = []
                if rows:
                    read += _spill(writer, rows, schema, ids, keys)
        id_column, key_column = pa.chunked_array(ids, pa.string()), pa.chunked_array(keys, pa.string())
        keep = _winners(id_column, key_column)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spill)
        raise
    return StagedRows(spill, keep, read, int(keep.true_count), id_column, key_column)


def _spill(writer: Any, rows: list[tuple[Any, ...]], schema: Any, ids: list[Any], keys: list[Any]) -> int:
    batch = _batch(rows, schema)
    writer.write_batch(batch)
    ids.append(batch.column("id"))
    keys.append(batch.column(UPDATED_EXACT_COLUMN))
    return len(rows)
