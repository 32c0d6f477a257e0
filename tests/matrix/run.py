"""
``make matrix``: the test suite on every supported Airflow x Python combination but the main one.

For each combination of ``combinations.COMBINATIONS`` except the main one (``.venv``, which
``make unit`` and the system suite run in full), it creates ``.venv-matrix/<combination>`` with uv,
installs the project with its ``test`` extra under ``constraints/<combination>.txt`` and runs
``pytest_args``: the unit tests and a ``dag.test()`` of every example DAG (and, on one Python
per Airflow line, the DAG integration tests). ``--jobs``
combinations run at once (default 2: one per core of the CI machine). At the end it prints one
row per combination with its pass counts, read from pytest's JUnit XML report, and exits non-zero
if any combination failed.

    .venv/bin/python tests/matrix/run.py [--jobs N] [--only airflow-3.1-py3.10 ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matrix.combinations import COMBINATIONS, REPO_ROOT, Combination, pytest_args

UV = REPO_ROOT / ".venv" / "bin" / "uv"
VENVS = REPO_ROOT / ".venv-matrix"


@dataclass
class Outcome:
    """What one combination's run gave."""

    combination: Combination
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether the combination passed: tests ran and none failed."""
        return not self.note and self.failed == 0 and self.errors == 0 and self.passed > 0


def find_python(version: str) -> str:
    """
    An interpreter for ``version``: ``$MATRIX_PYTHON_3_12``, pyenv's, one on PATH, or uv's.

    pyenv's shims on PATH answer only for the selected version, so pyenv's install folders are
    looked at directly.
    """
    override = os.environ.get(f"MATRIX_PYTHON_{version.replace('.', '_')}")
    if override:
        return override
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python"), reverse=True):
        return candidate
    on_path = shutil.which(f"python{version}")
    if on_path and subprocess.run([on_path, "-V"], capture_output=True).returncode == 0:
        return on_path
    return version  # uv finds (or installs) one


def _run(command: list[str], log: Path) -> int:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        return subprocess.run(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT).returncode


def prepare(combination: Combination, log: Path) -> str:
    """Create (or refresh) the combination's venv; return what went wrong, or ``""``."""
    venv = VENVS / combination.name
    python = venv / "bin" / "python"
    if not python.exists():
        command = [str(UV), "venv", "--quiet", "--python", find_python(combination.python), str(venv)]
        if _run(command, log) != 0:
            return "no venv"
    # The constraints pin everything; the tree itself (provider and emulator) is installed editable.
    install = [str(UV), "pip", "install", "--quiet", "--python", str(python), "-e", ".[test]"]
    install += ["--constraints", str(combination.constraints)]
    return "" if _run(install, log) == 0 else "install failed"


def counts(report: Path, outcome: Outcome) -> None:
    """Fill the outcome's counts from a JUnit XML report."""
    root = ET.parse(report).getroot()  # noqa: S314 - the report our own pytest run just wrote
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            outcome.failed += 1
        elif "error" in kinds:
            outcome.errors += 1
        elif "skipped" in kinds:
            outcome.skipped += 1
        else:
            outcome.passed += 1


def run_one(combination: Combination) -> Outcome:
    """Prepare the combination's venv and run its tests; the log is ``.venv-matrix/<name>.log``."""
    VENVS.mkdir(exist_ok=True)
    log = VENVS / f"{combination.name}.log"
    log.write_text("")
    report = VENVS / f"{combination.name}.xml"
    report.unlink(missing_ok=True)
    outcome = Outcome(combination)
    started = time.monotonic()
    outcome.note = prepare(combination, log)
    if not outcome.note:
        pytest = [str(VENVS / combination.name / "bin" / "python"), "-m", "pytest", *pytest_args(combination)]
        _run([*pytest, f"--junitxml={report}"], log)
        if report.exists():
            counts(report, outcome)
        else:
            outcome.note = "no report"
    outcome.seconds = time.monotonic() - started
    verdict = "ok" if outcome.ok else f"FAILED {outcome.note}".strip()
    print(
        f"{combination.name}: {verdict}, {outcome.passed} passed, {outcome.failed} failed, "
        f"{outcome.errors} errors, {outcome.skipped} skipped ({outcome.seconds:.0f} s)",
        flush=True,
    )
    return outcome


def table(outcomes: list[Outcome]) -> str:
    """The pass-count table printed at the end (Markdown, so it can be pasted into a note)."""
    rows = ["| Airflow | Python | passed | failed | errors | skipped | seconds | result |"]
    rows.append("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        result = "ok" if o.ok else f"FAILED {o.note}".strip()
        rows.append(
            f"| {o.combination.airflow.version} | {o.combination.python} | {o.passed} | {o.failed} "
            f"| {o.errors} | {o.skipped} | {o.seconds:.0f} | {result} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the matrix; 0 when every combination passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MATRIX_JOBS", "2")))
    parser.add_argument("--only", nargs="*", default=None, help="combination names, e.g. airflow-3.1-py3.10")
    args = parser.parse_args(argv)
    chosen = [c for c in COMBINATIONS if not c.is_main and (args.only is None or c.name in args.only)]
    started = time.monotonic()
    # The longest runs start first (the ones with the integration tests), so that the last round
    # is not one long combination alone; the table keeps the matrix's order.
    longest_first = sorted(chosen, key=lambda c: not c.runs_integration)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        finished = dict(zip(longest_first, pool.map(run_one, longest_first), strict=True))
    outcomes = [finished[c] for c in chosen]
    print(table(outcomes))
    print(f"matrix: {len(outcomes)} combinations in {time.monotonic() - started:.0f} s (logs: .venv-matrix/)")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
