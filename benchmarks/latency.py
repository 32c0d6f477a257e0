"""
P8, latency: every page waits ``latency`` seconds on the server, as the real service's do.

The sequential floor (the ``requests`` + orjson loop) and the operator with ``parallelism`` 1, 4
and 8 copy every referral of one emulator; what parallel slices buy is the sequential operator's
time over theirs. The operator runs read the same ``createdDateTime`` window (all the data) so
their output files must be the same bytes whatever the parallelism: each run's SHA-256 is
compared with the sequential run's.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.emulator import FIXED_NOW, EmulatorProcess
from benchmarks.figures import Sample, Stat, alternate, run_contender

__all__ = ["PARALLELISMS", "latency"]

#: The operator's parallelism in each run of the figure; 1 is the sequential reference.
PARALLELISMS = (1, 4, 8)
#: Days the emulator's created times span before FIXED_NOW (the window reaches one day further).
PERIOD_DAYS = 60


def _window() -> tuple[str, str]:
    end = dt.datetime.fromisoformat(FIXED_NOW.replace("Z", "+00:00"))
    start = end - dt.timedelta(days=PERIOD_DAYS + 1)
    return start.isoformat(), end.isoformat()


def _speedup(reference: Sample, parallel: Sample) -> Stat | None:
    """Sequential seconds over parallel seconds, round by round (medians if a run failed)."""
    if not reference.seconds or not parallel.seconds:
        return None
    if len(reference.seconds) == len(parallel.seconds):
        return Stat.of([s / p for s, p in zip(reference.seconds, parallel.seconds, strict=True)])
    return Stat.of([statistics.median(reference.seconds) / statistics.median(parallel.seconds)])


def latency(
    records: int,
    runs: int,
    *,
    floor_runs: int = 1,
    seconds_per_page: float = 0.1,
    page_size: int = 100,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """
    P8: the floor (``floor_runs`` times) and the operator at each of :data:`PARALLELISMS` (``runs``).

    Rounds alternate their order; the floor runs in the first ``floor_runs`` rounds only (a
    sequential copy is ``records / page_size`` waits in a row: at 200,000 over three minutes).
    """
    start, end = _window()
    samples = {"floor": Sample("floor", records)}
    options: dict[str, list[str]] = {"floor": []}
    for parallelism in PARALLELISMS:
        key = f"p{parallelism}"
        samples[key] = Sample("operator", records)
        options[key] = ["--parallelism", str(parallelism), "--window", start, end, "--sha256"]
    emulator = EmulatorProcess(
        records, page_size=page_size, period_days=PERIOD_DAYS, latency_per_page=seconds_per_page
    )
    with emulator as emu, tempfile.TemporaryDirectory() as tmp:
        # The 14-day rule would archive incoming referrals as the emulator's clock passes their
        # expiry, so runs minutes apart would read different data (and write different bytes).
        emu.configure(expire_incoming=False)
        for round_number in range(max(runs, floor_runs)):
            for key in alternate(list(samples), round_number):
                wanted = floor_runs if key == "floor" else runs
                if round_number < wanted:
                    run_contender(emu, samples[key], tmp, log, options[key], label=key)
    sequential = samples["p1"]
    reference = set(sequential.hashes)
    return {
        "records": records,
        "latency": seconds_per_page,
        "page_size": page_size,
        "window": [start, end],
        "samples": samples,
        "speedup": {p: _speedup(sequential, samples[f"p{p}"]) for p in PARALLELISMS[1:]},
        # One digest over every sequential run, and every parallel run's the same one.
        "same_bytes": {
            p: len(reference) == 1
            and bool(samples[f"p{p}"].hashes)
            and set(samples[f"p{p}"].hashes) == reference
            for p in PARALLELISMS[1:]
        },
        "sha256": sorted(reference),
    }
