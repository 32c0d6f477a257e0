"""
``make bench``: every figure, a table on stdout and in ``docs/performance.md``.

``python -m benchmarks.run [--quick] [--runs N] [--large-runs N] [--close-runs N] [--only P1,P8] ...``
(``--help`` lists every option). ``--quick`` is for development (small sizes, 1-2 runs): it prints
but does not touch the docs; so does a run of some figures only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import figures, latency, report
from benchmarks.emulator import SERVERS

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
RAW = Path(__file__).resolve().parent.parent / ".venv-bench" / "last-run.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes, 1-2 runs; docs untouched")
    add("--runs", type=int, default=5, help="runs of every figure on the keep-alive server (default 5)")
    add("--large-runs", type=int, default=5, help="floor and operator runs at the large size (default 5)")
    add("--peer-large-runs", type=int, default=3, help="HttpOperator runs at the large size (default 3)")
    add("--close-runs", type=int, default=3, help="runs per contender, connection-per-request (default 3)")
    add("--backfill-runs", type=int, default=1, help="runs of each backfill (default 1: ~1.5 min)")
    add("--dlt-runs", type=int, default=None, help="dlt runs at the small size (default: --runs)")
    add("--dlt-large-runs", type=int, default=0, help="dlt runs at the large size (default 0: ~2 min each)")
    add("--small", type=int, default=20_000, help="small size (default 20,000)")
    add("--mid", type=int, default=50_000, help="size of the in-process figure P7 (default 50,000)")
    add("--large", type=int, default=200_000, help="large size (default 200,000)")
    add("--latency-size", type=int, default=200_000, help="referrals of the latency figure P8")
    add("--latency-runs", type=int, default=3, help="P8 runs of each parallelism (default 3)")
    add("--latency-floor-runs", type=int, default=1, help="P8 runs of the sequential floor (default 1)")
    add("--latency", type=float, default=0.1, help="P8 seconds per page (default 0.1)")
    add("--only", default=",".join(ORDER), help="comma-separated figures to run")
    add("--no-docs", action="store_true", help="do not write docs/performance.md")
    return parser


#: The figures in the order they run.
ORDER = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8")


def _default(value: Any) -> Any:
    if isinstance(value, figures.Stat | figures.Sample):
        return value.__dict__
    raise TypeError(type(value).__name__)


def _quick(args: argparse.Namespace) -> None:
    args.runs, args.large_runs, args.peer_large_runs, args.close_runs = 2, 2, 1, 1
    args.small, args.mid, args.large = 2_000, 3_000, 5_000
    args.backfill_runs = 1
    args.dlt_runs, args.dlt_large_runs = 1, min(args.dlt_large_runs, 1)
    args.latency_size, args.latency_runs, args.latency_floor_runs = 5_000, 1, 1


def _throughput(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, dict[int, Any]]:
    """P1-P3 on both servers at the small and the large size."""
    everyone = ("floor", "operator", "http_operator", "dlt")
    by_server: dict[str, dict[int, Any]] = {server: {} for server in SERVERS}
    dlt = args.runs if args.dlt_runs is None else args.dlt_runs
    plans = {
        args.small: {
            "keep-alive": {**dict.fromkeys(everyone, args.runs), "dlt": dlt},
            "connection-per-request": {
                **dict.fromkeys(everyone, args.close_runs),
                "dlt": min(dlt, args.close_runs),
            },
        },
        args.large: {
            "keep-alive": {
                "floor": args.large_runs,
                "operator": args.large_runs,
                "http_operator": args.peer_large_runs,
                "dlt": args.dlt_large_runs,
            },
            "connection-per-request": {
                "floor": args.close_runs,
                "operator": args.close_runs,
                "http_operator": min(args.close_runs, args.peer_large_runs),
            },
        },
    }
    for records, plan in plans.items():
        log(f"P1-P3 at {records:,} referrals")
        for server, samples in figures.throughput(records, plan, log=log).items():
            by_server[server][records] = samples
    return by_server


def main(argv: list[str] | None = None) -> int:
    """Run the figures asked for; print and record the table."""
    args = _parser().parse_args(argv)
    if args.quick:
        _quick(args)
    only = {item.strip().upper() for item in args.only.split(",")}
    started = time.monotonic()
    given = sys.argv[1:] if argv is None else argv
    results: dict[str, Any] = {
        "machine": report.machine(),
        "page_size": 100,
        "p1": {},
        "options": " ".join(given) or "(defaults)",
    }

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {line}", flush=True)

    machine = results["machine"]
    print(f"Benchmarks on {machine['cpu']} ({machine['cores']} cores), load {machine['load']}", flush=True)
    figures.compile_bytecode()
    if "P4" in only:
        log("P4 import cost")
        results["imports"] = figures.import_cost(args.runs, log)
    if only & {"P1", "P2", "P3"}:
        results["p1"] = _throughput(args, log)
    if "P7" in only:
        log(f"P7 in-process at {args.mid:,} referrals")
        results["in_process"] = {"records": args.mid, "samples": figures.in_process(args.mid, args.runs, log)}
    if "P8" in only:
        log(f"P8 latency: {args.latency_size:,} referrals, {args.latency * 1000:.0f} ms per page")
        results["latency"] = latency.latency(
            args.latency_size,
            args.latency_runs,
            floor_runs=args.latency_floor_runs,
            seconds_per_page=args.latency,
            log=log,
        )
    if "P5" in only:
        log("P5 backfill")
        results["backfill"] = figures.backfill(
            args.backfill_runs, latency=0.02 if args.quick else 0.1, log=log
        )
    if "P6" in only:
        log("P6 soak")
        results["soak"] = figures.soak(log=log)
    results["seconds"] = time.monotonic() - started
    results["load_at_end"] = report.load()
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(results, default=_default, indent=1))
    block = report.render(results)
    print()
    print(block)
    if only != set(ORDER):
        log(f"partial run: docs untouched; raw figures in {RAW}")
    elif not args.quick and not args.no_docs:
        report.write_doc(DOC, block)
        log(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
