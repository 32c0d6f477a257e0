"""Plain helpers of the output tests: the operator's run, the emulator's referrals, outputs decoded."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from typing import Any

from operators.operator_helpers import expected_referrals, midnight_today

#: The formats the operator writes, each with the name its test file gets.
FORMATS = ("jsonl", "jsonl.gz", "parquet")


def week() -> tuple[dt.datetime, dt.datetime]:
    """The last seven whole days: inside the emulator's data (generated up to now)."""
    end = midnight_today()
    return end - dt.timedelta(days=7), end


def context(start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict[str, Any]:
    """What a task run passes the operator (the parts it reads)."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return {
        "data_interval_start": start,
        "data_interval_end": end,
        "params": {},
        "outlet_events": OutletEventAccessors(),
    }


def every_referral(emu: Any) -> list[dict[str, Any]]:
    """All the emulator's referrals in output order (``updatedDateTime``, then ``id``)."""
    return sorted(emu.referrals(), key=lambda r: (r["updatedDateTime"], r["id"]))


def in_window(emu: Any, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """The emulator's referrals updated in ``[start, end)``, in output order."""
    return expected_referrals(emu, start, end)


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """The operator's JSONL of ``records``: compact JSON, UTF-8, a newline after each."""
    return b"".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records
    )


def assert_output_holds(output_format: str, data: bytes, records: list[dict[str, Any]]) -> None:
    """Check that an output file's bytes hold exactly ``records``, in order."""
    if output_format == "jsonl":
        assert data == jsonl(records)
    elif output_format == "jsonl.gz":
        assert gzip.decompress(data) == jsonl(records)
    else:
        import pyarrow.parquet as pq

        from airflow_provider_partner.extract.parquet import parquet_schema

        table = pq.read_table(io.BytesIO(data))
        assert table.schema == parquet_schema()
        assert table.column("id").to_pylist() == [r["id"] for r in records]
        assert table.column("eTag").to_pylist() == [r["eTag"] for r in records]
        assert [json.loads(v) for v in table.column("customerProfile").to_pylist()] == [
            r["customerProfile"] for r in records
        ]
        stamps = table.column("updatedDateTime").to_pylist()
        assert [s.strftime("%Y-%m-%dT%H:%M:%S.%f") for s in stamps] == [
            r["updatedDateTime"][:26] for r in records
        ]
