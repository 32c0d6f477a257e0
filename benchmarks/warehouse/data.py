"""
The benchmark's input: the operator's daily JSONL files, made from the emulator's own generator.

The operator writes one compact JSON object per line (orjson), ordered by ``updatedDateTime`` then
``id`` (``extract/spool.py``); a daily run's file holds the referrals updated that day. Here the
emulator's seeded :class:`partner_center_emulator.data.Generator` makes the referrals and they are
split by the UTC day of their ``updatedDateTime``. Generating them is not measured.

Beside the daily files, the older-file check needs an **edit**: a file of referrals of the newest
day, each with a newer ``updatedDateTime`` and the status :data:`EDITED`. Loaded after the daily
files, then followed by a replay of that (now older) newest day's file, it shows whether an older
file replayed overwrites newer rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = ["EDITED", "Inputs", "make_inputs"]

#: Referrals created over this many days before "now": the daily files of one load.
PERIOD_DAYS = 10
#: The status an edited referral carries (no generated referral has it).
EDITED = "BenchEdited"
#: Referrals in the edit file (at most).
EDITS = 1_000
_SEED = 26
_NOW = "2026-11-20T12:00:00Z"


@dataclass(frozen=True)
class Inputs:
    """
    The files of one size.

    :param records: referrals in the daily files together (distinct ids).
    :param daily: the daily files, oldest first.
    :param edit: the edit file (:data:`EDITS` referrals of the newest day, newer and edited).
    :param older: the file the edit makes older (the newest day's).
    :param edits: referrals in the edit file (:data:`EDITS`, or the newest day's if fewer).
    """

    records: int
    daily: tuple[Path, ...]
    edit: Path
    older: Path
    edits: int


def _write(path: Path, referrals: list[dict[str, object]]) -> Path:
    referrals.sort(key=lambda r: (str(r["updatedDateTime"]), str(r["id"])))
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in referrals))
    return path


def _later(stamp: str) -> str:
    """``stamp`` plus one hour, in the API's spelling (7 fractional digits, ``Z``)."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    moment = dt.datetime.fromisoformat(head) + dt.timedelta(hours=1)
    return f"{moment.isoformat()}.{(fraction or '0').ljust(7, '0')}Z"


def make_inputs(records: int, folder: Path) -> Inputs:
    """
    Generate ``records`` referrals and write them as daily files under ``folder``.

    A folder that already holds this size's files (its ``inputs.json``) is reused as it is: the
    generator is seeded, so they would be the same.

    :param records: referrals to generate.
    :param folder: a folder, created if needed.
    :return: the files (:class:`Inputs`).
    """
    manifest = folder / "inputs.json"
    if manifest.exists():
        known = orjson.loads(manifest.read_bytes())
        if known["records"] == records and known["seed"] == _SEED:
            daily = tuple(folder / name for name in known["daily"])
            return Inputs(records, daily, folder / "edit.jsonl", daily[-1], known["edits"])
    folder.mkdir(parents=True, exist_ok=True)
    from partner_center_emulator.clock import TICKS_PER_SECOND, parse_to_ticks
    from partner_center_emulator.data import Generator

    generator = Generator(_SEED, "https://api.partner.microsoft.com", "bench-organization")
    now = parse_to_ticks(_NOW)
    assert now % TICKS_PER_SECOND == 0
    by_day: dict[str, list[dict[str, object]]] = {}
    for referral in generator.generate(records, now, PERIOD_DAYS):
        by_day.setdefault(str(referral["updatedDateTime"])[:10], []).append(referral)
    days = sorted(by_day)
    daily = tuple(_write(folder / f"referrals_{day}.jsonl", by_day[day]) for day in days)
    newest = sorted(by_day[days[-1]], key=lambda r: str(r["id"]))[:EDITS]
    edited = [{**r, "status": EDITED, "updatedDateTime": _later(str(r["updatedDateTime"]))} for r in newest]
    edit = _write(folder / "edit.jsonl", edited)
    names = [path.name for path in daily]
    manifest.write_bytes(
        orjson.dumps({"records": records, "seed": _SEED, "daily": names, "edits": len(edited)})
    )
    return Inputs(records=records, daily=daily, edit=edit, older=daily[-1], edits=len(edited))
