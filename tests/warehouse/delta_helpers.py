"""
Helpers of the Delta Lake target's tests: the emulator's referrals as the operator's daily files,
and a table on each store (a local folder, azurite's ADLS, moto's S3) read back with deltalake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.instants import sort_key

DAY = dt.timedelta(days=1)
LOOKBACK = dt.timedelta(hours=2)
#: The stores every behaviour is checked on.
STORES = ("file", "abfs", "s3")


def iso(moment: dt.datetime) -> str:
    """An instant in the API's 7-digit text."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """JSONL as the operator writes it: compact JSON, UTF-8, a newline after each record."""
    return b"".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records
    )


def day_files(referrals: list[dict[str, Any]], first: dt.datetime, days: int, folder: Path) -> list[Path]:
    """
    The operator's daily files of ``days`` days from ``first``: each day's window plus the
    2-hour lookback (so consecutive files overlap), in output order (updatedDateTime, id).
    """
    files = []
    for number in range(days):
        start = first + number * DAY
        low, high = iso(start - LOOKBACK), iso(start + DAY)
        window = sorted(
            (r for r in referrals if low <= r["updatedDateTime"] < high),
            key=lambda r: (r["updatedDateTime"], r["id"]),
        )
        path = folder / f"{start:%Y-%m-%d}.jsonl"
        path.write_bytes(jsonl(window))
        files.append(path)
    return files


def newest(files: list[Path]) -> dict[str, dict[str, Any]]:
    """``{id: referral}``: the newest version of each id across ``files`` (what the table must hold)."""
    latest: dict[str, dict[str, Any]] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            referral = json.loads(line)
            held = latest.get(referral["id"])
            if held is None or sort_key(referral["updatedDateTime"]) > sort_key(held["updatedDateTime"]):
                latest[referral["id"]] = referral
    return latest


@dataclasses.dataclass
class DeltaPlace:
    """
    A table's location on one store, as users write it, and what the store holds there.

    :param kind: ``file``, ``abfs`` or ``s3``.
    :param url: the location passed to the load (``file://...``, ``abfs://conn@container/key``, ...).
    :param listing: the object keys (files) below the table, relative to it, sorted.
    :param options: delta-rs storage options for reading the table back in the test.
    :param uri: the URI deltalake opens.
    """

    kind: str
    url: str
    listing: Callable[[], list[str]]
    options: dict[str, str]
    uri: str

    def table(self) -> Any:
        """The table at its newest version (deltalake's ``DeltaTable``)."""
        from deltalake import DeltaTable

        return DeltaTable(self.uri, storage_options=self.options)

    def rows(self) -> dict[str, dict[str, Any]]:
        """``{id: row}`` of the table's newest version."""
        return {row["id"]: row for row in self.table().to_pyarrow_table().to_pylist()}

    def log(self) -> list[str]:
        """The files of the Delta log (commits, checkpoints)."""
        return [name for name in self.listing() if "_delta_log/" in name]


def _local_listing(root: Path) -> Callable[[], list[str]]:
    def listing() -> list[str]:
        if not root.exists():
            return []
        return sorted(
            "/" + os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root)
            for name in names
        )

    return listing


@pytest.fixture(params=STORES)
def delta_place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeltaPlace]:
    """A fresh table location on each store in turn; its files are removed after the test."""
    from airflow_provider_partner.warehouse.delta_store import delta_location

    kind = str(request.param)
    if kind == "file":
        root = tmp_path / "lake" / "referrals"
        url = f"file://{root}"
        place = DeltaPlace(kind, url, _local_listing(root), {}, str(root))
        yield place
        return
    store = request.getfixturevalue(f"{kind}_store").fresh()
    url = store.url("referrals")
    location = delta_location(url)
    yield DeltaPlace(kind, url, lambda: store.listing("referrals"), location.storage_options, location.uri)
    store.clear()
