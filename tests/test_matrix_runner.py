"""The matrix runner's own logic: counts from pytest's JUnit report, the table, the interpreters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from matrix.combinations import COMBINATIONS
from matrix.run import Outcome, counts, find_python, table

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="a" name="ok_1" time="0.1"/>
<testcase classname="a" name="ok_2" time="0.1"/>
<testcase classname="a" name="bad"><failure message="assert 1 == 2"/></testcase>
<testcase classname="a" name="broken"><error message="fixture"/></testcase>
<testcase classname="a" name="later"><skipped message="3.3 only"/></testcase>
</testsuite></testsuites>
"""


def test_counts_read_each_outcome_from_the_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    outcome = Outcome(COMBINATIONS[0])
    counts(report, outcome)
    assert (outcome.passed, outcome.failed, outcome.errors, outcome.skipped) == (2, 1, 1, 1)
    assert not outcome.ok


def test_the_table_has_a_row_per_combination_with_its_counts() -> None:
    passed = Outcome(COMBINATIONS[0], passed=399, skipped=1, seconds=201.4)
    broken = Outcome(COMBINATIONS[1], note="install failed")
    assert table([passed, broken]).splitlines() == [
        "| Airflow | Python | passed | failed | errors | skipped | seconds | result |",
        "|---|---|---|---|---|---|---|---|",
        "| 3.1.8 | 3.10 | 399 | 0 | 0 | 1 | 201 | ok |",
        "| 3.1.8 | 3.11 | 0 | 0 | 0 | 0 | 0 | FAILED install failed |",
    ]


def test_an_interpreter_can_be_named_per_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATRIX_PYTHON_3_12", sys.executable)
    assert find_python("3.12") == sys.executable
