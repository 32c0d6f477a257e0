"""The warehouse upsert (plain SQLite, no Airflow): latest updatedDateTime wins, no duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_partner.examples.warehouse import connect, count_rows, load_jsonl_file


def _ref(rid: str, updated: str, status: str = "New") -> dict[str, object]:
    return {
        "id": rid,
        "status": status,
        "substatus": "Pending",
        "type": "Shared",
        "qualification": "SalesQualified",
        "direction": "Incoming",
        "createdDateTime": "2026-11-01T00:00:00.0000000Z",
        "updatedDateTime": updated,
        "customerProfile": {"name": "O'Brien & Søn ApS", "address": {"country": "DK"}},
        "details": {"dealValue": 1200, "currency": "DKK"},
    }


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_upsert_keeps_latest_and_never_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "wh" / "warehouse.db"
    newer = _write(
        tmp_path / "b.jsonl",
        [_ref("a", "2026-11-02T00:00:00.0000000Z", "Active"), _ref("b", "2026-11-02T00:00:00.0000000Z")],
    )
    older = _write(tmp_path / "a.jsonl", [_ref("a", "2026-11-01T00:00:00.0000000Z", "New")])

    assert load_jsonl_file(newer, db) == {"read": 2, "changed": 2, "rows": 2}
    # An older version and a repeat of the same file change nothing.
    assert load_jsonl_file(older, db) == {"read": 1, "changed": 0, "rows": 2}
    assert load_jsonl_file(newer, db) == {"read": 2, "changed": 0, "rows": 2}

    conn = connect(db)
    row = conn.execute(
        "SELECT status, customer_name, country, deal_value, currency, raw_json FROM referrals WHERE id='a'"
    ).fetchone()
    conn.close()
    assert row[:5] == ("Active", "O'Brien & Søn ApS", "DK", 1200.0, "DKK")
    assert json.loads(row[5])["updatedDateTime"] == "2026-11-02T00:00:00.0000000Z"


def test_bad_line_names_the_line_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.db"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_ref("a", "2026-11-02T00:00:00.0000000Z")) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        load_jsonl_file(bad, db)
    conn = connect(db)
    assert count_rows(conn) == 0
    conn.close()
