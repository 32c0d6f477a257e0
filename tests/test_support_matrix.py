"""
The support matrix is stated once (``tests/matrix/combinations.py``); everything else agrees.

``pyproject.toml`` (classifiers, ``requires-python``, the ``apache-airflow`` bound), the README,
``docs/index.md`` and ``docs/support-matrix.md`` state what the runner tests, and each
combination's constraints file pins its Airflow release and every dependency of the project.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from matrix.combinations import (
    COMBINATIONS,
    MAIN,
    PYTHONS,
    RELEASES,
    Combination,
    lowest_python,
    markdown_table,
    oldest_airflow,
    summary,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency on 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
OWN = {"airflow-provider-partner", "partner-center-emulator"}


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def test_the_classifiers_and_requires_python_name_the_matrix_pythons() -> None:
    project = PYPROJECT["project"]
    declared = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert declared == list(PYTHONS)
    assert project["requires-python"] == f">={lowest_python()}"
    assert "Framework :: Apache Airflow" in project["classifiers"]


def test_the_airflow_dependency_starts_at_the_oldest_tested_line() -> None:
    [airflow] = [d for d in PYPROJECT["project"]["dependencies"] if _name(d) == "apache-airflow"]
    assert airflow == f"apache-airflow>={oldest_airflow().line},<4"


@pytest.mark.parametrize("doc", ["README.md", "docs/index.md", "docs/support-matrix.md"])
def test_the_docs_state_the_matrix(doc: str) -> None:
    text = " ".join((REPO_ROOT / doc).read_text(encoding="utf-8").split())
    assert f"Supported versions: {summary()}" in text or f"Supported: {summary()}" in text


def test_the_support_matrix_page_shows_the_runners_table() -> None:
    text = (REPO_ROOT / "docs" / "support-matrix.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- matrix -->\n(.*?)<!-- end matrix -->", text, re.DOTALL)
    assert shown is not None
    assert shown.group(1) == markdown_table()


def test_the_matrix_has_one_main_combination_and_every_release_on_every_python() -> None:
    assert [c.name for c in COMBINATIONS if c.is_main] == [f"airflow-{MAIN[0]}-py{MAIN[1]}"]
    assert len(COMBINATIONS) == sum(len(r.pythons) for r in RELEASES) == 12


def _pins(combination: Combination) -> dict[str, str]:
    lines = combination.constraints.read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))
    return {_name(name): version for name, version in pins.items()}


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.name)
def test_each_constraints_file_pins_its_airflow_and_every_dependency(combination: Combination) -> None:
    pins = _pins(combination)
    assert pins["apache-airflow"] == combination.airflow.version
    project = PYPROJECT["project"]
    wanted = {_name(d) for d in [*project["dependencies"], *project["optional-dependencies"]["test"]]}
    missing = sorted(wanted - OWN - set(pins))
    assert missing == [], f"{combination.constraints.name} lacks {missing}: run `make constraints`"
