"""
Parquet output with one fixed schema, so files written on different days always line up.

Schema (version 1), decided once and never derived from the data:

- documented scalar fields keep their type: strings (``id``, ``status``, ``eTag``, ...), the five
  ``*DateTime`` fields as ``timestamp[us, UTC]``, ``isSpam`` as ``bool``;
- nested objects and lists (``customerProfile``, ``details``, ``team``, ...) are JSON text columns
  with the field's name: a new nested attribute changes only the text, never the schema;
- ``extra_json``: a JSON object of every top-level field this schema does not know (new API
  fields), plus any value that does not fit its typed column (say a number where a string was
  documented); ``null`` when there is none. Nothing the API returns is dropped.

``pyarrow`` (the ``parquet`` extra) is imported only when a parquet file is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import IO, Any

from airflow_provider_partner.instants import to_datetime

__all__ = [
    "BOOL_FIELDS",
    "EXTRA_COLUMN",
    "JSON_FIELDS",
    "SCHEMA_VERSION",
    "STRING_FIELDS",
    "TIMESTAMP_FIELDS",
    "parquet_schema",
    "write_parquet",
]

SCHEMA_VERSION = "1"

STRING_FIELDS: tuple[str, ...] = (
    "id",
    "engagementId",
    "name",
    "organizationId",
    "organizationName",
    "mpnId",
    "externalReferenceId",
    "status",
    "substatus",
    "statusReason",
    "type",
    "qualification",
    "direction",
    "referralSource",
    "callToAction",
    "salesStage",
    "campaignId",
    "eTag",
)
TIMESTAMP_FIELDS: tuple[str, ...] = (
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "acceptedDateTime",
    "closedDateTime",
)
BOOL_FIELDS: tuple[str, ...] = ("isSpam",)
JSON_FIELDS: tuple[str, ...] = (
    "customerProfile",
    "consent",
    "details",
    "team",
    "inviteContext",
    "target",
    "links",
    "referralProgram",
    "trackingInfo",
    "registrations",
    "registrationStatus",
    "quality",
    "tags",
)
EXTRA_COLUMN = "extra_json"
_KNOWN = frozenset(STRING_FIELDS + TIMESTAMP_FIELDS + BOOL_FIELDS + JSON_FIELDS)
_SCALARS: tuple[tuple[str, type], ...] = tuple((name, str) for name in STRING_FIELDS) + tuple(
    (name, bool) for name in BOOL_FIELDS
)

#: Rows per row group: bounds memory (a few MB of column data) and keeps files scannable.
BATCH_ROWS = 4096


def parquet_schema() -> Any:
    """Return the ``pyarrow.Schema`` of referral parquet files (field order is part of the contract)."""
    import pyarrow as pa

    fields = [pa.field(name, pa.string()) for name in STRING_FIELDS]
    fields += [pa.field(name, pa.timestamp("us", tz="UTC")) for name in TIMESTAMP_FIELDS]
    fields += [pa.field(name, pa.bool_()) for name in BOOL_FIELDS]
    fields += [pa.field(name, pa.string()) for name in JSON_FIELDS]
    fields.append(pa.field(EXTRA_COLUMN, pa.string()))
    metadata = {
        "airflow_provider_partner.schema_version": SCHEMA_VERSION,
        "airflow_provider_partner.json_columns": ",".join((*JSON_FIELDS, EXTRA_COLUMN)),
    }
    return pa.schema(fields, metadata=metadata)


class _Batch:
    """Column lists of up to :data:`BATCH_ROWS` referrals."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in (*_KNOWN, EXTRA_COLUMN)}
        self.rows = 0

    def add(self, record: dict[str, Any]) -> None:
        import orjson

        columns = self.columns
        extra: dict[str, Any] = {}
        for name, kind in _SCALARS:
            value = record.get(name)
            if value is None or type(value) is kind:
                columns[name].append(value)
            else:
                columns[name].append(None)
                extra[name] = value
        for name in TIMESTAMP_FIELDS:
            # Parsed in bulk in to_table(); a misfit is moved to extra_json there.
            columns[name].append(record.get(name))
        for name in JSON_FIELDS:
            value = record.get(name)
            columns[name].append(None if value is None else orjson.dumps(value).decode())
        extra.update((name, value) for name, value in record.items() if name not in _KNOWN)
        columns[EXTRA_COLUMN].append(extra or None)
        self.rows += 1

    def to_table(self, schema: Any) -> Any:
        import orjson
        import pyarrow as pa
        import pyarrow.compute as pc

        arrays: dict[str, Any] = {}
        extras: list[dict[str, Any] | None] = self.columns[EXTRA_COLUMN]
        for name in TIMESTAMP_FIELDS:
            raw = self.columns[name]
            try:
                # Fast path: Arrow parses ISO-8601 with up to 9 fractional digits at ns precision.
                parsed = pc.cast(pa.array(raw, pa.string()), pa.timestamp("ns", tz="UTC"))
                arrays[name] = parsed.cast(pa.timestamp("us", tz="UTC"), safe=False)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass
            values: list[dt.datetime | None] = []
            for row, value in enumerate(raw):
                stamp = to_datetime(value) if isinstance(value, str) else None
                if stamp is None and value is not None:
                    extras[row] = {**(extras[row] or {}), name: value}
                values.append(stamp)
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC"))
        for name in (*STRING_FIELDS, *BOOL_FIELDS, *JSON_FIELDS):
            arrays[name] = pa.array(self.columns[name], schema.field(name).type)
        arrays[EXTRA_COLUMN] = pa.array(
            [None if e is None else orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode() for e in extras],
            pa.string(),
        )
        return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)


def write_parquet(records: Iterable[dict[str, Any]], fileobj: IO[bytes]) -> int:
    """
    Write referrals to ``fileobj`` as parquet (schema: :func:`parquet_schema`); return the row count.

    An empty input still writes a valid file with the schema and no rows.

    :param records: referral objects, in output order.
    :param fileobj: a binary file opened for writing.
    """
    import pyarrow.parquet as pq

    schema = parquet_schema()
    count = 0
    with pq.ParquetWriter(fileobj, schema, compression="zstd") as writer:
        batch = _Batch()
        for record in records:
            batch.add(record)
            if batch.rows >= BATCH_ROWS:
                writer.write_table(batch.to_table(schema))
                count += batch.rows
                batch = _Batch()
        if batch.rows:
            writer.write_table(batch.to_table(schema))
            count += batch.rows
    return count
