"""
The warehouse benchmark's harness (benchmarks/warehouse), without its loads: the inputs it makes,
the verdicts and tables it writes, and its place in docs/performance.md. The loads themselves run
only under ``make bench-warehouse``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from benchmarks.warehouse import report
from benchmarks.warehouse.data import EDITED, make_inputs


def _figure(
    seconds: float, written: int, rows: int = 100, edited: int = 0, cpu: float = 1.0
) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "cpu": cpu,
        "server_cpu": 0.0,
        "rss_start": 100 * 2**20,
        "rss_peak": 120 * 2**20,
        "written": written,
        "rows": rows,
        "edited": edited,
    }


def _results(provider_replay_writes: int, provider_older_edited: int) -> dict[str, Any]:
    steps = {
        "provider": {
            "first": _figure(2.0, 100),
            "replay": _figure(1.0, provider_replay_writes),
            "edit": _figure(0.1, 5, edited=5),
            "older": _figure(0.1, 0, edited=provider_older_edited),
            "small": _figure(0.2, 10, rows=10),
        },
        "dlt": {
            "first": _figure(8.0, 100, cpu=4.0),
            "replay": _figure(6.0, 100, cpu=3.0),
            "edit": _figure(0.1, 5, edited=5),
            "older": _figure(0.1, 20, edited=0),
            "small": _figure(1.0, 10, rows=10),
        },
    }
    return {
        "machine": {"date": "d", "commit": "c", "cpu": "cpu", "cores": "2", "load": "1 1 1"},
        "load_at_end": "1 1 1",
        "versions": "v",
        "records": 100,
        "small": 10,
        "files": 3,
        "small_files": 3,
        "megabytes": 0.3,
        "edits": 5,
        "seconds": 60.0,
        "contenders": ["provider", "dlt"],
        "targets": {"sqlite": steps},
    }


def test_inputs_are_daily_files_an_edit_and_a_manifest_reused(tmp_path: Path) -> None:
    inputs = make_inputs(300, tmp_path / "in")
    lines = [orjson.loads(line) for path in inputs.daily for line in path.read_bytes().splitlines()]
    assert len(lines) == 300
    assert len({r["id"] for r in lines}) == 300
    for path in inputs.daily:
        days = {
            r["updatedDateTime"][:10]
            for r in orjson.loads(f"[{b','.join(path.read_bytes().splitlines()).decode()}]")
        }
        assert days == {path.stem.removeprefix("referrals_")}
    older = {r["id"]: r for r in map(orjson.loads, inputs.older.read_bytes().splitlines())}
    edits = [orjson.loads(line) for line in inputs.edit.read_bytes().splitlines()]
    assert len(edits) == inputs.edits == min(1_000, len(older))
    assert all(
        e["status"] == EDITED and e["updatedDateTime"] > older[e["id"]]["updatedDateTime"] for e in edits
    )
    before = inputs.daily[0].stat().st_mtime_ns
    assert make_inputs(300, tmp_path / "in") == inputs
    assert inputs.daily[0].stat().st_mtime_ns == before


def test_the_section_states_ratios_regressions_and_checks() -> None:
    results = _results(provider_replay_writes=0, provider_older_edited=5)
    block = report.render(results)
    assert "| SQLite (file) | dlt `merge` | 8.0 | 12 | 120 | 100 | 4.0 | 6.0 | 3.0 | 100 | 100 " in block
    assert "**yes** (5 of 5 rows regressed)" in block
    assert (
        "| SQLite (file) | not measured | 4.00x / 4.00x ahead | not measured | 6.00x / 3.00x ahead |" in block
    )
    assert report.checks(results) == []
    failing = _results(provider_replay_writes=7, provider_older_edited=3)
    assert report.checks(failing) == [
        "sqlite: the replay changed 7 rows and left 100",
        "sqlite: older file replayed: **yes** (2 of 5 rows regressed)",
    ]


def test_the_section_replaces_its_own_block_only(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nbefore\n\n## What each figure is\n\nafter\n")
    report.write_doc(doc, "first run\n")
    report.write_doc(doc, "second run\n")
    text = doc.read_text()
    assert text.count(report.BEGIN) == 1
    assert "first run" not in text
    assert text == (
        "# Performance\n\nbefore\n\n## Warehouse loads (`make bench-warehouse`)\n\n"
        f"{report.BEGIN}\nsecond run\n{report.END}\n\n## What each figure is\n\nafter\n"
    )
