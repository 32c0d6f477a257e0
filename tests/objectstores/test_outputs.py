"""
The operator's output files on S3, Azure Blob and GCS: contents, atomic publish, reruns, lineage.

Each test runs the operator as a task would, with ``output_path`` a URL users write
(``<scheme>://<conn_id>@<bucket>/...``), against the Partner Center emulator and one of the real
object-store servers; what the server holds is read back with the store's own SDK.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

import pytest
from airflow.sdk import Asset

from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator
from objectstores.output_helpers import (
    FORMATS,
    assert_output_holds,
    context,
    every_referral,
    in_window,
    jsonl,
    week,
)


@pytest.mark.parametrize("output_format", FORMATS)
def test_the_output_holds_exactly_the_windows_referrals_and_nothing_is_left_beside_it(
    object_store, partner_center_emulator, output_format
):
    emu = partner_center_emulator
    emu.configure(page_size=40)
    start, end = week()
    name = f"referrals.{output_format}"
    op = PartnerCenterReferralsOperator(
        task_id="to_store", output_path=object_store.url(f"daily/{name}"), output_format=output_format
    )

    manifest = op.execute(context(start, end))

    expected = in_window(emu, start, end)
    assert len(expected) > 40  # more than one page
    assert (manifest["path"], manifest["count"], manifest["pages"]) == (
        object_store.url(f"daily/{name}"),
        len(expected),
        -(-len(expected) // 40),
    )
    # No temporary key and no checkpoint folder (written beside the output while paging) remain.
    assert object_store.listing() == [f"daily/{name}"]
    assert_output_holds(output_format, object_store.read(f"daily/{name}"), expected)


class Poller(threading.Thread):
    """Reads one object again and again with the store's SDK, keeping each change of its content."""

    def __init__(self, store: Any, key: str) -> None:
        super().__init__(daemon=True)
        self.store, self.key = store, key
        #: The content's successive states: ``None`` (absent) or the SHA-256 of the bytes read.
        self.states: list[str | None] = []
        self.reads = 0
        self.finish = threading.Event()
        self._changes: queue.Queue[str | None] = queue.Queue()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                last = self.finish.is_set()  # one more read after the writer finished
                data = self.store.read_or_none(self.key)
                state = None if data is None else hashlib.sha256(data).hexdigest()
                self.reads += 1
                if not self.states or self.states[-1] != state:
                    self.states.append(state)
                    self._changes.put(state)
                if last:
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the test, which fails with it
            self.error = err
            self._changes.put("error")

    def wait_for(self, state: str | None) -> None:
        """Block until the poller has read ``state`` (it has seen everything before it too)."""
        while (seen := self._changes.get(timeout=60)) != state:
            assert seen != "error", self.error

    def stop(self) -> list[str | None]:
        self.finish.set()
        self.join(timeout=60)
        assert self.error is None, self.error
        return self.states


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_reader_sees_no_object_then_whole_ones_and_a_rerun_replaces_it(
    object_store, partner_center_emulator
):
    emu = partner_center_emulator
    start, end = week()
    url = object_store.url("out/referrals.jsonl")
    poller = Poller(object_store, "out/referrals.jsonl")
    poller.start()
    try:
        poller.wait_for(None)
        PartnerCenterReferralsOperator(task_id="first", output_path=url).execute(context(start, end))
        week_only = in_window(emu, start, end)
        poller.wait_for(_digest(jsonl(week_only)))

        # The rerun writes every referral (~7 MB, seven 1 MiB writes) over the week's file.
        reads_before = poller.reads
        manifest = PartnerCenterReferralsOperator(
            task_id="rerun", output_path=url, window_field=None
        ).execute(context())
        reads_during = poller.reads - reads_before
    finally:
        states = poller.stop()

    everything = every_referral(emu)
    assert manifest["count"] == len(everything) == 2000
    assert reads_during >= 2  # the reader was polling while the rerun wrote
    # Only whole objects were ever read: none, the first run's, then the rerun's.
    assert states == [None, _digest(jsonl(week_only)), _digest(jsonl(everything))]
    assert object_store.listing("out/") == ["referrals.jsonl"]


def test_asset_event_hook_lineage_and_openlineage_name_the_object_without_the_connection(
    object_store, partner_center_emulator
):
    from airflow.sdk.lineage import get_hook_lineage_collector

    start, end = week()
    url = object_store.url("lineage/referrals.parquet")
    uri = f"{object_store.scheme}://partner-tests/{object_store.prefix}/lineage/referrals.parquet"
    op = PartnerCenterReferralsOperator(task_id="lineage", output_path=url, output_format="parquet")
    run_context = context(start, end)
    get_hook_lineage_collector.cache_clear()  # this process's collector, without earlier tests' assets
    try:
        manifest = op.execute(run_context)
        collected = get_hook_lineage_collector().collected_assets
    finally:
        get_hook_lineage_collector.cache_clear()

    assert uri == object_store.asset_uri("lineage/referrals.parquet")
    assert op.outlets == [Asset(uri)]
    assert run_context["outlet_events"][Asset(uri)].extra == {
        "count": manifest["count"],
        "received": manifest["received"],
        "duplicates_removed": manifest["received"] - manifest["count"],
        "pages": manifest["pages"],
        "window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        "format": "parquet",
        "path": url,
    }
    assert [(o.asset.uri, str(o.context), o.count) for o in collected.outputs] == [(uri, url, 1)]
    lineage = op.get_openlineage_facets_on_complete(None)
    # OpenLineage's naming: the bucket (container) is the namespace, the key the name.
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (f"{object_store.scheme}://partner-tests", f"{object_store.prefix}/lineage/referrals.parquet")
    ]
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == manifest["count"]
