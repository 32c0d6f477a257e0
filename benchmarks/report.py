"""The machine, the figures as Markdown tables, and their place in ``docs/performance.md``."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.figures import Sample, Stat, expected_pages

__all__ = ["BEGIN", "END", "machine", "render", "write_doc"]

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"
LABELS = {
    "floor": "floor (requests + orjson loop)",
    "operator": "**PartnerCenterReferralsOperator**",
    "http_operator": "HttpOperator + pagination_function",
    "dlt": "dlt rest_api -> filesystem jsonl",
}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """CPU, cores, memory, Python, Airflow and peer versions, load and date."""
    cpu = platform.processor() or "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{total_kb / 2**20:.0f} GiB",
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "provider": _version("airflow-provider-partner"),
        "peers": f"apache-airflow-providers-http {_version('apache-airflow-providers-http')}, "
        f"dlt {_version('dlt')}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _stat(stat: Stat | None, digits: int = 0, scale: float = 1.0) -> str:
    if stat is None:
        return "n/a | | |"
    return (
        f"{_num(stat.median * scale, digits)} | {_num(stat.low * scale, digits)} | "
        f"{_num(stat.high * scale, digits)} | {stat.runs}"
    )


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _throughput_rows(sizes: dict[int, dict[str, Sample]]) -> list[str]:
    rows = [
        "| size | contender | referrals/s (median) | min | max | runs | ratio to floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for records, samples in sizes.items():
        floor = (
            statistics.median(samples["floor"].rates) if samples.get("floor", Sample("", 0)).rates else None
        )
        for name, label in LABELS.items():
            sample = samples.get(name)
            if sample is None or not sample.rates:
                reason = "; ".join(sample.errors)[:120] if sample else "not run at this size (time budget)"
                rows.append(f"| {records:,} | {label} | n/a | | | | {reason} |")
                continue
            stat = Stat.of(sample.rates)
            ratio = f"{stat.median / floor:.2f}" if floor else "n/a"
            rows.append(f"| {records:,} | {label} | {_stat(stat)} | {ratio} |")
    return rows


def _memory_rows(sizes: dict[int, dict[str, Sample]]) -> list[str]:
    small, large = min(sizes), max(sizes)
    rows = [
        f"| contender | peak RSS at {small:,} (MB) | peak RSS at {large:,} (MB) | growth (MB) "
        "| RSS after imports (MB) |",
        "|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        low, high = sizes[small].get(name), sizes[large].get(name)
        peak_low = statistics.median(low.peaks) if low and low.peaks else None
        peak_high = statistics.median(high.peaks) if high and high.peaks else None
        base = statistics.median((low or high).bases) if (low or high) and (low or high).bases else None  # type: ignore[union-attr]
        growth = f"{peak_high - peak_low:+.0f}" if peak_low is not None and peak_high is not None else "n/a"
        low_text = _num(peak_low) if peak_low else "n/a"
        high_text = _num(peak_high) if peak_high else "n/a"
        rows.append(f"| {label} | {low_text} | {high_text} | {growth} | {_num(base) if base else 'n/a'} |")
    return rows


def _request_rows(sizes: dict[int, dict[str, Sample]], page_size: int) -> list[str]:
    rows = [
        "| size | contender | token requests per run | list requests per run | expected pages |",
        "|---|---|---|---|---|",
    ]
    for records, samples in sizes.items():
        for name, label in LABELS.items():
            sample = samples.get(name)
            if sample is None or not sample.tokens:
                continue
            tokens = f"{min(sample.tokens)}" + (
                f"-{max(sample.tokens)}" if max(sample.tokens) != min(sample.tokens) else ""
            )
            lists = f"{min(sample.lists)}" + (
                f"-{max(sample.lists)}" if max(sample.lists) != min(sample.lists) else ""
            )
            rows.append(
                f"| {records:,} | {label} | {tokens} | {lists} | {expected_pages(records, page_size):,} |"
            )
    return rows


def _goals(results: dict[str, Any], sizes: dict[int, dict[str, Sample]], page_size: int) -> list[str]:
    large = max(sizes)
    samples = sizes[large]
    lines = ["| goal | measured | |", "|---|---|---|"]
    if samples.get("operator") and samples["operator"].rates and samples["floor"].rates:
        operator = statistics.median(samples["operator"].rates)
        ratio = operator / statistics.median(samples["floor"].rates)
        lines.append(
            f"| P1: operator >= 0.9 of the floor at {large:,} | {ratio:.2f} | {_met(ratio >= 0.9)} |"
        )
    compared: dict[str, list[str]] = {}
    ahead = True
    for records, by_name in sizes.items():
        mine = by_name.get("operator")
        if not mine or not mine.rates:
            continue
        for name, peer in by_name.items():
            if name in {"floor", "operator"} or not peer.rates:
                continue
            compared.setdefault(LABELS[name].split(" ")[0], []).append(f"{records:,}")
            ahead = ahead and statistics.median(mine.rates) > statistics.median(peer.rates)
    where = "; ".join(f"{peer} at {', '.join(at)}" for peer, at in compared.items())
    lines.append(
        f"| P1: operator ahead of every peer ({where}) | see P1 | {_met(ahead and bool(compared))} |"
    )
    small = min(sizes)
    op_small, op_large = sizes[small].get("operator"), samples.get("operator")
    if op_small and op_large and op_small.peaks and op_large.peaks:
        growth = statistics.median(op_large.peaks) - statistics.median(op_small.peaks)
        lines.append(
            f"| P2: operator peak RSS growth {small:,} -> {large:,} < 30 MB | {growth:+.0f} MB "
            f"| {_met(growth < 30)} |"
        )
    if op_large and op_large.tokens:
        ok = set(op_large.tokens) == {1} and set(op_large.lists) == {expected_pages(large, page_size)}
        lines.append(
            f"| P3: operator 1 token per run, ceil(N / {page_size}) pages "
            f"| {sorted(set(op_large.tokens))} token(s), {sorted(set(op_large.lists))} pages | {_met(ok)} |"
        )
    imports = results["imports"]
    total = imports["both"] or imports["operator"]
    what = "operator + sensor" if imports["both"] else "operator (sensor n/a (not yet built))"
    lines.append(
        f"| P4: import {what} < 50 ms | {total.median * 1000:.1f} ms | {_met(total.median < 0.05)} |"
    )
    if results.get("backfill"):
        speedup = results["backfill"]["speedup"].median
        lines.append(
            f"| P5: backfill parallelism=4 >= 3x sequential | {speedup:.2f}x | {_met(speedup >= 3)} |"
        )
    if results.get("soak"):
        soak = results["soak"]
        ok = soak["delivered"] == soak["served"] and soak["duplicates"] == 0 and soak["missing"] == 0
        lines.append(
            f"| P6: soak delivered == served, 0 duplicates | {soak['delivered']:,} of {soak['served']:,}, "
            f"{soak['duplicates']} duplicates | {_met(ok)} |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    """All figures of one run as Markdown."""
    info, sizes, page_size = results["machine"], results["sizes"], results["page_size"]
    out = [
        f"Run {info['date']} on {info['cpu']}, {info['cores']} cores, {info['memory']}; "
        f"Python {info['python']}, "
        f"Airflow {info['airflow']}, provider {info['provider']}; peers: {info['peers']}. "
        f"Load average at the start: {info['load']}. Whole run: {results['seconds'] / 60:.1f} min.",
        "",
        "### Goals",
        "",
        *_goals(results, sizes, page_size),
        "",
        f"### P1 throughput (JSONL file, {page_size} referrals per page, emulator in its own process)",
        "",
        *_throughput_rows(sizes),
        "",
        "### P2 memory (peak RSS of the whole process, median of the same runs)",
        "",
        *_memory_rows(sizes),
        "",
        "### P3 requests per run (emulator counters)",
        "",
        *_request_rows(sizes, page_size),
        "",
        "### P4 import cost over `import airflow.sdk` (fresh process each run)",
        "",
        "| module | ms (median) | min | max | runs |",
        "|---|---|---|---|---|",
    ]
    imports = results["imports"]
    out.append(f"| `import airflow.sdk` itself (baseline) | {_stat(imports['sdk'], 0, 1000)} |")
    out.append(f"| operators.referrals | {_stat(imports['operator'], 1, 1000)} |")
    if imports["sensor"] is None:
        out.append("| sensors.referrals | n/a (not yet built) | | | |")
    else:
        out.append(f"| sensors.referrals | {_stat(imports['sensor'], 1, 1000)} |")
        out.append(f"| both | {_stat(imports['both'], 1, 1000)} |")
    if results.get("backfill"):
        backfill = results["backfill"]
        out += [
            "",
            f"### P5 backfill ({len(range(30))} daily windows, {backfill['records']:,} referrals, "
            f"{backfill['page_size']} per page, {backfill['latency'] * 1000:.0f} ms per page)",
            "",
            "| run | seconds (median) | min | max | runs | pages | tokens per window |",
            "|---|---|---|---|---|---|---|",
            f"| sequential (parallelism=1) | {_stat(backfill['sequential'], 1)} | {backfill['pages'][1]} "
            f"| {backfill['tokens_per_window'][1]:.0f} |",
            f"| parallelism=4 | {_stat(backfill['parallel'], 1)} | {backfill['pages'][4]} "
            f"| {backfill['tokens_per_window'][4]:.0f} |",
            f"| speedup | {_stat(backfill['speedup'], 2)} | | |",
        ]
    if results.get("soak"):
        soak = results["soak"]
        out += [
            "",
            f"### P6 soak (daily windows, {soak['fault_rate']:.0%} faults: {'/'.join(soak['fault_kinds'])}, "
            "and an expired token at the start of each window)",
            "",
            "| intervals | served | delivered | duplicates | missing | faults injected | expired tokens "
            "| token requests | list requests | seconds |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {soak['intervals']} | {soak['served']:,} | {soak['delivered']:,} | {soak['duplicates']} | "
            f"{soak['missing']} | {soak['faults']} | {soak['expired_tokens']} | {soak['token_requests']} | "
            f"{soak['api_requests']} | {soak['seconds']:.1f} |",
        ]
    return "\n".join(out) + "\n"


def write_doc(path: Path, block: str) -> None:
    """Put ``block`` between the markers of ``path`` (the rest of the page is left as it is)."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")
