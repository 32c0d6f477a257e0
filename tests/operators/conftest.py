"""Fixtures of the operator tests: a fast-retrying emulator connection and task contexts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from operator_helpers import midnight_today


@pytest.fixture
def emu(partner_center_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The 2000-referral emulator, its connection tuned to retry fast (tests inject faults)."""
    conn = json.loads(partner_center_emulator.info["airflow_conn"])
    conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.2})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    return partner_center_emulator


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """Build the parts of a task context the operator reads (what the Task SDK would pass)."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    def build(
        start: dt.datetime | None = None, end: dt.datetime | None = None, **params: Any
    ) -> dict[str, Any]:
        return {
            "data_interval_start": start,
            "data_interval_end": end,
            "params": params,
            "outlet_events": OutletEventAccessors(),
        }

    return build


@pytest.fixture
def day() -> tuple[dt.datetime, dt.datetime]:
    """Yesterday's interval: inside the emulator's data (generated up to now)."""
    end = midnight_today()
    return end - dt.timedelta(days=1), end
