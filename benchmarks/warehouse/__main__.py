"""
``make bench-warehouse``: 200,000 referrals into each warehouse target, beside the peers.

``python -m benchmarks.warehouse [--quick] [--records N] [--small N] [--targets sqlite,postgres]
[--contenders provider,dlt] [--inputs DIR] [--json PATH] [--profile] [--no-docs]``;
``--combine A.json B.json ...`` renders runs of some targets each (run side by side) as one.
``--quick`` (20,000 referrals, 2,000 for the memory pair) and any partial run print but leave
``docs/performance.md`` alone. The figures of every run go to ``--json``
(``.venv-bench/warehouse-last-run.json``).

Exit status 1 when one of the provider's checks fails (a replay that changes rows, an older file
that wins, a wrong count), 0 otherwise; a contender that fails is a figure, not an error.
"""

from __future__ import annotations

import argparse
import os
import signal
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
    add("--inputs", type=Path, help="folder of the input files, reused when they are there (default: temp)")
    add(
        "--combine",
        type=Path,
        nargs="+",
        help="no run: the --json files of runs of some targets each, as one section (docs on a full set)",
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


def _measure(
    args: argparse.Namespace, targets: tuple[str, ...], contenders: tuple[str, ...]
) -> dict[str, Any]:
    """Generate (or reuse) the inputs and run every load of ``targets``; the figures."""
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {line}", flush=True)

    raw, child_log = args.json, args.json.with_suffix(".children.log")
    raw.parent.mkdir(exist_ok=True)
    child_log.write_text("")
    results: dict[str, Any] = {
        "machine": bench_report.machine(),
        "versions": _versions(),
        "records": args.records,
        "small": args.small,
        "contenders": list(contenders),
        "targets": {},
        "measured": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        root = Path(tmp)
        # PostgreSQL runs as an unprivileged user when we are root: it must reach its folder.
        os.chmod(root, 0o755)  # noqa: S103
        inputs = args.inputs or root
        log(f"{args.records:,} and {args.small:,} referrals in {inputs} (generation not measured)")
        large = make_inputs(args.records, inputs / f"large-{args.records}")
        small = make_inputs(args.small, inputs / f"small-{args.small}")
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
    results["seconds"] = time.monotonic() - started
    results["load_at_end"] = bench_report.load()
    raw.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    log(f"figures in {raw}, children's errors in {child_log}")
    return results


def _journal(path: Path, base: dict[str, Any]) -> dict[str, Any]:
    """The loads a journal of the children holds (an interrupted run's finished ones) as a run."""
    targets: dict[str, dict[str, Any]] = {}
    for line in path.read_bytes().splitlines():
        entry = orjson.loads(line)
        result = entry["result"]
        small = entry["table"].endswith(f"_{base['small']}")
        if "error" in result:
            steps = ("small",) if small else ("first", "replay", "edit", "older")
            result = {step: result for step in steps}
        targets.setdefault(entry["target"], {}).setdefault(entry["contender"], {}).update(result)
    return {**base, "targets": targets, "measured": dict.fromkeys(targets, f"journal {path.name}")}


def _combine(paths: list[Path]) -> dict[str, Any]:
    """
    The figures of several runs (one per target, run side by side) as one run's, later runs'
    contenders over earlier ones'; a ``.jsonl`` journal of the children adds the loads of
    interrupted runs (what no finished run has).
    """
    runs = [orjson.loads(path.read_bytes()) for path in paths if path.suffix != ".jsonl"]
    # A journal fills in only what no finished run has: the runs' own figures come last and win.
    runs = [_journal(path, runs[0]) for path in paths if path.suffix == ".jsonl"] + runs
    results: dict[str, Any] = {**runs[0], "targets": {}, "measured": {}, "runs": len(runs)}
    results["contenders"] = sorted({c for run in runs for c in run["contenders"]})
    for run in runs:
        if (run["records"], run["small"]) != (results["records"], results["small"]):
            raise SystemExit(f"{paths}: runs of different sizes cannot be combined")
        # A later run of some contenders of a target (a retry) replaces those contenders only.
        for target, by_contender in run["targets"].items():
            results["targets"].setdefault(target, {}).update(by_contender)
        results["measured"].update(run["measured"])
        results.setdefault("profiles", {}).update(run.get("profiles", {}))
    results["seconds"] = max(run["seconds"] for run in runs)
    results["load_at_end"] = runs[-1]["load_at_end"]
    return results


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
    # A SIGTERM unwinds like Ctrl-C: the servers stop and the temp folder goes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = _combine(args.combine) if args.combine else _measure(args, targets, contenders)
    results["targets"] = {
        t: {c: results["targets"][t][c] for c in CONTENDER_NAMES if c in results["targets"][t]}
        for t in TARGETS
        if t in results["targets"]
    }
    if args.combine:
        RAW.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    block = report.render(results)
    print()
    print(block)
    full = set(results["targets"]) == set(TARGETS) and set(results["contenders"]) == set(CONTENDER_NAMES)
    if not args.quick and not args.no_docs and full and results["records"] == 200_000:
        report.write_doc(DOC, block)
        print(f"written to {DOC}")
    else:
        print("docs untouched (a quick, partial or --no-docs run)")
    failed = report.checks(results)
    for line in failed:
        print(f"CHECK FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
