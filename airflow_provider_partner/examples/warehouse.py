"""
A tiny SQLite "warehouse" for the example DAGs: upsert JSONL referral files into one table.

Part of the provider's public API (``airflow_provider_partner.examples.warehouse``), used by the
example DAG ``referrals_warehouse_load``. Each referral is one row keyed by ``id``; a newer
``updatedDateTime`` replaces the row, an older or equal one changes nothing, so loading the same
file twice, or overlapping files in any order, never duplicates or regresses a row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS referrals (
    id TEXT PRIMARY KEY,
    status TEXT,
    substatus TEXT,
    type TEXT,
    qualification TEXT,
    direction TEXT,
    customer_name TEXT,
    country TEXT,
    deal_value REAL,
    currency TEXT,
    created_date_time TEXT,
    updated_date_time TEXT NOT NULL,
    raw_json TEXT NOT NULL
)
"""

UPSERT_SQL = """
INSERT INTO referrals (
    id, status, substatus, type, qualification, direction, customer_name, country,
    deal_value, currency, created_date_time, updated_date_time, raw_json
) VALUES (
    :id, :status, :substatus, :type, :qualification, :direction, :customer_name, :country,
    :deal_value, :currency, :created_date_time, :updated_date_time, :raw_json
)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    substatus = excluded.substatus,
    type = excluded.type,
    qualification = excluded.qualification,
    direction = excluded.direction,
    customer_name = excluded.customer_name,
    country = excluded.country,
    deal_value = excluded.deal_value,
    currency = excluded.currency,
    created_date_time = excluded.created_date_time,
    updated_date_time = excluded.updated_date_time,
    raw_json = excluded.raw_json
WHERE excluded.updated_date_time > referrals.updated_date_time
"""

# Rows per executemany: bounded memory for any file size, few round trips.
_BATCH = 500


def flatten(referral: dict[str, Any]) -> dict[str, Any]:
    """
    The warehouse row of one referral.

    :param referral: a referral as the API returns it (``id`` and ``updatedDateTime`` required).
    """
    customer = referral.get("customerProfile") or {}
    address = customer.get("address") or {}
    details = referral.get("details") or {}
    deal_value = details.get("dealValue")
    return {
        "id": referral["id"],
        "status": referral.get("status"),
        "substatus": referral.get("substatus"),
        "type": referral.get("type"),
        "qualification": referral.get("qualification"),
        "direction": referral.get("direction"),
        "customer_name": customer.get("name"),
        "country": address.get("country"),
        "deal_value": float(deal_value) if deal_value is not None else None,
        "currency": details.get("currency"),
        "created_date_time": referral.get("createdDateTime"),
        # The emulator and the API use one fixed ISO format, so text order is time order.
        "updated_date_time": referral["updatedDateTime"],
        "raw_json": json.dumps(referral, ensure_ascii=False, sort_keys=True),
    }


def connect(db_path: str | Path) -> sqlite3.Connection:
    """
    Open (and create if needed) the warehouse database with its ``referrals`` table.

    :param db_path: the SQLite file; its directory is created.
    """
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db_path), timeout=30)
    conn.execute(TABLE_DDL)
    return conn


def _jsonl_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"line {number} is not valid JSON ({err.msg}); is this a JSONL referrals file?"
            ) from None


def upsert_lines(conn: sqlite3.Connection, lines: Iterable[str]) -> dict[str, int]:
    """
    Upsert referrals read line by line (JSONL) in one transaction.

    :param conn: a connection from :func:`connect`.
    :param lines: JSONL text lines (a file object streams).
    :return: ``{"read": records read, "changed": rows inserted or updated}``.
    """
    read = 0
    before = conn.total_changes
    batch: list[dict[str, Any]] = []
    with conn:  # one transaction: a bad line leaves the table as it was
        for record in _jsonl_records(lines):
            batch.append(flatten(record))
            read += 1
            if len(batch) >= _BATCH:
                conn.executemany(UPSERT_SQL, batch)
                batch.clear()
        if batch:
            conn.executemany(UPSERT_SQL, batch)
    return {"read": read, "changed": conn.total_changes - before}


def load_jsonl_file(path: Any, db_path: str | Path) -> dict[str, int]:
    """
    Upsert one JSONL file (a local path or an ``ObjectStoragePath``) into the warehouse.

    :param path: anything with ``open("r")`` or a filesystem path.
    :param db_path: the SQLite warehouse file.
    :return: ``read``, ``changed`` and ``rows`` (rows in the table afterwards).
    """
    opener = path if hasattr(path, "open") else Path(path)
    conn = connect(db_path)
    try:
        with opener.open("r", encoding="utf-8") as handle:
            result = upsert_lines(conn, handle)
        result["rows"] = count_rows(conn)
    finally:
        conn.close()
    return result


def count_rows(conn: sqlite3.Connection) -> int:
    """Rows in the ``referrals`` table."""
    row = conn.execute("SELECT COUNT(*) FROM referrals").fetchone()
    return int(row[0])
