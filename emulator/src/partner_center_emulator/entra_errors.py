"""Errors of the emulated Entra ID token endpoint, in Entra's JSON shape."""

from __future__ import annotations

import time
import uuid
from typing import Any


class OAuthError(Exception):
    """An error the token endpoint answers with (Entra's JSON error shape)."""

    def __init__(self, error: str, code: int, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON body Entra sends for this error."""
        trace = str(uuid.uuid4())
        correlation = str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}"
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(self.code),
        }
