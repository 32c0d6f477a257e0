"""Fixtures of the sensor and trigger tests: an emulator with live arrivals, and arrival helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sensor_helpers import ArrivalsAfterPokes


@pytest.fixture
def emu(emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A small emulator wired as the default connection, retrying fast (tests inject faults)."""
    emulator = emulator_factory(referrals=300, seed=11)
    conn = json.loads(emulator.info["airflow_conn"])
    conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.2})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.info["ca_bundle"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    return emulator


@pytest.fixture
def arrivals_after_pokes() -> Iterator[Callable[..., ArrivalsAfterPokes]]:
    """Start :class:`ArrivalsAfterPokes` watchers; every one is stopped when the test ends."""
    started: list[ArrivalsAfterPokes] = []

    def start(emulator: Any, n: int, after_requests: int = 1, **overrides: Any) -> ArrivalsAfterPokes:
        watcher = ArrivalsAfterPokes(emulator, n, after_requests, **overrides).__enter__()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.__exit__(None, None, None)
