"""
The lease record every store keeps: who holds a store's refresh lease, and until when.

A lease is the critical section the token provider holds while it re-reads the token cache,
refreshes and saves (:func:`~airflow_provider_partner.stores.store_lease`). Every lease expires
after :data:`LEASE_SECONDS`, so a dead holder never blocks the others for long.
"""

from __future__ import annotations

import enum
import json
import os
import random
import socket
import time
import uuid
from typing import Any

__all__ = [
    "LEASE_SECONDS",
    "LeaseGuarantee",
    "lease_expired",
    "lease_owner",
    "lease_pause",
    "lease_text",
]

#: How long a lease is honoured; a holder refreshes within seconds, so a longer one is a dead holder.
LEASE_SECONDS = 30.0


class LeaseGuarantee(str, enum.Enum):
    """What holding a store's lease guarantees."""

    #: No other cooperating process holds it at the same time.
    EXCLUSIVE = "exclusive"
    #: Usually exclusive; two holders are possible in a narrow race (no conditional write).
    BEST_EFFORT = "best-effort"
    #: Nothing: the store has no way to coordinate (convergence relies on retries alone).
    NONE = "none"


def lease_owner() -> str:
    """Who holds a lease, for a person reading it: host, process, and a unique part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_pause(attempt: int) -> None:
    """Wait before the next try: jittered, growing, capped, so waiters do not poll in lockstep."""
    time.sleep(random.uniform(0.005, min(0.25, 0.01 * 2**attempt)))


def lease_text(owner: str) -> str:
    """The stored value of a lease: its owner and when it expires (:data:`LEASE_SECONDS` from now)."""
    return json.dumps({"owner": owner, "expires": time.time() + LEASE_SECONDS})


def lease_expired(text: str | None) -> bool:
    """Whether a stored lease value has expired (an unreadable one counts as expired)."""
    try:
        fields = json.loads(text or "{}")
    except ValueError:
        return True
    return fields_expired(fields)


def fields_expired(fields: Any) -> bool:
    """Whether a decoded lease record has expired (one without a readable expiry counts as expired)."""
    try:
        return float(fields.get("expires", 0)) < time.time()
    except (ValueError, TypeError, AttributeError):
        return True
