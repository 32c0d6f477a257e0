"""Fixtures of the hostile-network tests: a crafted API server, and a connection that trusts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_server import HostileServer


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[HostileServer]:
    """The hostile API server (stopped at teardown)."""
    server = HostileServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def hostile_conn(
    hostile: HostileServer, partner_center_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """
    The default connection: tokens from the emulator's Entra ID, the API on the hostile server.

    Retries are short and few, so each test's elapsed time is the defence it measures.
    """
    emu = partner_center_emulator
    bundle = tmp_path / "both-cas.pem"
    bundle.write_bytes(Path(emu.info["ca_bundle"]).read_bytes() + hostile.ca_pem.read_bytes())
    conn = json.loads(emu.info["airflow_conn"])
    conn["host"] = hostile.url
    conn["extra"].update(
        {
            "ca_bundle": str(bundle),
            "max_retries": 1,
            "backoff_factor": 0.01,
            "max_retry_wait": 0.05,
            "max_response_mb": 8,
            "timeout": 3,
            "attempt_timeout": 2,
            "max_retry_time": 5,
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    return conn
