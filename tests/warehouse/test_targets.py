"""
``load_referrals`` on every SQL target, against real databases: SQLite and DuckDB files,
PostgreSQL and MariaDB servers started by the tests (``conftest.py``). Each test runs once per
target, each time on a fresh database behind an Airflow connection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from partner_center_emulator.clock import format_ticks, parse_to_ticks

from airflow_provider_partner.instants import sort_key
from airflow_provider_partner.warehouse.schema import column_names
from warehouse.referral_files import Days, newest, three_days, write_jsonl
from warehouse.servers import OTHER_DRIVERS, TARGETS
from warehouse.targets import Warehouse, instant_at

pytestmark = pytest.mark.timeout(240)


def _expected(table: Mapping[str, Mapping[str, Any]], digits: int) -> dict[str, tuple[Any, ...]]:
    return {
        rid: (
            r.get("status"),
            instant_at(sort_key(r["updatedDateTime"]), digits),
            instant_at(sort_key(r["createdDateTime"]), digits),
        )
        for rid, r in sorted(table.items())
    }


def _changes(before: Mapping[str, Mapping[str, Any]], referrals: Sequence[Mapping[str, Any]]) -> int:
    """Rows a load of ``referrals`` must insert or replace in a table holding ``before``."""
    incoming = newest(referrals)
    return sum(
        1
        for rid, r in incoming.items()
        if rid not in before or sort_key(r["updatedDateTime"]) > sort_key(before[rid]["updatedDateTime"])
    )


# The package of each target's connection: by default, then by the driver a connection names.
_DRIVER_PACKAGES = {"sqlite": "sqlite3", "duckdb": "duckdb", "postgres": "psycopg", "mariadb": "MySQLdb"}
_DRIVER_PACKAGES |= {"psycopg2": "psycopg2", "mysql-connector-python": "mysql", "local_infile": "MySQLdb"}


def _driver(warehouse: Warehouse) -> str:
    """The top-level package of the connection the hook opens."""
    from airflow_provider_partner.warehouse import warehouse_hook

    conn = warehouse_hook(warehouse.conn_id).get_conn()
    try:
        return type(conn).__module__.split(".")[0].removeprefix("_")
    finally:
        conn.close()


def _load_data_statements(warehouse: Warehouse) -> int:
    """MariaDB's count of LOAD DATA statements run (0 elsewhere)."""
    if warehouse.kind != "mariadb":
        return 0
    return int(warehouse.records("SHOW GLOBAL STATUS LIKE 'Com_load'")[0][1])


@pytest.fixture
def days(tmp_path: Path) -> Days:
    return three_days(tmp_path)


@pytest.mark.parametrize("warehouse", TARGETS + OTHER_DRIVERS, indirect=True)
def test_a_three_day_load_keeps_each_ids_newest_version_and_a_rerun_changes_nothing(
    warehouse: Warehouse, days: Days
) -> None:
    held: dict[str, Mapping[str, Any]] = {}
    assert _driver(warehouse) == _DRIVER_PACKAGES[warehouse.driver or warehouse.kind]
    loads_before = _load_data_statements(warehouse)
    for path, referrals in zip(days.files, days.referrals, strict=True):
        changed = _changes(held, referrals)
        held = newest(held.values(), referrals)
        assert warehouse.load(path, batch_size=100) == {
            "read": len(referrals),
            "changed": changed,
            "rows": len(held),
        }
    # MariaDB stages with LOAD DATA LOCAL INFILE (one a chunk of 100) where the hook allows it.
    chunks = sum(-(-len(day) // 100) for day in days.referrals)
    expected_loads = chunks if warehouse.driver == "local_infile" else 0
    assert _load_data_statements(warehouse) - loads_before == expected_loads
    # The lookback overlaps the days; the edited referral (day 1, again on day 3) is one row.
    assert sum(len(day) for day in days.referrals) > len(held) > 250
    table = warehouse.table()
    assert table == _expected(held, warehouse.digits)
    assert table[days.edited_id][0] == "Closed"

    # A rerun of every day, and day 1 replayed after day 3: nothing changes.
    for path, referrals in zip(days.files, days.referrals, strict=True):
        assert warehouse.load(path) == {"read": len(referrals), "changed": 0, "rows": len(held)}
    assert warehouse.table() == table


def test_an_older_file_replayed_loses_and_an_edit_wins(
    warehouse: Warehouse, days: Days, tmp_path: Path
) -> None:
    warehouse.load(days.files[2])
    before = warehouse.table()
    # Day 1 holds the edited referral's older version: it loses; its other referrals are new.
    result = warehouse.load(days.files[0])
    assert warehouse.table()[days.edited_id] == before[days.edited_id]
    assert result["changed"] == _changes(newest(days.referrals[2]), days.referrals[0])
    edit = {**days.referrals[2][-1], "status": "Active", "substatus": "Engaged"}
    later = format_ticks(parse_to_ticks(edit["updatedDateTime"]) + 1)  # 100 ns newer
    path = write_jsonl(tmp_path / "edit.jsonl", [{**edit, "updatedDateTime": later}])
    assert warehouse.load(path)["changed"] == 1
    assert warehouse.table()[days.edited_id][0] == "Active"


def test_the_seventh_digit_decides_where_the_column_holds_microseconds(
    warehouse: Warehouse, days: Days, tmp_path: Path
) -> None:
    base = days.referrals[0][0]
    versions = {
        digit: {**base, "status": f"v{digit}", "updatedDateTime": f"2026-11-05T10:00:00.123456{digit}Z"}
        for digit in (3, 5, 8)
    }
    load = lambda name, *digits: warehouse.load(  # noqa: E731
        write_jsonl(tmp_path / f"{name}.jsonl", [versions[d] for d in digits])
    )
    assert load("five", 5)["changed"] == 1
    # Same microsecond, an earlier 100 ns: older, whatever the column keeps.
    assert load("three", 3)["changed"] == 0
    assert warehouse.table()[base["id"]][0] == "v5"
    assert load("eight", 8)["changed"] == 1
    assert warehouse.table()[base["id"]] == (
        "v8",
        instant_at("2026-11-05T10:00:00.1234568Z", warehouse.digits),
        instant_at(sort_key(base["createdDateTime"]), warehouse.digits),
    )
    # In one file: the newest version of the id is the one applied.
    assert load("both", 3, 5)["changed"] == 0


@pytest.mark.parametrize("warehouse", TARGETS + OTHER_DRIVERS, indirect=True)
def test_two_concurrent_loads_lose_nothing(warehouse: Warehouse, days: Days, tmp_path: Path) -> None:
    referrals = list(days.referrals[1])
    newer = [{**r, "status": "Newer", "updatedDateTime": "2026-11-06T00:00:00.0000001Z"} for r in referrals]
    files = [
        write_jsonl(tmp_path / "older.jsonl", referrals[::-1]),
        write_jsonl(tmp_path / "newer.jsonl", newer),
    ]
    barrier = threading.Barrier(len(files))
    results: dict[int, Any] = {}

    def run(number: int) -> None:
        barrier.wait(timeout=60)
        try:
            results[number] = warehouse.load(files[number], batch_size=50)
        except Exception as err:  # noqa: BLE001 - reported by the assertion
            results[number] = f"{type(err).__name__}: {err}"

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    count = len(referrals)
    assert [(r["read"], r["rows"]) for r in results.values()] == [(count, count)] * 2, results
    # Whichever went first: the newer file changed every row; the older one all or none.
    assert results[1]["changed"] == count
    assert results[0]["changed"] in (0, count)
    assert set(warehouse.table().values()) == {
        ("Newer", instant_at("2026-11-06T00:00:00.0000001Z", warehouse.digits), created)
        for _, _, created in warehouse.table().values()
    }


def test_a_bad_line_mid_file_leaves_the_table_as_it_was(
    warehouse: Warehouse, days: Days, tmp_path: Path
) -> None:
    warehouse.load(days.files[0])
    before = warehouse.table()
    good = [{**r, "status": "Changed", "updatedDateTime": "2026-11-07T00:00:00Z"} for r in days.referrals[1]]
    bad = write_jsonl(tmp_path / "bad.jsonl", good[:5], tail='{"id": "x",\n' + json.dumps(good[5]) + "\n")
    # Chunks of 2: two were staged before line 6 failed; the rollback undoes them.
    with pytest.raises(ValueError, match=rf"line 6 of {bad} is not valid JSON"):
        warehouse.load(bad, batch_size=2)
    assert warehouse.table() == before
    no_id = write_jsonl(tmp_path / "no_id.jsonl", [good[0], {"updatedDateTime": "2026-11-07T00:00:00Z"}])
    with pytest.raises(ValueError, match="a referral needs an id and an updatedDateTime, got id=None"):
        warehouse.load(no_id, batch_size=1)
    assert warehouse.table() == before


_TYPES = {
    "sqlite": ("text", "text", "text"),
    "duckdb": ("timestamp_ns", "timestamp_ns", "json"),
    "postgres": ("timestamp with time zone", "timestamp with time zone", "jsonb"),
    "mariadb": ("datetime(6)", "datetime(6)", "longtext"),
}


@pytest.mark.parametrize("warehouse", TARGETS + OTHER_DRIVERS, indirect=True)
def test_columns_are_typed_and_nested_objects_are_json(
    warehouse: Warehouse, days: Days, tmp_path: Path
) -> None:
    # Text that COPY's and LOAD DATA's formats escape, and an integer beyond 64 bits.
    first = days.referrals[0][0]
    tricky = {
        **first,
        "id": "tricky",
        "customerProfile": {**first["customerProfile"], "name": 'O\'Brien\t\\N "Søn"\r\n'},
        "custom": {"big": 2**70},
    }
    write_jsonl(days.files[0], [*days.referrals[0], tricky])
    warehouse.load(days.files[0])
    types = warehouse.types()
    # The same flat columns on every target (and in the Delta Lake table).
    assert list(types) == list(column_names())
    assert (types["created_date_time"], types["updated_date_time"], types["raw_json"]) == _TYPES[
        warehouse.kind
    ]
    referrals = {r["id"]: r for r in [*days.referrals[0], tricky]}
    # The database's own JSON functions read the nested objects.
    names = warehouse.json_field("customerProfile.name")
    assert names == {rid: r["customerProfile"]["name"] for rid, r in sorted(referrals.items())}
    stored = dict(warehouse.records("SELECT id, raw_json FROM referrals"))
    assert {rid: json.loads(raw) if isinstance(raw, str) else raw for rid, raw in stored.items()} == referrals
    flat = warehouse.records("SELECT id, customer_name, country, deal_value, currency FROM referrals")
    assert {row[0]: row[1:] for row in flat} == {
        rid: (
            r["customerProfile"].get("name"),
            r["customerProfile"]["address"].get("country"),
            r["details"].get("dealValue"),
            r["details"].get("currency"),
        )
        for rid, r in referrals.items()
    }
