"""The dedup spool, the slice merge and the output writers, without the API."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading

import pytest

from airflow_provider_partner.errors import PartnerCenterResponseError
from airflow_provider_partner.extract.fetch import fetch_into_spool
from airflow_provider_partner.extract.spool import (
    SPOOL_PREFIX,
    ReferralSpool,
    remove_stale_spools,
)
from airflow_provider_partner.extract.writers import AtomicObjectWriter, write_output
from airflow_provider_partner.hooks.paging import ReferralPage
from airflow_provider_partner.instants import sort_key


def _ref(referral_id: str, updated: str, **fields) -> dict:
    return {
        "id": referral_id,
        "updatedDateTime": updated,
        "createdDateTime": "2026-10-01T00:00:00Z",
        **fields,
    }


def test_sort_key_orders_instants_not_strings():
    texts = [
        "2026-11-01T10:00:00.5Z",
        "2026-11-01T10:00:00Z",
        "2026-11-01T12:00:00.2500000+02:00",
        "2026-11-01T10:00:00.1234567Z",
        "2026-11-01T10:00:00.12345678Z",
    ]
    assert [sort_key(t) for t in texts] == [
        "2026-11-01T10:00:00.5000000Z",
        "2026-11-01T10:00:00.0000000Z",
        "2026-11-01T10:00:00.2500000Z",
        "2026-11-01T10:00:00.1234567Z",
        "2026-11-01T10:00:00.1234567Z",
    ]
    assert sort_key(None) == sort_key("not a date") == sort_key(5) == ""


def test_spool_keeps_the_latest_version_once_in_window_order(tmp_path):
    with ReferralSpool(directory=str(tmp_path)) as spool:
        spool.add([_ref("b", "2026-11-01T10:00:00Z", v=1), _ref("a", "2026-11-01T11:00:00Z", v=1)])
        spool.add([_ref("b", "2026-11-01T12:00:00.5Z", v=2), _ref("c", "2026-11-01T10:00:00Z", v=1)])
        spool.add([_ref("b", "2026-11-01T12:00:00Z", v=0), _ref("a", "2026-11-01T11:00:00Z", v=9)])
        assert (spool.received, spool.count()) == (6, 3)
        assert [(r["id"], r["v"]) for r in spool.iter_records()] == [("c", 1), ("a", 1), ("b", 2)]
        with pytest.raises(RuntimeError, match="being read"):
            spool.add([_ref("d", "2026-11-01T10:00:00Z")])
    assert list(tmp_path.iterdir()) == []


def test_spool_orders_by_another_window_field(tmp_path):
    with ReferralSpool(order_field="createdDateTime", directory=str(tmp_path)) as spool:
        spool.add([_ref("x", "2026-11-03T00:00:00Z", createdDateTime="2026-10-02T00:00:00Z")])
        spool.add([_ref("y", "2026-11-01T00:00:00Z", createdDateTime="2026-10-01T00:00:00Z")])
        assert [json.loads(b)["id"] for b in spool.iter_json()] == ["y", "x"]


def test_spool_refuses_a_referral_without_id(tmp_path):
    with ReferralSpool(directory=str(tmp_path)) as spool, pytest.raises(PartnerCenterResponseError) as caught:
        spool.add([{"name": "no id"}])
    assert str(caught.value) == (
        "A referral without a usable 'id' (None) was returned; duplicates cannot be removed without it. "
        "If $select is used, keep 'id' in it."
    )


def test_stale_spools_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"{SPOOL_PREFIX}{int(dead.stdout)}-abc"
    alive = tmp_path / f"{SPOOL_PREFIX}{os.getpid()}-def"
    other = tmp_path / "unrelated"
    for folder in (stale, alive, other):
        folder.mkdir()
    assert remove_stale_spools(str(tmp_path)) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


class _PagesHook:
    """Serves fixed pages per filter: the merge logic without HTTP."""

    def __init__(self, pages: dict[str, list[list[dict]]], fail_on: str | None = None) -> None:
        self.pages = pages
        self.fail_on = fail_on

    def iter_pages(self, *, filter, **_):
        for number, records in enumerate(self.pages[filter], 1):
            if filter == self.fail_on and number == 2:
                raise PartnerCenterResponseError("page 2 is broken")
            yield ReferralPage(records=records, number=number)


def test_slices_merge_into_one_copy_of_each_referral(tmp_path):
    pages = {
        "s1": [[_ref("a", "2026-11-01T01:00:00Z", v=1)], [_ref("b", "2026-11-01T02:00:00Z", v=1)]],
        "s2": [[_ref("a", "2026-11-01T13:00:00Z", v=2), _ref("c", "2026-11-01T14:00:00Z", v=1)]],
    }
    hooks = [_PagesHook(pages), _PagesHook(pages)]
    with ReferralSpool(directory=str(tmp_path)) as spool:
        stats = fetch_into_spool(hooks, [{"filter": "s1"}, {"filter": "s2"}], spool, threading.Event())
        assert (stats.pages, stats.received) == (3, 4)
        assert [(r["id"], r["v"]) for r in spool.iter_records()] == [("b", 1), ("a", 2), ("c", 1)]


def test_a_failing_slice_stops_the_others_and_raises(tmp_path):
    many = [[_ref(f"x{i}", "2026-11-01T01:00:00Z")] for i in range(500)]
    pages = {"ok": many, "bad": [[_ref("a", "2026-11-01T01:00:00Z")]] * 3}
    stop = threading.Event()
    hooks = [_PagesHook(pages, fail_on="bad"), _PagesHook(pages, fail_on="bad")]
    with (
        ReferralSpool(directory=str(tmp_path)) as spool,
        pytest.raises(PartnerCenterResponseError, match="broken"),
    ):
        fetch_into_spool(hooks, [{"filter": "ok"}, {"filter": "bad"}], spool, stop)
    assert stop.is_set()


@pytest.fixture
def filled_spool(tmp_path):
    with ReferralSpool(directory=str(tmp_path)) as spool:
        spool.add(
            [
                _ref(
                    "1", "2026-11-01T10:00:00.1234567Z", status="New", details={"dealValue": 5}, isSpam=False
                ),
                _ref(
                    "2",
                    "2026-11-01T11:00:00Z",
                    status=7,
                    closedDateTime="soon",
                    isSpam="no",
                    brandNewField={"x": [1]},
                    name="Łukasz ☃",
                ),
            ]
        )
        yield spool


def test_jsonl_and_gzip_are_byte_for_byte_reproducible(filled_spool):
    plain, zipped = io.BytesIO(), io.BytesIO()
    assert write_output("jsonl", filled_spool, plain) == 2
    assert write_output("jsonl.gz", filled_spool, zipped) == 2
    assert gzip.decompress(zipped.getvalue()) == plain.getvalue()
    assert plain.getvalue().count(b"\n") == 2
    again = io.BytesIO()
    write_output("jsonl.gz", filled_spool, again)
    assert again.getvalue() == zipped.getvalue()  # no name, mtime 0 in the gzip header
    assert [json.loads(line)["id"] for line in plain.getvalue().splitlines()] == ["1", "2"]


def test_parquet_schema_is_fixed_and_nothing_is_lost(filled_spool):
    import pyarrow.parquet as pq

    from airflow_provider_partner.extract.parquet import parquet_schema

    buffer = io.BytesIO()
    assert write_output("parquet", filled_spool, buffer) == 2
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.schema == parquet_schema()
    rows = table.to_pylist()
    assert [r["status"] for r in rows] == ["New", None]
    assert [r["isSpam"] for r in rows] == [False, None]
    assert rows[1]["closedDateTime"] is None
    assert rows[0]["updatedDateTime"].isoformat() == "2026-11-01T10:00:00.123456+00:00"
    assert json.loads(rows[0]["details"]) == {"dealValue": 5}
    assert rows[0]["extra_json"] is None
    assert json.loads(rows[1]["extra_json"]) == {
        "brandNewField": {"x": [1]},
        "closedDateTime": "soon",
        "isSpam": "no",
        "status": 7,
    }
    assert rows[1]["name"] == "Łukasz ☃"

    empty = io.BytesIO()
    with ReferralSpool() as nothing:
        assert write_output("parquet", nothing, empty) == 0
    assert pq.read_table(io.BytesIO(empty.getvalue())).schema == parquet_schema()


def test_atomic_writer_publishes_or_leaves_nothing(tmp_path, filled_spool):
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/deep/er/out.jsonl")
    failed = AtomicObjectWriter(target)
    write_output("jsonl", filled_spool, failed.open())
    failed.discard()  # what a failed or killed run does instead of publish()
    assert list((tmp_path / "deep" / "er").iterdir()) == []

    writer = AtomicObjectWriter(target)
    write_output("jsonl", filled_spool, writer.open())
    assert [p.name.split(".partial-")[0] for p in (tmp_path / "deep" / "er").iterdir()] == [".out.jsonl"]
    assert not target.exists()
    writer.publish()
    writer.discard()
    assert [p.name for p in (tmp_path / "deep" / "er").iterdir()] == ["out.jsonl"]
    assert target.read_bytes().count(b"\n") == 2
