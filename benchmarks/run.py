"""
``make bench``: every figure, a table on stdout and in ``docs/performance.md``.

``python -m benchmarks.run [--quick] [--runs N] [--large-runs N] [--dlt-large-runs N] [--only P1,P5]``.
``--quick`` is for development (small sizes, 2 runs): it prints but does not touch the docs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import figures, report

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
RAW = Path(__file__).resolve().parent.parent / ".venv-bench" / "last-run.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 runs; docs untouched")
    parser.add_argument("--runs", type=int, default=5, help="runs of every figure (default 5)")
    parser.add_argument(
        "--large-runs", type=int, default=5, help="runs per contender at the large size (default 5)"
    )
    parser.add_argument(
        "--backfill-runs", type=int, default=3, help="runs of each backfill (default 3: ~1 min each)"
    )
    parser.add_argument(
        "--dlt-large-runs", type=int, default=0, help="dlt runs at the large size (default 0: ~2 min each)"
    )
    parser.add_argument("--small", type=int, default=20_000, help="small size (default 20,000)")
    parser.add_argument("--large", type=int, default=200_000, help="large size (default 200,000)")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6", help="comma-separated figures to run")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/performance.md")
    return parser


def _default(value: Any) -> Any:
    if isinstance(value, figures.Stat | figures.Sample):
        return value.__dict__
    raise TypeError(type(value).__name__)


def main(argv: list[str] | None = None) -> int:
    """Run the figures asked for; print and record the table."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.runs, args.large_runs, args.small, args.large = 2, 2, 2_000, 5_000
        args.backfill_runs = 1
        args.dlt_large_runs = min(args.dlt_large_runs, 1)
    only = {item.strip().upper() for item in args.only.split(",")}
    started = time.monotonic()
    results: dict[str, Any] = {"machine": report.machine(), "page_size": 100, "sizes": {}}

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {line}", flush=True)

    print(f"Benchmarks on {results['machine']['cpu']} ({results['machine']['cores']} cores)", flush=True)
    figures.compile_bytecode()
    if "P4" in only:
        log("P4 import cost")
        results["imports"] = figures.import_cost(args.runs, log)
    if only & {"P1", "P2", "P3"}:
        base = {"floor": args.runs, "operator": args.runs, "http_operator": args.runs, "dlt": args.runs}
        log(f"P1-P3 at {args.small:,} referrals")
        results["sizes"][args.small] = figures.throughput(args.small, base, log=log)
        large = {**{name: args.large_runs for name in base}, "dlt": args.dlt_large_runs}
        log(f"P1-P3 at {args.large:,} referrals")
        results["sizes"][args.large] = figures.throughput(args.large, large, log=log)
    if "P5" in only:
        log("P5 backfill")
        results["backfill"] = figures.backfill(
            args.backfill_runs, latency=0.02 if args.quick else 0.1, log=log
        )
    if "P6" in only:
        log("P6 soak")
        results["soak"] = figures.soak(log=log)
    results["seconds"] = time.monotonic() - started
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(results, default=_default, indent=1))
    if "imports" not in results or not results["sizes"]:
        log(f"partial run: raw figures in {RAW}")
        return 0
    block = report.render(results)
    print()
    print(block)
    if not args.quick and not args.no_docs:
        report.write_doc(DOC, block)
        log(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
