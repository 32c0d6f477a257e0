"""
The switches ``Emulator.configure`` changes while it runs: their names, checks, and where they go.

Identity settings live on :class:`~.identity.Identity`, the application's on :class:`Settings`;
the fault, arrival and expiry settings are applied by the emulator itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from partner_center_emulator.faults import validate_kinds
from partner_center_emulator.responses import ERROR_FORMATS
from partner_center_emulator.token_values import check_access_token_bytes

if TYPE_CHECKING:
    from partner_center_emulator.identity import Identity

#: The two readings of $top (the top_mode setting; see listing.window).
TOP_MODES = ("total", "page_size")

IDENTITY_SETTINGS = (
    "revoke_used_refresh_tokens",
    "token_ttl",
    "access_token_bytes",
    "require_client_secret",
    "device_code_interval",
    "require_mfa",
    "require_consent",
    "refresh_token_inactive_days",
)
APP_SETTINGS = (
    "doc_style_next_link",
    "foreign_next_link_host",
    "page_size",
    "latency_per_page",
    "retry_after",
    "slow_seconds",
    "error_format",
    "top_mode",
    "close_connections",
)
#: Applied by the emulator: the faults' generator, live arrivals, the store's 14-day rule.
OTHER_SETTINGS = ("fault_rate", "fault_kinds", "fault_seed", "arrivals_per_second", "expire_incoming")


@dataclass
class Settings:
    """Switches that ``Emulator.configure`` changes while it runs."""

    page_size: int = 100
    latency_per_page: float = 0.0
    doc_style_next_link: bool = False
    foreign_next_link_host: str | None = None
    retry_after: int = 1
    slow_seconds: float = 1.0
    #: What $top means: "total" (the connector contract) or "page_size" (the docs page).
    top_mode: str = "total"
    #: Shape of API error bodies: "partner-center" (documented) or "odata" (see responses.py).
    error_format: str = "partner-center"
    #: Answer ``Connection: close`` and close the connection after every API and identity response:
    #: each request then pays a new TLS handshake (the benchmarks' "connection-per-request" server).
    close_connections: bool = False


def check(settings: dict[str, Any]) -> None:
    """
    Refuse unknown settings and out-of-range values before any of them is applied.

    :raises ValueError: naming the setting and what it accepts.
    """
    unknown = set(settings) - {*IDENTITY_SETTINGS, *APP_SETTINGS, *OTHER_SETTINGS}
    if unknown:
        raise ValueError(f"Unknown emulator setting(s): {', '.join(sorted(unknown))}")
    if "page_size" in settings and int(settings["page_size"]) < 1:
        raise ValueError("page_size must be at least 1")
    if "fault_kinds" in settings:
        validate_kinds(settings["fault_kinds"])
    if "top_mode" in settings and settings["top_mode"] not in TOP_MODES:
        raise ValueError(f"top_mode must be one of {', '.join(TOP_MODES)}")
    if "error_format" in settings and settings["error_format"] not in ERROR_FORMATS:
        raise ValueError(f"error_format must be one of {', '.join(ERROR_FORMATS)}")
    if "access_token_bytes" in settings:
        check_access_token_bytes(int(settings["access_token_bytes"]))


def apply(settings: dict[str, Any], identity: Identity, app: Settings) -> None:
    """Set the identity and application settings given (each cast to its current type)."""
    for name in IDENTITY_SETTINGS:
        if name in settings:
            setattr(identity, name, type(getattr(identity, name))(settings[name]))
    for name in APP_SETTINGS:
        if name in settings:
            value = settings[name]
            current = getattr(app, name)
            if value is not None and current is not None and name != "foreign_next_link_host":
                value = type(current)(value)
            setattr(app, name, value)
