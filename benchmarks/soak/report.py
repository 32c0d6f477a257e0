"""The soak's figures: a summary, the goals checked, the plot and the docs section."""

from __future__ import annotations

import bisect
import itertools
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "images" / "soak.png"
START, END = "<!-- soak:start -->", "<!-- soak:end -->"


def _grants_at(samples: list[dict[str, Any]], t: float) -> float:
    """The refresh grants at epoch ``t``, interpolated between samples."""
    times = [s["t"] for s in samples]
    i = bisect.bisect_left(times, t)
    if i <= 0:
        return float(samples[0]["grants"]) if samples else 0.0
    if i >= len(samples):
        return float(samples[-1]["grants"])
    a, b = samples[i - 1], samples[i]
    share = (t - a["t"]) / ((b["t"] - a["t"]) or 1)
    return a["grants"] + share * (b["grants"] - a["grants"])


def _cpu_per_poll(samples: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(grants, runner CPU ms per poll) per sampling window with polls in it."""
    points = []
    for a, b in itertools.pairwise(samples):
        polls = b["polls"] - a["polls"]
        if polls > 0:
            points.append((b["grants"], (b["runner_cpu_s"] - a["runner_cpu_s"]) * 1000 / polls))
    return points


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one run: growth, worst block, CPU per poll early and late."""
    out: dict[str, Any] = {"label": result["label"], "minutes": round(result["seconds"] / 60, 1)}
    calls = result.get("in_process") or []
    if calls:
        out["in_process"] = {
            "calls": calls[-1]["calls"],
            "grants": result.get("in_process_grants"),
            "rss_growth_mb": round(calls[-1]["rss_mb"] - calls[0]["rss_mb"], 1),
            "patterns_last": calls[-1]["patterns"],
            "worst_call_ms_first": calls[0]["worst_call_ms"],
            "worst_call_ms_last": calls[-1]["worst_call_ms"],
            "cpu_ms_per_call_first": calls[0]["cpu_ms_per_call"],
            "cpu_ms_per_call_last": calls[-1]["cpu_ms_per_call"],
        }
    trig = result.get("triggerer")
    if trig and trig["samples"]:
        samples, probe = trig["samples"], trig["probe"]
        first, last = samples[0], samples[-1]
        cpu = _cpu_per_poll(samples)
        tenth = max(1, len(cpu) // 10)
        out["triggerer"] = {
            "rotations": last["grants"],
            "polls": last["polls"],
            "runner_rss_growth_mb": round(last["runner_rss_mb"] - first["runner_rss_mb"], 1),
            "supervisor_rss_growth_mb": round(last["supervisor_rss_mb"] - first["supervisor_rss_mb"], 1),
            "patterns_first": probe[0]["patterns"] if probe else None,
            "patterns_last": probe[-1]["patterns"] if probe else None,
            "compile_ms_last": probe[-1]["compile_ms"] if probe else None,
            "loop_lag_max_ms": max((p["lag_max_ms"] for p in probe), default=None),
            "windows_lag_over_100_ms": sum(p["lag_max_ms"] > 100 for p in probe),
            "gc_pause_max_ms": max((p.get("gc_max_ms", 0.0) for p in probe), default=None),
            "full_collections": sum(p.get("full_collections", 0) for p in probe),
            "blocked_warnings": len(trig["blocked_warnings"]),
            "blocked_max_s": max(trig["blocked_warnings"], default=0.0),
            "cpu_ms_per_poll_first_tenth": round(sum(c for _, c in cpu[:tenth]) / tenth, 2) if cpu else None,
            "cpu_ms_per_poll_last_tenth": round(sum(c for _, c in cpu[-tenth:]) / tenth, 2) if cpu else None,
        }
    secrets = result.get("secrets") or {}
    out["secrets"] = {k: secrets.get(k) for k in ("files", "lines", "tokens")} | {
        "found": len(secrets.get("found") or [])
    }
    return out


def summary(result: dict[str, Any]) -> str:
    """The headline numbers as indented JSON (printed at the end of a run)."""
    return json.dumps(figures(result), indent=1)


def _plot(runs: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    styles = {"before": dict(color="tab:red", ls="--"), "after": dict(color="tab:blue", ls="-")}
    for label, result in runs.items():
        style = styles.get(label, {})
        trig = result.get("triggerer") or {"samples": [], "probe": []}
        samples, probe = trig["samples"], trig["probe"]
        grants = [s["grants"] for s in samples]
        axes[0][0].plot(
            grants, [s["runner_rss_mb"] for s in samples], label=f"{label}: trigger runner", **style
        )
        axes[0][0].plot(
            grants,
            [s["supervisor_rss_mb"] for s in samples],
            label=f"{label}: supervisor",
            alpha=0.5,
            **style,
        )
        at = [_grants_at(samples, p["t"]) for p in probe] if samples else []
        axes[0][1].plot(at, [p["patterns"] for p in probe], label=label, **style)
        axes[0][2].plot(at, [p["compile_ms"] for p in probe], label=label, **style)
        axes[1][0].plot(at, [p["lag_max_ms"] for p in probe], label=label, **style)
        cpu = _cpu_per_poll(samples)
        axes[1][1].plot([g for g, _ in cpu], [c for _, c in cpu], label=label, **style)
        calls = result.get("in_process") or []
        axes[1][2].plot([c["calls"] for c in calls], [c["rss_mb"] for c in calls], label=label, **style)
    titles = [
        ("triggerer RSS (MB)", "token rotations"),
        ("masker patterns (trigger runner)", "token rotations"),
        ("compiling them (ms)", "token rotations"),
        ("event-loop block, worst per 2 s (ms)", "token rotations"),
        ("trigger runner CPU per poll (ms)", "token rotations"),
        ("one interpreter: RSS (MB)", "hook calls"),
    ]
    for ax, (title, xlabel) in zip([a for row in axes for a in row], titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[1][0].axhline(100, color="grey", lw=0.8, ls=":")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=80)
    plt.close(fig)


def _table(runs: dict[str, dict[str, Any]]) -> str:
    rows = [("figure", *runs)]
    flat = {label: figures(result) for label, result in runs.items()}

    def pick(path: str) -> list[str]:
        values = []
        for label in runs:
            value: Any = flat[label]
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            values.append("-" if value is None else str(value))
        return values

    paths = (
        "minutes",
        "triggerer.rotations",
        "triggerer.polls",
        "triggerer.runner_rss_growth_mb",
        "triggerer.supervisor_rss_growth_mb",
        "triggerer.patterns_first",
        "triggerer.patterns_last",
        "triggerer.compile_ms_last",
        "triggerer.loop_lag_max_ms",
        "triggerer.windows_lag_over_100_ms",
        "triggerer.gc_pause_max_ms",
        "triggerer.full_collections",
        "triggerer.blocked_warnings",
        "triggerer.blocked_max_s",
        "triggerer.cpu_ms_per_poll_first_tenth",
        "triggerer.cpu_ms_per_poll_last_tenth",
        "in_process.calls",
        "in_process.grants",
        "in_process.rss_growth_mb",
        "in_process.patterns_last",
        "in_process.worst_call_ms_first",
        "in_process.worst_call_ms_last",
        "secrets.lines",
        "secrets.tokens",
        "secrets.found",
    )
    rows.extend((path, *pick(path)) for path in paths)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def write(results: Path) -> None:
    """Plot every ``soak-*.json`` in ``results`` and put their table in docs/performance.md."""
    runs = {}
    for label in ("before", "after"):
        path = results / f"soak-{label}.json"
        if path.is_file():
            runs[label] = json.loads(path.read_text())
    if not runs:
        return
    _plot(runs)
    block = f"{START}\n![soak figures](images/soak.png)\n\n{_table(runs)}\n{END}"
    text = DOC.read_text(encoding="utf-8")
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n## Soak (`make soak`)\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")
