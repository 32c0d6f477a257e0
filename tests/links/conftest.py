"""Fixtures of the link tests: the lineage tests' helpers, the output folder of the extract DAG."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lineage"))
from lineage_helpers import data_folder


@pytest.fixture
def out_dir() -> Iterator[Path]:
    with data_folder("test_lineage") as folder:
        yield folder
