"""
The operator's path per referral, in-process, against the emulator over keep-alive HTTPS.

``python -m benchmarks.profile_path [--referrals 50000] [--rounds 3] [--top 10]``

The emulator runs in its own process (its own core), pages of 100. In this process, with every
import done before the clock starts, the script times two copies of every referral into a JSONL
file, alternating, best of ``--rounds``:

- the floor: one ``requests.Session``, orjson, follow ``@odata.nextLink``, write each record;
- the operator: ``PartnerCenterReferralsOperator.execute`` (no window, ``file://`` JSONL).

It prints both rates and their ratios: wall-clock, and per CPU-second of this process (every
thread). While the one emulator process is the slower side (2 shared cores), the wall-clock ratio
measures the server; the CPU ratio is the operator's own cost per referral against the floor's.
Then it profiles one more operator run with cProfile (in every thread, the page requests too) and
prints the top functions by cumulative and by own (self) time. The profiled run is slower than the
timed ones (cProfile's overhead is per call); its ranking, not its total, is the figure. The
provider's INFO progress lines are silenced (one line per 10 pages; they would flood the output).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.contenders import prepare_floor, prepare_operator
from benchmarks.emulator import EmulatorProcess

__all__ = ["main"]

_FOLDERS = re.compile(r"/\S*/(?=(airflow_provider_partner/)?[^/\s]+:\d+\()")


def _timed(run: Callable[[], int]) -> tuple[float, float, int]:
    """Wall-clock and CPU seconds of one run (CPU: every thread of this process), and its count."""
    started, cpu = time.perf_counter(), time.process_time()
    count = run()
    return time.perf_counter() - started, time.process_time() - cpu, count


class _AllThreads:
    """cProfile in the calling thread and in every thread started meanwhile (the page requests)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def _start_in_thread(self, *_: object) -> None:
        # Called once, at a new thread's first event: its own profiler then replaces this hook.
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()

    def run(self, function: Callable[[], int]) -> pstats.Stats:
        main = cProfile.Profile()
        threading.setprofile(self._start_in_thread)
        main.enable()
        try:
            function()
        finally:
            main.disable()
            threading.setprofile(None)
        stats = pstats.Stats(main, stream=_Capture())  # type: ignore[arg-type]
        for profile in self.profiles:
            profile.disable()
            stats.add(profile)
        return stats


def _top(stats: pstats.Stats, key: str, limit: int, *restrictions: str) -> str:
    stream = stats.stream = _Capture()  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(*restrictions, limit)
    # Paths shortened after the restriction matched them: the package, then the file.
    lines = [_FOLDERS.sub("", line) for line in stream.text().splitlines()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


def main(argv: list[str] | None = None) -> int:
    """Time the floor and the operator, then profile the operator; print everything."""
    # The task log's INFO progress lines are part of the operator's cost, not of this output.
    logging.getLogger("airflow_provider_partner").setLevel(logging.WARNING)
    logging.getLogger("airflow.task").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_path", description=__doc__)
    parser.add_argument("--referrals", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    with EmulatorProcess(args.referrals) as emulator, tempfile.TemporaryDirectory() as folder:
        os.environ.update(emulator.env())
        # The same two contenders as make bench's (P1), run here in one process.
        floor = prepare_floor(emulator.info, str(Path(folder) / "floor.jsonl"))
        operator = prepare_operator(emulator.info, str(Path(folder) / "operator.jsonl"))
        floor()
        operator()  # warm-up: the token, the connection pools, the emulator's caches
        wall = {"floor": float("inf"), "operator": float("inf")}
        cpu = dict(wall)
        for _ in range(args.rounds):
            for name, run in (("floor", floor), ("operator", operator)):
                seconds, cpu_seconds, count = _timed(run)
                if count != args.referrals:
                    raise SystemExit(f"{name} copied {count} referrals, expected {args.referrals}")
                wall[name] = min(wall[name], seconds)
                cpu[name] = min(cpu[name], cpu_seconds)
        stats = _AllThreads().run(operator)
    n = args.referrals
    print(f"referrals: {n:,} (pages of {emulator.page_size}, keep-alive HTTPS), best of {args.rounds}")
    for name in ("floor", "operator"):
        print(
            f"{name:9} {n / wall[name]:8,.0f} rec/s wall   {n / cpu[name]:8,.0f} rec per CPU-second "
            f"({cpu[name] / n * 1e6:.1f} us CPU per referral)"
        )
    print(f"operator / floor, wall: {wall['floor'] / wall['operator']:.2f}")
    print(f"operator / floor, CPU (in-process cost per referral): {cpu['floor'] / cpu['operator']:.2f}")
    # Cumulative: the provider's own functions (threads waiting for pages would fill the list).
    print(f"\nTop {args.top} provider functions by cumulative time (one profiled run, all threads):")
    print(_top(stats, "cumulative", args.top, "airflow_provider_partner"))
    print(f"Top {args.top} by own time:")
    print(_top(stats, "tottime", args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
