"""Helpers for hook tests (``connect``, an emulator's Airflow connection, is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


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
