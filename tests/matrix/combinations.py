"""
The support matrix, declared once: Airflow releases, the Pythons each is tested on, the main one.

Everything that states the matrix reads it from here: ``make constraints`` (``constraints.py``),
``make matrix`` (``run.py``), and ``tests/test_support_matrix.py``, which checks that
``pyproject.toml`` (classifiers, ``requires-python``), the README and ``docs/`` say the same.
Stdlib only: the runner imports it before any environment exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS_DIR = REPO_ROOT / "constraints"

# Every Python the provider supports; each Airflow line below is tested on those it accepts.
PYTHONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13")


@dataclass(frozen=True)
class AirflowRelease:
    """
    One supported Airflow line, tested at its latest patch.

    :param line: the minor line, e.g. ``"3.1"``.
    :param version: its latest patch release, the one the matrix installs.
    :param released: the day that patch was uploaded to PyPI.
    :param pythons: the Pythons of ``PYTHONS`` the release accepts (its ``Requires-Python``).
    """

    line: str
    version: str
    released: dt.date
    pythons: tuple[str, ...]

    @property
    def exclude_newer(self) -> dt.date:
        """
        The day the combination's dependencies are resolved as of.

        A few days after the release: what a user installing it then got, including the fixes
        that followed it at once, never what came out since (a newer fastapi/pydantic pair breaks
        Airflow 3.2's ``dag.test()``).
        """
        return self.released + dt.timedelta(days=4)


# Requires-Python: 3.1.8 ">=3.10,<3.14"; 3.2.2 and 3.3.2 ">=3.10,!=3.15".
RELEASES: tuple[AirflowRelease, ...] = (
    AirflowRelease("3.1", "3.1.8", dt.date(2026, 3, 11), PYTHONS),
    AirflowRelease("3.2", "3.2.2", dt.date(2026, 5, 29), PYTHONS),
    AirflowRelease("3.3", "3.3.2", dt.date(2026, 9, 17), PYTHONS),
)


@dataclass(frozen=True)
class Combination:
    """
    One Airflow release on one Python.

    :param airflow: the Airflow release.
    :param python: the Python version, e.g. ``"3.12"``.
    """

    airflow: AirflowRelease
    python: str

    @property
    def name(self) -> str:
        """``airflow-3.1-py3.12``: the constraints file's stem and the matrix venv's folder."""
        return f"airflow-{self.airflow.line}-py{self.python}"

    @property
    def constraints(self) -> Path:
        """The pinned dependencies of this combination, kept in the repository."""
        return CONSTRAINTS_DIR / f"{self.name}.txt"

    @property
    def is_main(self) -> bool:
        """Whether this is the main combination (``.venv``, the whole suite and the system suite)."""
        return (self.airflow.line, self.python) == MAIN

    @property
    def runs_integration(self) -> bool:
        """Whether ``make matrix`` runs the Airflow integration tests here (one Python per line)."""
        return INTEGRATION_ON.get(self.airflow.line) == self.python


# The development venv (.venv, `make unit`) and the system suite run this one.
MAIN: tuple[str, str] = ("3.3", "3.11")

COMBINATIONS: tuple[Combination, ...] = tuple(
    Combination(release, python) for release in RELEASES for python in release.pythons
)


def lowest_python() -> str:
    """The oldest supported Python (``requires-python``'s bound)."""
    return min(PYTHONS, key=lambda version: tuple(int(part) for part in version.split(".")))


def oldest_airflow() -> AirflowRelease:
    """The oldest supported Airflow line (the dependency's lower bound)."""
    return RELEASES[0]


# What `make matrix` runs on every combination but the main one: the unit tests and a dag.test()
# of every example DAG (tests/example_dags/), without the system suite and the tests marked
# `slow` (the hook's HTTP and paging layer, hostile servers, token coordination, packaging: they
# touch nothing that differs between Airflow releases, and the main combination runs them); the
# slowest tests of each run are listed in its log, for the CI budget.
MATRIX_PYTEST_ARGS: tuple[str, ...] = (
    "-q",
    "tests",
    "--ignore=tests/system",
    # Their servers and filesystems (the objectstores extra) are in the main venv only.
    "--ignore=tests/objectstores",
    # The SQL warehouses' hooks and drivers (the warehouses extra) are in the main venv only.
    "--ignore=tests/warehouse",
    "--durations=15",
)

# The Airflow integration tests beyond a dag.test() of each example DAG: real DAG runs of the test
# DAGs (the sensor's poke/reschedule/deferrable modes, the operator's intervals), the lineage
# events and links of a run, a task rotating its token through the Task SDK, the log scan of a
# task run; and the tests marked `airflow_line` (the `airflow providers` CLI, the api-server's
# connection form, the example DAGs' follow-on scenarios: several runs, a concurrent edit). What
# they exercise differs between Airflow releases, not between Pythons, and they are the slowest of
# the set (on Airflow 3.1 and 3.2, dag.test() builds the execution API anew for every task, about
# 2 s): each release runs them on one Python (3.3 on the main combination, which runs everything).
INTEGRATION_TESTS: tuple[str, ...] = (
    "tests/operators/test_operator_dags.py",
    "tests/sensors/test_sensor_dags.py",
    "tests/lineage",
    "tests/links",
    "tests/hooks/test_hook_in_task.py",
    "tests/test_zz_no_secrets_in_logs.py",
)
INTEGRATION_ON: dict[str, str] = {"3.1": "3.10", "3.2": "3.13", "3.3": "3.11"}
"""The Python each Airflow line runs :data:`INTEGRATION_TESTS` on (3.3's is the main combination)."""


def pytest_args(combination: Combination) -> tuple[str, ...]:
    """What ``make matrix`` runs on ``combination``: the matrix set, with or without the integration tests."""
    if combination.runs_integration:
        return (*MATRIX_PYTEST_ARGS, "-m", "not slow")
    ignored = (f"--ignore={path}" for path in INTEGRATION_TESTS)
    return (*MATRIX_PYTEST_ARGS, "-m", "not slow and not airflow_line", *ignored)


def _listing(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else items[0]


def summary() -> str:
    """The sentence README.md, docs/index.md and docs/support-matrix.md state the matrix with."""
    lines = _listing([release.line for release in RELEASES])
    return f"Apache Airflow {lines} on Python {_listing(list(PYTHONS))}"


def markdown_table() -> str:
    """The table of docs/support-matrix.md: each Airflow release per Python, what runs there."""
    rows = ["| Airflow | " + " | ".join(f"Python {python}" for python in PYTHONS) + " |"]
    rows.append("|---|" + "---|" * len(PYTHONS))
    for release in RELEASES:
        cells = []
        for python in PYTHONS:
            if python not in release.pythons:
                cells.append("not supported")
            elif (release.line, python) == MAIN:
                cells.append("whole suite + system suite")
            elif INTEGRATION_ON.get(release.line) == python:
                cells.append("unit tests + example DAGs + DAG integration tests")
            else:
                cells.append("unit tests + example DAGs")
        rows.append(f"| {release.version} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
