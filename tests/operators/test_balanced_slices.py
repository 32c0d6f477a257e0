"""Parallel slices cut by count: skewed data, the full history, and a 429 storm shared by all slices."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from typing import Any

import pytest
from operator_helpers import expected_referrals, midnight_today
from partner_center_emulator.faults import Faults

from airflow_provider_partner.extract.engine import Extraction
from airflow_provider_partner.extract.slices import ExtractionPlan, split_window
from airflow_provider_partner.extract.window import Window
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

#: Every slice holds its share (total / parallelism) within this fraction: each cut is searched to
#: within balance.TOLERANCE (4%) of a share, so a slice, between two cuts, is within 8%.
SLICE_BOUND = 0.08
FIXED_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def _connect(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(emulator.info["airflow_conn"])
    conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.2})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.info["ca_bundle"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))


def _write(plan: ExtractionPlan, path: Any) -> Any:
    from airflow.sdk import ObjectStoragePath

    return Extraction("partner_center_default", plan).to_file(ObjectStoragePath(f"file://{path}"), "jsonl")


def test_skewed_data_gives_slices_of_equal_counts_and_the_same_bytes(
    emulator_factory, monkeypatch, tmp_path, caplog
):
    # 500 referrals spread over the day before "now", then 2,500 created in one burst at "now":
    # equal-length slices of the 25 hours would put 2,500+ in the last one.
    emulator = emulator_factory(referrals=500, seed=11, period_days=1, now=FIXED_NOW)
    emulator.release_incoming(2500)
    _connect(emulator, monkeypatch)
    window = Window(
        start=FIXED_NOW - dt.timedelta(days=1),
        end=FIXED_NOW + dt.timedelta(hours=1),
        interval_start=FIXED_NOW - dt.timedelta(days=1),
        source="operator",
    )
    caplog.set_level("INFO", logger="airflow_provider_partner.extract.balance")
    outputs = {}
    for parallelism in (1, 4):
        plan = ExtractionPlan(window_field="createdDateTime", window=window, parallelism=parallelism)
        outputs[parallelism] = tmp_path / f"p{parallelism}.jsonl"
        result = _write(plan, outputs[parallelism])
        assert result.count == 3000
    assert outputs[4].read_bytes() == outputs[1].read_bytes()
    assert result.slices == 4
    share = 3000 / 4
    assert sum(result.per_slice) == 3000
    assert all(abs(count - share) <= SLICE_BOUND * share for count in result.per_slice), result.per_slice
    # The last equal length held the burst (2,600 of 3,000): its first pages were dropped and,
    # after them, every cut needed at least one count probe of its own.
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Balanced 4 slice(s)")]
    assert line.endswith("(cuts searched)"), line
    assert " and 4 first page(s) " in line, line
    assert int(line.split(" with ")[1].split()[0]) >= 3, line


def test_evenly_spread_referrals_are_sliced_by_their_first_pages_alone(emu, tmp_path, caplog):
    # 20 days of the emulator's referrals, created at random times: each of four equal lengths
    # holds its share within a few dozen, well inside REFINE_SURPLUS, so no cut is searched.
    emu.reset_stats()
    start, end = midnight_today() - dt.timedelta(days=20), midnight_today()
    window = Window(start=start, end=end, interval_start=start, source="operator")
    plan = ExtractionPlan(window_field="createdDateTime", window=window, parallelism=4)
    caplog.set_level("INFO", logger="airflow_provider_partner.extract.balance")
    result = _write(plan, tmp_path / "four.jsonl")
    lengths = [
        len(expected_referrals(emu, a.to_datetime(), b.to_datetime(), "createdDateTime"))
        for a, b in split_window(window, 4)
    ]
    assert result.per_slice == tuple(lengths)
    # Not one request before paging: the first page of each length carried its count.
    assert (
        f"Balanced 4 slice(s) of {sum(lengths)} referral(s) on createdDateTime with 0 count probe(s) "
        "and 4 first page(s)" in caplog.text
    )
    assert "(equal lengths were even enough: paging goes on from their first pages)" in caplog.text
    assert emu.stats()["pages_served"] == result.pages


def test_a_full_history_extraction_runs_in_parallel_with_the_same_bytes(emu, make_context, tmp_path, caplog):
    sequential, parallel = tmp_path / "one.jsonl", tmp_path / "four.jsonl"
    for path, parallelism in ((sequential, 1), (parallel, 4)):
        PartnerCenterReferralsOperator(
            task_id=f"history{parallelism}",
            window_field=None,
            output_path=f"file://{path}",
            parallelism=parallelism,
        ).execute(make_context())
    assert parallel.read_bytes() == sequential.read_bytes()
    assert len(sequential.read_bytes().splitlines()) == 2000
    # The oldest and newest referral (two probes), then the first pages of the four lengths.
    assert (
        "Balanced 4 slice(s) of 2000 referral(s) on createdDateTime with 2 count probe(s) and 4 first page(s)"
        in caplog.text
    )


class _RequestLog(Faults):
    """The emulator's faults, with a log of every API request's arrival and a 429 storm at ``storm_at``."""

    def __init__(self, storm_at: int | None = None, storm: int = 0) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str | None]] = []
        self._log_lock = threading.Lock()
        self._storm = range(storm_at, storm_at + storm) if storm_at is not None else range(0)

    def next(self) -> str | None:
        with self._log_lock:
            number = len(self.arrivals)
            fault = "429" if number in self._storm else super().next()
            self.arrivals.append((time.monotonic(), fault))
        return fault


def test_a_429_holds_back_every_slice(emu, tmp_path):
    start, end = midnight_today() - dt.timedelta(days=20), midnight_today()
    emu.configure(page_size=10)
    window = Window(start=start, end=end, interval_start=start, source="operator")
    plan = ExtractionPlan(window_field="updatedDateTime", window=window, parallelism=4)
    sequential = ExtractionPlan(window_field="updatedDateTime", window=window)
    _write(sequential, tmp_path / "one.jsonl")
    # A calm run tells how many count probes come before paging (the same data: the same probes).
    calm = emu.faults = _RequestLog()
    result = _write(plan, tmp_path / "calm.jsonl")
    probes = len(calm.arrivals) - result.pages
    # The storm: a 429 (Retry-After 1 s, held to the connection's max_retry_wait) for one slice,
    # then another for the next request, once every slice is paging (its second request).
    stormy = emu.faults = _RequestLog(storm_at=probes + 8, storm=2)
    stormed = _write(plan, tmp_path / "storm.jsonl")

    assert (tmp_path / "storm.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert stormed.count == result.count
    first = next(at for at, fault in stormy.arrivals if fault == "429")
    # The throttled client holds every slice back for max_retry_wait (0.2 s) from when it read
    # the 429: after what was already on the wire, nothing reaches the server for about that
    # long, while most of the paging is still to come. Without the shared hold the other slices
    # go on sending a page every few ms, and the only pause is the throttled slice's own wait at
    # the end. (How much was on the wire depends on how fast the client read the 429: on a
    # loaded machine, a few requests per slice.)
    after = [at for at, _ in stormy.arrivals if at >= first]
    pause = next(
        (index for index, (earlier, later) in enumerate(itertools.pairwise(after)) if later - earlier >= 0.1),
        None,
    )
    assert pause is not None, [round(at - first, 3) for at in after]
    assert pause < len(after) // 4, [round(at - first, 3) for at in after]
    assert len([fault for _, fault in stormy.arrivals if fault == "429"]) == 2


def test_without_counts_the_window_is_cut_into_equal_lengths(emu, tmp_path, monkeypatch, caplog):
    # A server that sends no @odata.count (the emulator always does: its pages answer None here).
    from airflow_provider_partner.extract import balance

    monkeypatch.setattr(balance, "count_of", lambda page: None)
    start, end = midnight_today() - dt.timedelta(days=20), midnight_today()
    window = Window(start=start, end=end, interval_start=start, source="operator")
    one = _write(ExtractionPlan(window_field="updatedDateTime", window=window), tmp_path / "one.jsonl")
    four = _write(
        ExtractionPlan(window_field="updatedDateTime", window=window, parallelism=4), tmp_path / "four.jsonl"
    )
    assert (tmp_path / "four.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert four.slices == 4
    assert sum(four.per_slice) == one.count
    assert "No @odata.count from the API: slicing into equal lengths" in caplog.text
