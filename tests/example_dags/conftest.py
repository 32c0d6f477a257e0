"""Fixtures of the example-DAG tests: a clean data folder, fast polling."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """``$PARTNER_CENTER_DATA_DIR`` without files or warehouse, before and after the test."""
    folder = Path(os.environ["PARTNER_CENTER_DATA_DIR"])
    for leftover in (folder / "referrals", folder / "warehouse.db"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    yield folder
    shutil.rmtree(folder / "referrals", ignore_errors=True)
    (folder / "warehouse.db").unlink(missing_ok=True)


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The follow-up DAGs read their poll interval at parse time: make it short."""
    monkeypatch.setenv("PARTNER_CENTER_POKE_INTERVAL", "0.2")
