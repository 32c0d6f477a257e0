"""Plain helpers of the operator tests (expected data from the emulator, reading outputs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

UTC = dt.timezone.utc


def midnight_today() -> dt.datetime:
    return dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(moment: dt.datetime) -> str:
    """The emulator's 7-digit UTC text for an instant (it compares such strings as instants)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def expected_referrals(
    emu: Any, start: dt.datetime, end: dt.datetime, field: str = "updatedDateTime"
) -> list[dict[str, Any]]:
    """The emulator's referrals whose ``field`` is in ``[start, end)``, in output order (field, id)."""
    low, high = iso(start), iso(end)
    chosen = [r for r in emu.referrals() if low <= r[field] < high]
    return sorted(chosen, key=lambda r: (r[field], r["id"]))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
