"""The machine, the figures as Markdown tables, and their place in ``docs/performance.md``."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import goals
from benchmarks.emulator import SERVERS
from benchmarks.figures import LABELS, Sample, Stat, expected_pages, median

__all__ = ["BEGIN", "END", "load", "machine", "render", "write_doc"]

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


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
        "load": load(),
        "commit": _commit(),
    }


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _commit() -> str:
    """The checked-out commit, ``+changes`` when the tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=root, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=root, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _span(values: Sequence[int]) -> str:
    return f"{min(values)}" + (f"-{max(values)}" if max(values) != min(values) else "")


def _stat(stat: Stat | None, digits: int = 0, scale: float = 1.0) -> str:
    if stat is None:
        return "n/a | | |"
    return (
        f"{_num(stat.median * scale, digits)} | {_num(stat.low * scale, digits)} | "
        f"{_num(stat.high * scale, digits)} | {stat.runs}"
    )


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _failed(sample: Sample) -> str:
    """A note of the runs that failed or copied the wrong count (empty when none did)."""
    return f" **{len(sample.errors)} run(s) failed or incomplete**" if sample.errors else ""


def _cpu_us(sample: Sample) -> str:
    cpu = median(sample.cpu)
    return f"{cpu / sample.records * 1e6:.0f}" if cpu is not None else "n/a"


def _throughput_rows(sizes: dict[int, dict[str, Sample]]) -> list[str]:
    rows = [
        "| size | contender | referrals/s (median) | min | max | runs | ratio to floor "
        "| client CPU µs per referral |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for records in sorted(sizes):
        samples = sizes[records]
        floor = median(samples["floor"].rates) if "floor" in samples else None
        for name, label in LABELS.items():
            sample = samples.get(name)
            if sample is None or not sample.rates:
                reason = "; ".join(sample.errors)[:120] if sample else "not run at this size (time budget)"
                rows.append(f"| {records:,} | {label} | n/a | | | | {reason} | |")
                continue
            stat = Stat.of(sample.rates)
            ratio = f"{stat.median / floor:.2f}" if floor else "n/a"
            rows.append(
                f"| {records:,} | {label} | {_stat(stat)} | {ratio}{_failed(sample)} | {_cpu_us(sample)} |"
            )
    return rows


def _servers_rows(p1: dict[str, dict[int, dict[str, Sample]]]) -> list[str]:
    keep, close = p1.get("keep-alive", {}), p1.get("connection-per-request", {})
    rows = [
        "| size | contender | keep-alive referrals/s | connection-per-request referrals/s "
        "| keep-alive gain |",
        "|---|---|---|---|---|",
    ]
    for records in sorted(set(keep) & set(close)):
        for name, label in LABELS.items():
            fast = median(keep[records][name].rates) if name in keep[records] else None
            slow = median(close[records][name].rates) if name in close[records] else None
            if fast and slow:
                rows.append(f"| {records:,} | {label} | {_num(fast)} | {_num(slow)} | {fast / slow:.2f}x |")
    return rows


def _memory_rows(sizes: dict[int, dict[str, Sample]]) -> list[str]:
    ordered = sorted(sizes)
    rows = [
        "| contender | "
        + " | ".join(f"peak RSS at {n:,} (MB)" for n in ordered)
        + f" | growth {ordered[0]:,} -> {ordered[-1]:,} (MB) | RSS after imports (MB) |",
        "|---|" + "---|" * (len(ordered) + 2),
    ]
    for name, label in LABELS.items():
        peaks = [median(sizes[n][name].peaks) if name in sizes[n] else None for n in ordered]
        if not any(peaks):
            continue
        bases = [b for n in ordered if name in sizes[n] for b in sizes[n][name].bases]
        low, high = peaks[0], peaks[-1]
        growth = f"{high - low:+.0f}" if low is not None and high is not None else "n/a"
        cells = " | ".join(_num(p) if p else "n/a" for p in peaks)
        base = median(bases)
        rows.append(f"| {label} | {cells} | {growth} | {_num(base) if base else 'n/a'} |")
    return rows


def _request_rows(p1: dict[str, dict[int, dict[str, Sample]]], page_size: int) -> list[str]:
    rows = [
        "| size | server | contender | token requests per run | list requests per run | expected pages "
        "| TLS handshakes per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for server, sizes in p1.items():
        for records in sorted(sizes):
            for name, label in LABELS.items():
                sample = sizes[records].get(name)
                if sample is None or not sample.tokens:
                    continue
                rows.append(
                    f"| {records:,} | {server} | {label} | {_span(sample.tokens)} | {_span(sample.lists)} "
                    f"| {expected_pages(records, page_size):,} | {_span(sample.handshakes)} |"
                )
    return rows


def _in_process_rows(figure: dict[str, Any]) -> list[str]:
    samples: dict[str, Sample] = figure["samples"]
    floor = median(samples["floor"].cpu) if "floor" in samples else None
    rows = [
        "| contender | client CPU s per run (median) | min | max | runs | CPU µs per referral "
        "| floor CPU / contender CPU | referrals/s (wall) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("floor", "operator"):
        sample = samples.get(name)
        if sample is None or not sample.cpu:
            rows.append(f"| {LABELS[name]} | n/a | | | | | | |")
            continue
        stat = Stat.of(sample.cpu)
        ratio = f"{floor / stat.median:.2f}" if floor else "n/a"
        wall = _num(median(sample.rates) or 0)
        rows.append(f"| {LABELS[name]} | {_stat(stat, 2)} | {_cpu_us(sample)} | {ratio} | {wall} |")
    return rows


def _latency_rows(figure: dict[str, Any]) -> list[str]:
    rows = [
        "| run | seconds (median) | min | max | runs | speed-up over the sequential operator "
        "| list requests | peak RSS (MB) | client CPU s | output SHA-256 = sequential operator's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"floor": "sequential floor (requests + orjson loop)", "p1": "operator, parallelism=1"}
    for key, sample in figure["samples"].items():
        label = names.get(key, f"operator, parallelism={key[1:]}")
        if not sample.seconds:
            rows.append(f"| {label} | n/a | | | | {'; '.join(sample.errors)[:120]} | | | | |")
            continue
        speedup, same = "", ""
        if key == "p1":
            speedup, same = "1.00", "reference"
        elif key.startswith("p"):
            stat = figure["speedup"][int(key[1:])]
            speedup = f"{stat.median:.2f}x ({stat.low:.2f}-{stat.high:.2f})" if stat else "n/a"
            same = "yes" if figure["same_bytes"][int(key[1:])] else "**no**"
        rows.append(
            f"| {label} | {_stat(Stat.of(sample.seconds), 1)} | {speedup} | {_span(sample.lists)} "
            f"| {_num(median(sample.peaks) or 0)} | {_num(median(sample.cpu) or 0, 1)} "
            f"| {same}{_failed(sample)} |"
        )
    return rows


def _p1_sections(results: dict[str, Any], page_size: int) -> list[str]:
    p1: dict[str, dict[int, dict[str, Sample]]] = results["p1"]
    keep = dict(p1.get("keep-alive", {}))
    if results.get("in_process"):
        # P7's runs are keep-alive runs of the floor and the operator at its own size.
        keep.setdefault(results["in_process"]["records"], results["in_process"]["samples"])
    out: list[str] = []
    for server in SERVERS:
        sizes = keep if server == "keep-alive" else p1.get(server, {})
        if sizes:
            out += [
                f"### P1 throughput, {server} server (JSONL file, {page_size} referrals per page, "
                "emulator in its own process)",
                "",
                *_throughput_rows(sizes),
                "",
            ]
    if len(p1) == len(SERVERS):
        out += ["### P1 both servers side by side (medians)", "", *_servers_rows(p1), ""]
    if p1.get("keep-alive"):
        out += [
            "### P2 memory, keep-alive server (peak RSS of the whole process, median of the same runs)",
            "",
            *_memory_rows(keep),
            "",
        ]
    if p1:
        out += ["### P3 requests per run (emulator counters)", "", *_request_rows(p1, page_size), ""]
    return out


def _imports_rows(imports: dict[str, Any]) -> list[str]:
    rows = [
        "| module | ms (median) | min | max | runs |",
        "|---|---|---|---|---|",
        f"| `import airflow.sdk` itself (baseline) | {_stat(imports['sdk'], 0, 1000)} |",
        f"| operators.referrals | {_stat(imports['operator'], 1, 1000)} |",
    ]
    if imports["sensor"] is None:
        rows.append("| sensors.referrals | n/a (not yet built) | | | |")
    else:
        rows.append(f"| sensors.referrals | {_stat(imports['sensor'], 1, 1000)} |")
        rows.append(f"| both | {_stat(imports['both'], 1, 1000)} |")
    return rows


def _backfill_rows(backfill: dict[str, Any]) -> list[str]:
    return [
        f"### P5 backfill (30 daily windows, {backfill['records']:,} referrals, "
        f"{backfill['page_size']} per page, {backfill['latency'] * 1000:.0f} ms per page)",
        "",
        "| run | seconds (median) | min | max | runs | pages | tokens per window |",
        "|---|---|---|---|---|---|---|",
        f"| sequential (parallelism=1) | {_stat(backfill['sequential'], 1)} | {backfill['pages'][1]} "
        f"| {backfill['tokens_per_window'][1]:.0f} |",
        f"| parallelism=4 | {_stat(backfill['parallel'], 1)} | {backfill['pages'][4]} "
        f"| {backfill['tokens_per_window'][4]:.0f} |",
        f"| speedup | {_stat(backfill['speedup'], 2)} | | |",
        "",
    ]


def _soak_rows(soak: dict[str, Any]) -> list[str]:
    return [
        f"### P6 soak (daily windows, {soak['fault_rate']:.0%} faults: {'/'.join(soak['fault_kinds'])}, "
        "and an expired token at the start of each window)",
        "",
        "| intervals | served | delivered | duplicates | missing | faults injected | expired tokens "
        "| token requests | list requests | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {soak['intervals']} | {soak['served']:,} | {soak['delivered']:,} | {soak['duplicates']} | "
        f"{soak['missing']} | {soak['faults']} | {soak['expired_tokens']} | {soak['token_requests']} | "
        f"{soak['api_requests']} | {soak['seconds']:.1f} |",
        "",
    ]


def render(results: dict[str, Any]) -> str:
    """All figures of one run as Markdown."""
    info, page_size = results["machine"], results["page_size"]
    out = [
        f"Run {info['date']} at commit {info.get('commit', 'unknown')} on {info['cpu']}, "
        f"{info['cores']} cores, {info['memory']}; Python {info['python']}, "
        f"Airflow {info['airflow']}, provider {info['provider']}; peers: {info['peers']}. "
        f"Load average at the start: {info['load']}, at the end: {results.get('load_at_end', 'n/a')}. "
        f"Whole run: {results['seconds'] / 60:.1f} min. Options: `{results.get('options', 'n/a')}`.",
        "",
        "### Goals",
        "",
        *goals.rows(results),
        "",
        *_p1_sections(results, page_size),
    ]
    if results.get("imports"):
        out += [
            "### P4 import cost over `import airflow.sdk` (fresh process each run)",
            "",
            *_imports_rows(results["imports"]),
            "",
        ]
    if results.get("backfill"):
        out += _backfill_rows(results["backfill"])
    if results.get("soak"):
        out += _soak_rows(results["soak"])
    if results.get("in_process"):
        figure = results["in_process"]
        out += [
            f"### P7 in-process cost at {figure['records']:,} referrals (keep-alive server; the clock "
            "and the CPU time cover the extraction only, imports excluded)",
            "",
            *_in_process_rows(figure),
            "",
        ]
    if results.get("latency"):
        figure = results["latency"]
        out += [
            f"### P8 latency ({figure['records']:,} referrals, {figure['page_size']} per page, "
            f"{figure['latency'] * 1000:.0f} ms per page, keep-alive server)",
            "",
            *_latency_rows(figure),
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"


def write_doc(path: Path, block: str) -> None:
    """Put ``block`` between the markers of ``path`` (the rest of the page is left as it is)."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")
