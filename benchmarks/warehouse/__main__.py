"""
``make bench-warehouse``: 200,000 referrals into each warehouse target, beside the peers.

``python -m benchmarks.warehouse [--quick] [--records N] [--small N] [--targets sqlite,postgres]
[--contenders provider,dlt] [--profile] [--no-docs]``. ``--quick`` (20,000 referrals, 2,000 for the
memory pair) and any partial run print but leave ``docs/performance.md`` alone. The figures of
every run go to ``.venv-bench/warehouse-last-run.json``.

Exit status 1 when one of the provider's checks fails (a replay that changes rows, an older file
that wins, a wrong count), 0 otherwise; a contender that fails is a figure, not an error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from benchmarks import report as bench_report
from benchmarks.warehouse import report
from benchmarks.warehouse.data import make_inputs
from benchmarks.warehouse.run import CONTENDER_NAMES, ROOT, TARGETS, run_target

DOC = ROOT / "docs" / "performance.md"
RAW = ROOT / ".venv-bench" / "warehouse-last-run.json"
_VERSIONS = (
    "apache-airflow", "apache-airflow-providers-common-sql", "dlt", "duckdb", "deltalake",
    "psycopg2-binary", "mysqlclient", "pymysql",
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warehouse", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="20,000 and 2,000 referrals; docs untouched")
    add("--records", type=int, default=200_000, help="referrals of the main loads (default 200,000)")
    add("--small", type=int, default=20_000, help="referrals of the memory comparison (default 20,000)")
    add("--targets", default=",".join(TARGETS), help="comma-separated targets")
    add("--contenders", default=",".join(CONTENDER_NAMES), help="comma-separated contenders")
    add("--json", type=Path, default=RAW, help=f"where the figures go (default {RAW.relative_to(ROOT)})")
    add("--profile", action="store_true", help="the provider's first loads under pyinstrument")
    add("--no-docs", action="store_true", help="do not write docs/performance.md")
    add(
        "--merge",
        action="store_true",
        help="keep the other targets of the last run of the same sizes (re-run some targets only)",
    )
    return parser


def _versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{name} {version(name)}" for name in _VERSIONS)


def _profile_lines(path: Path, limit: int = 40) -> list[str]:
    """The head of a pyinstrument text report (the heaviest frames come first)."""
    if not path.exists():
        return []
    lines = [line.rstrip() for line in path.read_text().splitlines() if line.strip()]
    return lines[:limit]


def main(argv: list[str] | None = None) -> int:
    """Run the warehouse benchmark; print the section, and write it to the docs on a full run."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.records, args.small = 20_000, 2_000
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    contenders = tuple(c.strip() for c in args.contenders.split(",") if c.strip())
    unknown = (set(targets) - set(TARGETS)) | (set(contenders) - set(CONTENDER_NAMES))
    if unknown:
        raise SystemExit(f"unknown targets or contenders: {', '.join(sorted(unknown))}")
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {line}", flush=True)

    raw = args.json
    child_log = raw.with_suffix(".children.log")
    raw.parent.mkdir(exist_ok=True)
    child_log.write_text("")
    results: dict[str, Any] = {
        "machine": bench_report.machine(),
        "versions": _versions(),
        "records": args.records,
        "small": args.small,
        "targets": {},
        "measured": {},
    }
    if args.merge and raw.exists():
        last = orjson.loads(raw.read_bytes())
        if (last["records"], last["small"]) == (args.records, args.small):
            results["targets"] = {t: v for t, v in last["targets"].items() if t not in targets}
            results["measured"] = {t: v for t, v in last.get("measured", {}).items() if t not in targets}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        root = Path(tmp)
        # PostgreSQL runs as an unprivileged user when we are root: it must reach its folder.
        os.chmod(root, 0o755)  # noqa: S103
        log(f"generating {args.records:,} and {args.small:,} referrals (not measured)")
        (root / "large").mkdir()
        (root / "small").mkdir()
        large = make_inputs(args.records, root / "large")
        small = make_inputs(args.small, root / "small")
        results["files"], results["small_files"] = len(large.daily), len(small.daily)
        results["edits"] = large.edits
        results["megabytes"] = sum(p.stat().st_size for p in large.daily) / 1e6
        profiles = raw.parent if args.profile else None
        for target in targets:
            log(f"{target}")
            results["targets"][target] = run_target(
                target, contenders, (large, small), root, log, child_log, profiles
            )
            now = bench_report.machine()
            results["measured"][target] = f"{now['date']}, commit {now['commit']}"
            raw.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if profiles is not None:
        results["profiles"] = {t: _profile_lines(profiles / f"warehouse-profile-{t}.txt") for t in targets}
    results["targets"] = {t: results["targets"][t] for t in TARGETS if t in results["targets"]}
    results["seconds"] = time.monotonic() - started
    results["load_at_end"] = bench_report.load()
    raw.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    block = report.render(results)
    print()
    print(block)
    full = set(results["targets"]) == set(TARGETS) and set(contenders) == set(CONTENDER_NAMES)
    if args.quick or args.no_docs or not full or args.records != 200_000:
        log(f"docs untouched; figures in {raw}, children's errors in {child_log}")
    else:
        report.write_doc(DOC, block)
        log(f"written to {DOC}; figures in {raw}, children's errors in {child_log}")
    failed = report.checks(results)
    for line in failed:
        print(f"CHECK FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
