"""
The goals table: each goal, the figure this run measured for it, met or missed.

Goals whose figure was not run (``--only``, ``--quick`` sizes) are listed as "not measured"
rather than left out, so the table never reads better than the run was.
"""

from __future__ import annotations

from typing import Any

from benchmarks.figures import LABELS, Sample, expected_pages, median

__all__ = ["rows"]

#: Issue 16's goals on the keep-alive server, and the latency figure's.
P1_RATIO = 0.90
P2_GROWTH_MB = 10
P7_RATIO = 0.75
P8_SPEEDUPS = {4: 3.6, 8: 6.5}


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(samples: dict[str, Sample], name: str = "operator") -> float | None:
    mine = median(samples[name].rates) if name in samples else None
    floor = median(samples["floor"].rates) if "floor" in samples else None
    return mine / floor if mine and floor else None


def _p1(p1: dict[str, dict[int, dict[str, Sample]]]) -> list[str]:
    lines = []
    for server, sizes in p1.items():
        if not sizes:
            continue
        large = max(sizes)
        ratio = _ratio(sizes[large])
        goal = f"P1 {server}: operator >= {P1_RATIO} of the floor at {large:,}"
        lines.append(
            f"| {goal} | {ratio:.2f} | {_met(ratio >= P1_RATIO)} |" if ratio else f"| {goal} | n/a | |"
        )
        compared: dict[str, list[str]] = {}
        ahead = True
        for records, by_name in sorted(sizes.items()):
            mine = median(by_name["operator"].rates) if "operator" in by_name else None
            for name, peer in by_name.items():
                rate = median(peer.rates)
                if name in {"floor", "operator"} or not rate or not mine:
                    continue
                compared.setdefault(LABELS[name].split(" ")[0], []).append(f"{records:,}")
                ahead = ahead and mine > rate
        where = "; ".join(f"{peer} at {', '.join(at)}" for peer, at in compared.items())
        verdict = _met(ahead and bool(compared))
        lines.append(f"| P1 {server}: operator ahead of every peer ({where}) | see P1 | {verdict} |")
    return lines


def _p2_p3(keep: dict[int, dict[str, Sample]], page_size: int) -> list[str]:
    lines = []
    small, large = min(keep), max(keep)
    low, high = keep[small].get("operator"), keep[large].get("operator")
    if low and high and low.peaks and high.peaks:
        growth = (median(high.peaks) or 0) - (median(low.peaks) or 0)
        lines.append(
            f"| P2 keep-alive: operator peak RSS growth {small:,} -> {large:,} <= {P2_GROWTH_MB} MB "
            f"| {growth:+.0f} MB | {_met(growth <= P2_GROWTH_MB)} |"
        )
    if high and high.tokens:
        pages = expected_pages(large, page_size)
        ok = set(high.tokens) == {1} and set(high.lists) == {pages}
        lines.append(
            f"| P3 keep-alive: operator 1 token per run, ceil(N / {page_size}) pages at {large:,} "
            f"| {sorted(set(high.tokens))} token(s), {sorted(set(high.lists))} pages | {_met(ok)} |"
        )
    return lines


def _p7(figure: dict[str, Any] | None) -> list[str]:
    goal = f"P7: operator >= {P7_RATIO} of the floor in-process (CPU per referral, imports excluded)"
    if not figure:
        return [f"| {goal} | not measured in this run | |"]
    samples = figure["samples"]
    floor = median(samples["floor"].cpu) if "floor" in samples else None
    mine = median(samples["operator"].cpu) if "operator" in samples else None
    if not floor or not mine:
        return [f"| {goal} at {figure['records']:,} | n/a | |"]
    ratio = floor / mine
    return [f"| {goal} at {figure['records']:,} | {ratio:.2f} | {_met(ratio >= P7_RATIO)} |"]


def _p8(figure: dict[str, Any] | None) -> list[str]:
    if not figure:
        return ["| P8: latency speed-ups | not measured in this run | |"]
    lines = []
    for parallelism, goal in P8_SPEEDUPS.items():
        stat = figure["speedup"].get(parallelism)
        text = f"P8: parallelism={parallelism} >= {goal}x the sequential operator at {figure['records']:,}"
        if stat is None:
            lines.append(f"| {text} | n/a | |")
        else:
            lines.append(f"| {text} | {stat.median:.2f}x | {_met(stat.median >= goal)} |")
    same = all(figure["same_bytes"].values())
    lines.append(
        "| P8: parallel outputs have the sequential output's bytes (SHA-256) "
        f"| {'same' if same else 'different'} | {_met(same)} |"
    )
    return lines


def rows(results: dict[str, Any]) -> list[str]:
    """The goals table of one run (Markdown lines)."""
    lines = ["| goal | measured | |", "|---|---|---|"]
    p1 = results.get("p1") or {}
    lines += _p1(p1)
    if p1.get("keep-alive"):
        lines += _p2_p3(p1["keep-alive"], results["page_size"])
    imports = results.get("imports")
    if imports:
        total = imports["both"] or imports["operator"]
        what = "operator + sensor" if imports["both"] else "operator (sensor n/a)"
        lines.append(
            f"| P4: import {what} < 50 ms | {total.median * 1000:.1f} ms | {_met(total.median < 0.05)} |"
        )
    backfill = results.get("backfill")
    if backfill:
        speedup = backfill["speedup"].median
        lines.append(
            f"| P5: backfill parallelism=4 >= 3x sequential | {speedup:.2f}x | {_met(speedup >= 3)} |"
        )
    soak = results.get("soak")
    if soak:
        ok = soak["delivered"] == soak["served"] and soak["duplicates"] == 0 and soak["missing"] == 0
        lines.append(
            f"| P6: soak delivered == served, 0 duplicates | {soak['delivered']:,} of {soak['served']:,}, "
            f"{soak['duplicates']} duplicates | {_met(ok)} |"
        )
    lines += _p7(results.get("in_process"))
    lines += _p8(results.get("latency"))
    return lines
