"""Fixtures of the lineage tests: a fresh hook lineage collector, the output folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lineage_helpers import data_folder


@pytest.fixture
def fresh_collector() -> Iterator[None]:
    """
    Start from an empty hook lineage collector, and leave one behind.

    dag.test() runs every task in this process, and the collector lives as long as the process
    (one task per process in a deployment): without this, a test would see earlier tests' lineage.
    """
    _reset_collector()
    yield
    _reset_collector()


def _reset_collector() -> None:
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector
    except ImportError:  # Airflow 3.1: a module global
        import airflow.lineage.hook as hook

        hook._hook_lineage_collector = None
    else:
        get_hook_lineage_collector.cache_clear()


@pytest.fixture
def out_dir() -> Iterator[Path]:
    with data_folder("test_lineage") as folder:
        yield folder
