"""
The Delta Lake target on a local folder, azurite (ADLS Gen2's Blob API) and moto (S3).

Inputs are the emulator's referrals written as the operator writes its daily files (each day's
window plus a 2-hour lookback); the tables are read back with deltalake, the stores' objects
with each store's own SDK.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("deltalake")

from objectstores.servers import abfs_store, s3_store

from airflow_provider_partner.instants import Instant, parse
from airflow_provider_partner.warehouse import (
    DeltaConflictError,
    delta_column_names,
    merge_referrals_delta,
    optimize_referrals_delta,
    vacuum_referrals_delta,
)
from airflow_provider_partner.warehouse.schema import column_names
from warehouse.delta_helpers import DeltaPlace, day_files, delta_place, jsonl, newest

__all__ = ["abfs_store", "delta_place", "s3_store"]

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def referrals() -> Iterator[list[dict[str, Any]]]:
    """The emulator's generated referrals (300, seed 7), read once per module."""
    from partner_center_emulator import Emulator

    emulator = Emulator(referrals=300, seed=7).start()
    try:
        yield emulator.referrals()
    finally:
        emulator.stop()


def _first_day(referrals: list[dict[str, Any]]) -> dt.datetime:
    """The midnight three days before the newest referral's (partial) day: three whole days of data."""
    last = max(r["updatedDateTime"] for r in referrals)
    day = dt.datetime.fromisoformat(last[:10]).replace(tzinfo=UTC)
    return day - dt.timedelta(days=3)


def _expected_row(referral: dict[str, Any]) -> dict[str, Any]:
    customer = referral.get("customerProfile") or {}
    details = referral.get("details") or {}
    deal = details.get("dealValue")
    return {
        "id": referral["id"],
        "status": referral.get("status"),
        "substatus": referral.get("substatus"),
        "type": referral.get("type"),
        "qualification": referral.get("qualification"),
        "direction": referral.get("direction"),
        "customer_name": customer.get("name"),
        "country": (customer.get("address") or {}).get("country"),
        "deal_value": float(deal) if deal is not None else None,
        "currency": details.get("currency"),
        "created_date_time": dt.datetime.fromisoformat(referral["createdDateTime"][:26]).replace(tzinfo=UTC),
        "updated_date_time": dt.datetime.fromisoformat(referral["updatedDateTime"][:26]).replace(tzinfo=UTC),
        "updated_date_time_exact": referral["updatedDateTime"],
    }


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A table row without its JSON, timestamps as aware UTC datetimes."""
    values = {name: value for name, value in row.items() if name != "raw_json"}
    for name in ("created_date_time", "updated_date_time"):
        values[name] = values[name].astimezone(UTC) if values[name] is not None else None
    return values


def test_the_delta_columns_are_the_sql_columns_plus_the_exact_key() -> None:
    # The flat columns and the JSON (raw_json) are the SQL table's, in its order; Delta's
    # timestamps hold microseconds, so the exact 7-digit updatedDateTime is one more column.
    names = list(delta_column_names())
    assert names.pop(names.index("updated_date_time_exact")) == "updated_date_time_exact"
    assert names == list(column_names())


def test_three_days_load_exactly_and_a_rerun_changes_nothing(
    delta_place: DeltaPlace, referrals: list[dict[str, Any]], tmp_path: Path
) -> None:
    files = day_files(referrals, _first_day(referrals), 3, tmp_path)
    results = [merge_referrals_delta(path, delta_place.url) for path in files]

    expected = newest(files)
    assert len(expected) > 10
    rows = delta_place.rows()
    assert {rid: _comparable(row) for rid, row in rows.items()} == {
        rid: _expected_row(r) for rid, r in expected.items()
    }
    assert {rid: json.loads(row["raw_json"]) for rid, row in rows.items()} == expected
    read = [len(path.read_text().splitlines()) for path in files]
    assert [r["read"] for r in results] == read
    assert [r["rows"] for r in results][-1] == len(expected)
    # Version 0 creates the table, each day is one commit: an append (WRITE), its ids all new.
    assert [r["version"] for r in results] == [1, 2, 3]
    history = delta_place.table().history()
    assert [h["operation"] for h in history] == ["WRITE", "WRITE", "WRITE", "CREATE TABLE"]
    assert [h["operationParameters"]["mode"] for h in history[:3]] == ["Append"] * 3
    types = {field.name: str(field.type) for field in delta_place.table().to_pyarrow_table().schema}
    stamp = "timestamp[us, tz=UTC]"
    assert types == {
        **dict.fromkeys(delta_column_names(), "string"),
        "deal_value": "double",
        "created_date_time": stamp,
        "updated_date_time": stamp,
    }
    assert delta_place.table().metadata().configuration["delta.appendOnly"] == "false"

    files_before, log_before = delta_place.listing(), delta_place.log()
    reruns = [merge_referrals_delta(path, delta_place.url) for path in files]
    assert [r["changed"] for r in reruns] == [0, 0, 0]
    assert [r["version"] for r in reruns] == [3, 3, 3]
    assert [r["rows"] for r in reruns] == [len(expected)] * 3
    # No commit, no file: the store holds exactly what it held.
    assert delta_place.listing() == files_before
    assert delta_place.log() == log_before
    assert delta_place.rows() == rows


def test_an_edit_wins_by_its_7th_digit_and_an_older_file_replayed_loses(
    delta_place: DeltaPlace, referrals: list[dict[str, Any]], tmp_path: Path
) -> None:
    first = _first_day(referrals)
    [day] = day_files(referrals, first, 1, tmp_path)
    merge_referrals_delta(day, delta_place.url)
    before = delta_place.rows()
    target = sorted(before)[0]
    original = json.loads(before[target]["raw_json"])
    stamp = original["updatedDateTime"]
    # 100 ns newer: newer in the API's 7th digit (equal to the microsecond unless it carries).
    later = Instant(parse(stamp).ticks + 1).api_format()
    assert later > stamp
    edited = {**original, "status": "Closed", "updatedDateTime": later}
    edit_file = tmp_path / "edit.jsonl.gz"
    edit_file.write_bytes(gzip.compress(jsonl([edited])))
    result = merge_referrals_delta(edit_file, delta_place.url)
    assert result == {"read": 1, "changed": 1, "rows": len(before), "version": 2}
    after = delta_place.rows()
    assert after[target]["status"] == "Closed"
    assert json.loads(after[target]["raw_json"]) == edited
    assert {rid: row for rid, row in after.items() if rid != target} == {
        rid: row for rid, row in before.items() if rid != target
    }

    # The day's file again (older for that id), and the same edit in the API's 1-digit spelling
    # of an older instant: nothing changes, nothing is committed.
    older = {**original, "status": "Old", "updatedDateTime": stamp[:19] + "Z"}
    stale = tmp_path / "stale.jsonl"
    stale.write_bytes(jsonl([older]))
    listing = delta_place.listing()
    assert merge_referrals_delta([day, stale], delta_place.url) == {
        "read": len(before) + 1,
        "changed": 0,
        "rows": len(before),
        "version": 2,
    }
    assert delta_place.rows() == after
    assert delta_place.listing() == listing


def test_one_load_of_overlapping_files_keeps_each_ids_newest_version(
    tmp_path: Path, referrals: list[dict[str, Any]]
) -> None:
    # Within one load: the same id in two files and twice in one file; equal keys keep the first.
    base = referrals[0]
    versions = [
        {**base, "status": "A", "updatedDateTime": "2026-11-02T10:00:00.5Z"},
        {**base, "status": "B", "updatedDateTime": "2026-11-02T10:00:00Z"},  # older, sorts after as text
        {**base, "status": "C", "updatedDateTime": "2026-11-02T10:00:00.5000000Z"},  # equal to A
    ]
    one, two = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    one.write_bytes(jsonl(versions[:2]))
    two.write_bytes(jsonl(versions[2:]))
    table = tmp_path / "t"
    assert merge_referrals_delta([one, two], table) == {"read": 3, "changed": 1, "rows": 1, "version": 1}
    place = DeltaPlace("file", str(table), list, {}, str(table))
    assert [row["status"] for row in place.rows().values()] == ["A"]


def test_concurrent_loads_lose_nothing(
    delta_place: DeltaPlace, referrals: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Four loads at once, each its own DeltaTable: two pairs of overlapping day files. Every
    # conflicting commit is retried on the new version; the table ends with every newest row.
    files = day_files(referrals, _first_day(referrals), 3, tmp_path)
    merge_referrals_delta(files[0], delta_place.url)  # the table exists: the race is in MERGE
    start = threading.Barrier(4)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def load(path: Path) -> None:
        start.wait(timeout=60)
        try:
            results.append(dict(merge_referrals_delta(path, delta_place.url, max_attempts=10)))
        except Exception as err:  # noqa: BLE001 - every failure is asserted below
            errors.append(err)

    threads = [
        threading.Thread(target=load, args=(path,)) for path in (files[1], files[2], files[1], files[2])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert errors == []
    assert len(results) == 4
    expected = newest(files)
    rows = delta_place.rows()
    assert {rid: row["updated_date_time_exact"] for rid, row in rows.items()} == {
        rid: r["updatedDateTime"] for rid, r in expected.items()
    }
    # No id twice: two appends of one file's new ids at once cannot both commit.
    assert delta_place.table().count() == len(expected)
    # Each change was made once: by whichever load of a file committed first.
    history = delta_place.table().history()
    changed = sum(_rows_changed(h) for h in history if h["operation"] in ("MERGE", "WRITE"))
    assert changed == sum(r["changed"] for r in results) + len(newest(files[:1]))


def _rows_changed(commit: dict[str, Any]) -> int:
    """Rows a load's commit inserted or replaced: a MERGE's, or an append's (WRITE) rows."""
    metrics = commit["operationMetrics"]
    if commit["operation"] == "WRITE":
        return int(metrics["num_added_rows"])
    return int(metrics["num_target_rows_inserted"]) + int(metrics["num_target_rows_updated"])


def test_a_stale_snapshot_cannot_overwrite_a_commit(delta_place: DeltaPlace, tmp_path: Path) -> None:
    # What the retries rest on: the store refuses a second writer of one log version (a
    # conditional write: If-None-Match on moto's S3 and azurite, a hard link on local disk).
    import pyarrow as pa
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_bytes(jsonl([{"id": "a", "updatedDateTime": "2026-11-02T00:00:00Z"}]))
    two.write_bytes(jsonl([{"id": "b", "updatedDateTime": "2026-11-02T00:00:00Z"}]))
    merge_referrals_delta(one, delta_place.url)
    stale = DeltaTable(delta_place.uri, storage_options=delta_place.options)  # at version 1
    assert merge_referrals_delta(two, delta_place.url)["version"] == 2
    rows = stale.to_pyarrow_table()
    source = rows.set_column(0, rows.schema.field("id"), pa.array(["c"]))
    merge = stale.merge(source, "t.id = s.id", source_alias="s", target_alias="t")
    with pytest.raises(CommitFailedError, match="concurrent"):
        merge.when_not_matched_insert_all().execute()
    assert sorted(delta_place.rows()) == ["a", "b"]
    assert delta_place.table().version() == 2


def test_a_conflict_is_retried_on_the_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another writer commits between the load's read of the table and its commit (injected at
    # that moment with a real second load): the load's first commit fails, its retry succeeds.
    from airflow_provider_partner.warehouse import delta

    table = tmp_path / "t"
    first, other, mine = (tmp_path / f"{n}.jsonl" for n in ("first", "other", "mine"))
    first.write_bytes(jsonl([{"id": "a", "updatedDateTime": "2026-11-01T00:00:00Z"}]))
    other.write_bytes(jsonl([{"id": "b", "updatedDateTime": "2026-11-02T00:00:00Z"}]))
    mine.write_bytes(jsonl([{"id": "c", "updatedDateTime": "2026-11-03T00:00:00Z"}]))
    merge_referrals_delta(first, table)
    opened = delta._open_or_create
    calls = []

    def open_then_someone_commits(*args: Any) -> Any:
        handle = opened(*args)
        calls.append(handle.version())
        if len(calls) == 1:
            monkeypatch.setattr(delta, "_open_or_create", opened)  # the interloper opens normally
            merge_referrals_delta(other, table)
            monkeypatch.setattr(delta, "_open_or_create", open_then_someone_commits)
        return handle

    monkeypatch.setattr(delta, "_open_or_create", open_then_someone_commits)
    caplog.set_level("WARNING", logger=delta.__name__)
    assert merge_referrals_delta(mine, table) == {"read": 1, "changed": 1, "rows": 3, "version": 3}
    assert calls == [1, 2]
    assert "conflicted with a concurrent commit (attempt 1 of 6)" in caplog.text

    calls.clear()
    monkeypatch.setattr(delta, "_open_or_create", open_then_someone_commits)
    mine.write_bytes(jsonl([{"id": "d", "updatedDateTime": "2026-11-03T00:00:00Z"}]))
    other.write_bytes(jsonl([{"id": "e", "updatedDateTime": "2026-11-03T00:00:00Z"}]))
    with pytest.raises(
        DeltaConflictError, match=r"conflicted with concurrent commits 1 times; the table has none"
    ):
        merge_referrals_delta(mine, table, max_attempts=1)
    assert sorted(DeltaPlace("file", str(table), list, {}, str(table)).rows()) == ["a", "b", "c", "e"]


def test_a_bad_line_leaves_the_table_unchanged(delta_place: DeltaPlace, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl([{"id": "a", "status": "New", "updatedDateTime": "2026-11-01T00:00:00Z"}]))
    merge_referrals_delta(good, delta_place.url)
    listing, rows = delta_place.listing(), delta_place.rows()
    bad = tmp_path / "bad.jsonl"
    lines = [{"id": f"n{i}", "updatedDateTime": "2026-11-02T00:00:00Z"} for i in range(3)]
    bad.write_bytes(jsonl(lines[:2]) + b'{"id": "broken\n' + jsonl(lines[2:]))
    with pytest.raises(ValueError, match=rf"line 3 of {bad} is not valid JSON .*Nothing was written"):
        merge_referrals_delta([good, bad], delta_place.url)
    no_id = tmp_path / "no_id.jsonl"
    no_id.write_bytes(jsonl([{"updatedDateTime": "2026-11-02T00:00:00Z"}]))
    with pytest.raises(
        ValueError, match=rf"line 1 of {no_id}: a referral needs an id and an updatedDateTime"
    ):
        merge_referrals_delta(no_id, delta_place.url)
    assert delta_place.listing() == listing
    assert delta_place.rows() == rows


def test_compaction_keeps_the_rows_in_fewer_files(tmp_path: Path, referrals: list[dict[str, Any]]) -> None:
    files = day_files(referrals, _first_day(referrals), 3, tmp_path)
    table = tmp_path / "t"
    for path in files:
        merge_referrals_delta(path, table)
    place = DeltaPlace("file", str(table), list, {}, str(table))
    rows = place.rows()
    before = len(place.table().file_uris())
    metrics = optimize_referrals_delta(f"file://{table}")
    assert metrics["numFilesRemoved"] == before > 1
    assert metrics["numFilesAdded"] == len(place.table().file_uris()) == 1
    assert place.rows() == rows
    # The replaced files are younger than the 7-day retention: vacuum keeps them (time travel).
    assert vacuum_referrals_delta(table, dry_run=True) == []
    assert len(list(table.glob("*.parquet"))) == before + 1


def test_unsafe_s3_commits_are_refused_unless_opted_in(
    s3_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_store.fresh()
    one = tmp_path / "one.jsonl"
    one.write_bytes(jsonl([{"id": "a", "updatedDateTime": "2026-11-02T00:00:00Z"}]))
    url = store.url("referrals")
    with pytest.raises(ValueError, match=r"AWS_S3_ALLOW_UNSAFE_RENAME is set \(in storage_options\)"):
        merge_referrals_delta(one, url, storage_options={"AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
    monkeypatch.setenv("AWS_S3_LOCKING_PROVIDER", "dynamodb")
    with pytest.raises(ValueError, match=r"AWS_S3_LOCKING_PROVIDER is set \(in the environment\)"):
        merge_referrals_delta(one, url)
    assert store.listing() == []
    monkeypatch.delenv("AWS_S3_LOCKING_PROVIDER")
    result = merge_referrals_delta(
        one, url, storage_options={"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, allow_unsafe_s3=True
    )
    assert result == {"read": 1, "changed": 1, "rows": 1, "version": 1}
    store.clear()


def test_locations_carry_no_secret_in_text(s3_store: Any, abfs_store: Any) -> None:
    from airflow_provider_partner.warehouse.delta_store import delta_location

    s3 = delta_location(s3_store.url("t"))
    assert s3.uri == f"s3://{s3_store.bucket}/{s3_store.key('t')}"
    assert s3.storage_options == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_store.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    abfs = delta_location(abfs_store.url("t"))
    assert abfs.uri == f"az://{abfs_store.bucket}/{abfs_store.key('t')}"
    key = abfs.storage_options["account_key"]
    # azurite: delta-rs's emulator mode, which lists the log without startFrom (see delta_store).
    emulator = {"account_name": "devstoreaccount1", "account_key": key, "use_emulator": "true"}
    assert abfs.storage_options == emulator
    assert os.environ["AZURITE_BLOB_STORAGE_URL"] == abfs_store.endpoint
    assert str(abfs) == abfs_store.url("t")
    assert key not in repr(abfs)
    assert key not in str(abfs)


def test_unsupported_inputs_and_locations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not Parquet .*output_format='jsonl'"):
        merge_referrals_delta(tmp_path / "day.parquet", tmp_path / "t")
    with pytest.raises(ValueError, match=r"must be file://, s3:// or abfs:// .*got gs://"):
        merge_referrals_delta(tmp_path / "day.jsonl", "gs://conn@bucket/t")
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        merge_referrals_delta(tmp_path / "day.jsonl", tmp_path / "t", max_attempts=0)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        pytest.param(
            {"conn_type": "wasb", "login": "acct", "password": "k3y"},
            {"account_name": "acct", "account_key": "k3y"},
            id="account-and-key",
        ),
        pytest.param(
            {
                "conn_type": "adls",
                "host": "acct",
                "login": "app",
                "password": "s3cret",
                "extra": {"tenant_id": "t"},
            },
            {"account_name": "acct", "tenant_id": "t", "client_id": "app", "client_secret": "s3cret"},
            id="service-principal",
        ),
        pytest.param(
            {
                "conn_type": "wasb",
                "login": "onelake",
                "extra": {"account_host": "onelake.blob.fabric.microsoft.com"},
            },
            {"account_name": "onelake", "use_fabric_endpoint": "true"},
            id="onelake",
        ),
        pytest.param(
            {
                "conn_type": "wasb",
                "extra": {"connection_string": "AccountName=acct;AccountKey=k3y;EndpointSuffix=x"},
            },
            {"account_name": "acct", "account_key": "k3y"},
            id="connection-string",
        ),
    ],
)
def test_azure_connections_become_delta_rs_options(
    conn: dict[str, Any], expected: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partner.warehouse.delta_store import delta_location

    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps(conn))
    location = delta_location("abfss://lake@container/tables/referrals")
    assert location.uri == "az://container/tables/referrals"
    assert location.storage_options == expected
    assert repr(location) == (
        "DeltaLocation(uri='az://container/tables/referrals', display='abfss://lake@container/tables/referrals')"
    )


def test_an_azure_connection_without_an_account_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_partner.warehouse.delta_store import delta_location

    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "wasb", "password": "k3y"}))
    with pytest.raises(ValueError, match=r"connection 'lake' names no storage account") as raised:
        delta_location("abfs://lake@container/t")
    assert "k3y" not in str(raised.value)


def test_the_merge_writes_bounded_snappy_row_groups(
    tmp_path: Path, referrals: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer holds a row group's rows until it is full: bounded groups keep a first load's
    # memory flat (docs/delta-lake.md). 50 rows stand in for the 8,192 of a real load.
    import pyarrow.parquet as pq

    from airflow_provider_partner.warehouse import delta

    monkeypatch.setattr(delta, "_ROW_GROUP_ROWS", 50)
    source = tmp_path / "all.jsonl"
    source.write_bytes(jsonl(referrals))
    table = tmp_path / "t"
    result = merge_referrals_delta(source, table)
    assert result["changed"] == result["rows"] == len(newest([source]))
    groups = [
        pq.ParquetFile(path).metadata.row_group(index)
        for path in sorted(table.glob("*.parquet"))
        for index in range(pq.ParquetFile(path).metadata.num_row_groups)
    ]
    assert sum(group.num_rows for group in groups) == result["rows"]
    assert max(group.num_rows for group in groups) == 50
    assert {group.column(0).compression for group in groups} == {"SNAPPY"}
