"""Helpers for hook tests: Airflow connections pointing at an emulator, with short retry waits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

#: Retry waits shortened (the caps are real settings); attempts generous enough for 20% faults.
FAST_RETRIES = {"backoff_factor": 0.01, "max_retry_wait": 0.05, "max_retries": 10}

_KEEP = object()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """
    Define an Airflow connection (environment variable) for an emulator; return its conn id.

    ``connect(emu, conn_id, password=..., host=..., drop=("refresh_token",), **extras)``.
    """

    def _connect(
        emu: Any,
        conn_id: str = "partner_center_default",
        *,
        password: Any = _KEEP,
        host: str | None = None,
        drop: tuple[str, ...] = (),
        **extras: Any,
    ) -> str:
        conn = json.loads(emu.info["airflow_conn"])
        conn["extra"].update(FAST_RETRIES)
        conn["extra"].update(extras)
        for key in drop:
            conn["extra"].pop(key, None)
        if host is not None:
            conn["host"] = host
        if password is not _KEEP:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return _connect


@pytest.fixture
def watch_requests() -> Callable[[Any], list[dict[str, str]]]:
    """``watch_requests(hook)`` -> list filled with the headers of every request answered."""

    def _watch(hook: Any) -> list[dict[str, str]]:
        sent: list[dict[str, str]] = []

        def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
            sent.append(dict(response.request.headers))

        hook.http.session.hooks["response"].append(on_response)
        return sent

    return _watch
