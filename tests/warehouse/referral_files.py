"""
Three days of the operator's output, as JSONL files of the emulator's own referrals.

The emulator's seeded generator (:class:`partner_center_emulator.data.Generator`) makes the
referrals (every field, nested objects, 7-digit date-times); each day's file holds the
referrals updated in that day's window plus the day before (the operator's lookback), so days
overlap as the operator's runs do. Day 3 also holds an edited version of a day-1 referral.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partner_center_emulator.clock import DAY_TICKS, format_ticks, parse_to_ticks
from partner_center_emulator.data import Generator

from airflow_provider_partner.instants import sort_key

#: The end of day 3 (the generator's ``now``).
NOW = "2026-11-04T00:00:00.0000000Z"


@dataclass(frozen=True)
class Days:
    """The three files and the referrals in them."""

    files: tuple[Path, Path, Path]
    referrals: tuple[tuple[dict[str, Any], ...], ...]
    #: the day-1 referral edited on day 3
    edited_id: str


def write_jsonl(path: Path, referrals: Iterable[Mapping[str, Any]], tail: str = "") -> Path:
    """One referral per line (as the operator writes them), then ``tail``."""
    with path.open("w", encoding="utf-8") as out:
        for referral in referrals:
            out.write(json.dumps(referral, ensure_ascii=False) + "\n")
        out.write(tail)
    return path


def three_days(folder: Path, count: int = 300, seed: int = 26) -> Days:
    """``count`` referrals created over three days, written as three overlapping daily files."""
    now = parse_to_ticks(NOW)
    made = Generator(seed, "http://127.0.0.1:1/v1.0", "org-warehouse-tests").generate(count, now, 3)
    starts = [now - (3 - day) * DAY_TICKS for day in range(3)]
    days: list[list[dict[str, Any]]] = []
    for start in starts:
        low, high = start - DAY_TICKS, start + DAY_TICKS  # the lookback: one day before
        days.append([r for r in made if low <= parse_to_ticks(r["updatedDateTime"]) < high])
    edited = dict(days[0][0])
    later = max(parse_to_ticks(r["updatedDateTime"]) for r in made) + 1
    edited.update(status="Closed", substatus="Won", updatedDateTime=format_ticks(later))
    days[2].append(edited)
    files = tuple(write_jsonl(folder / f"day{n + 1}.jsonl", day) for n, day in enumerate(days))
    return Days(files, tuple(tuple(day) for day in days), edited["id"])  # type: ignore[arg-type]


def newest(*loads: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each id's newest version over the loads, in order (the first of equal versions stays)."""
    table: dict[str, Mapping[str, Any]] = {}
    for referrals in loads:
        for referral in referrals:
            held = table.get(referral["id"])
            if held is None or sort_key(referral["updatedDateTime"]) > sort_key(held["updatedDateTime"]):
                table[referral["id"]] = referral
    return table
