"""A secrets backend for the shadowing tests: Variables from a JSON file, read on every lookup.

Configured like any custom backend (``[secrets] backend = shadow_backend.ShadowBackend``,
``[secrets] backend_kwargs = {"path": "<file>"}``); a missing file holds nothing. ``NullBackend``
holds nothing at all (a worker's ``[workers] secrets_backend`` that hides the API server's).
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow.secrets import BaseSecretsBackend


class ShadowBackend(BaseSecretsBackend):
    """Serves the Variables of a JSON object file (``{"key": "value"}``); no connections."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        return None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8")).get(key)
        except FileNotFoundError:
            return None
        return None if value is None else str(value)


class NullBackend(BaseSecretsBackend):
    """Holds nothing."""

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        return None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return None
