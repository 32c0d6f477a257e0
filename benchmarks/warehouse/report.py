"""The warehouse figures as Markdown tables, their checks, and their place in ``docs/performance.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "checks", "render", "write_doc"]

BEGIN = "<!-- warehouse-bench:begin (written by `make bench-warehouse`; edit outside these markers) -->"
END = "<!-- warehouse-bench:end -->"
#: Where the section goes the first time: before this heading, under its own.
_BEFORE = "## What each figure is"
_HEADING = "## Warehouse loads (`make bench-warehouse`)"
#: "Flat": the large size's peak within this factor of the small size's.
FLAT = 1.25
_LABELS = {
    "provider": "provider `load_referrals`",
    "insert_rows": "common-sql `insert_rows(replace=True)`",
    "dlt": "dlt `merge`",
}
_TARGET_LABELS = {
    "sqlite": "SQLite (file)",
    "duckdb": "DuckDB (file)",
    "delta": "Delta Lake (file://)",
    "postgres": "PostgreSQL 15 (server)",
    "mariadb": "MariaDB 10.11 (server)",
}


def _label(target: str, contender: str) -> str:
    if (target, contender) == ("delta", "provider"):
        return "provider `merge_referrals_delta`"
    return _LABELS[contender]


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def _ok(figure: dict[str, Any] | None) -> bool:
    return figure is not None and "error" not in figure


def older_loses(figures: dict[str, Any], edits: int) -> str:
    """Whether replaying the older file after the edit of ``edits`` rows regressed any of them."""
    edit, older = figures.get("edit"), figures.get("older")
    if edit is None or older is None or "error" in edit or "error" in older:
        return "n/a"
    if edit["edited"] != edits:
        return f"edit not applied ({edit['edited']} of {edits})"
    if older["edited"] == edits:
        return "no"
    return f"**yes** ({edits - older['edited']:,} of {edits:,} rows regressed)"


def checks(results: dict[str, Any]) -> list[str]:
    """The provider's guarantees that failed (empty when all hold): replay changes nothing, and so on."""
    failed = []
    records = results["records"]
    for target, by_contender in results["targets"].items():
        provider = by_contender.get("provider", {})
        first, replay = provider.get("first"), provider.get("replay")
        if not _ok(first) or not _ok(replay):
            continue
        if first["rows"] != records:
            failed.append(f"{target}: {first['rows']:,} rows after the first load, not {records:,}")
        if replay["written"] != 0 or replay["rows"] != records:
            failed.append(
                f"{target}: the replay changed {replay['written']:,} rows and left {replay['rows']:,}"
            )
        loses = older_loses(provider, results["edits"])
        if loses != "no":
            failed.append(f"{target}: older file replayed: {loses}")
    return failed


def _checked(results: dict[str, Any]) -> list[str]:
    """The targets whose provider loads (first and replay) were measured."""
    return [
        target
        for target, by_contender in results["targets"].items()
        if _ok(by_contender.get("provider", {}).get("first"))
        and _ok(by_contender.get("provider", {}).get("replay"))
    ]


def _error(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "not measured (run interrupted)"
    text = str(figure.get("error", "")).replace("|", "/")
    return text if text.startswith(("n/a", "stopped")) else f"fails: {text[:140]}"


def _cpu_text(figure: dict[str, Any]) -> str:
    if "cpu" not in figure:
        return "n/a"
    server = f" + {figure['server_cpu']:,.1f}" if figure["server_cpu"] else ""
    return f"{figure['cpu']:,.1f}{server}"


def _w1_rows(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    rows = [
        "| target | contender | first load (s) | referrals/s | peak RSS (MiB) | RSS at start (MiB) "
        "| CPU here + server (s) | replay (s) | replay CPU (s) | rows written by the replay | rows after "
        "| older file replayed loses? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target, by_contender in results["targets"].items():
        for contender, figures in by_contender.items():
            first, replay = figures.get("first"), figures.get("replay")
            head = f"| {_TARGET_LABELS[target]} | {_label(target, contender)} "
            if not _ok(first):
                rows.append(head + f"| {_error(first)} | | | | | | | | | |")
                continue
            assert first is not None
            again = (
                f"{replay['seconds']:,.1f} | {_cpu_text(replay)} | {replay['written']:,} | {replay['rows']:,}"
                if _ok(replay) and replay is not None
                else f"{_error(replay)} | | | "
            )
            rows.append(
                head + f"| {first['seconds']:,.1f} | {records / first['seconds']:,.0f} "
                f"| {_mib(first['rss_peak'])} | {_mib(first['rss_start'])} | {_cpu_text(first)} | {again} "
                f"| {older_loses(figures, results['edits'])} |"
            )
    return rows


def cpu(figure: dict[str, Any]) -> float | None:
    """CPU seconds of a load: the loading process's and the database server's."""
    return figure["cpu"] + figure["server_cpu"] if "cpu" in figure else None


def _ratio(provider: dict[str, Any] | None, peer: dict[str, Any] | None) -> str:
    if provider is None or "error" in provider:
        return "provider fails"
    if peer is None:
        return "not measured"
    if "error" in peer:
        error = str(peer["error"])
        if error.startswith("stopped"):
            return "peer did not finish"
        return "n/a" if error.startswith("n/a") else "peer fails"
    wall = peer["seconds"] / provider["seconds"]
    mine, theirs = cpu(provider), cpu(peer)
    if mine is None or theirs is None or mine <= 0:
        return f"{wall:.2f}x " + ("ahead" if wall > 1 else "**behind**")
    work = theirs / mine
    verdict = "ahead" if wall > 1 and work > 1 else "**behind**" if wall < 1 and work < 1 else "mixed"
    return f"{wall:.2f}x / {work:.2f}x {verdict}"


def _memory(figures: dict[str, Any]) -> tuple[str, str, str, bool | None]:
    small, large = figures.get("small"), figures.get("first")
    if small is None or large is None or "error" in small or "error" in large:
        return "n/a", "n/a", "n/a", None
    ratio = large["rss_peak"] / small["rss_peak"]
    return _mib(small["rss_peak"]), _mib(large["rss_peak"]), f"{ratio:.2f}", ratio <= FLAT


def _goal_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| target | first load vs insert_rows | vs dlt | replay vs insert_rows | vs dlt "
        f"| peak memory {results['small']:,} -> {results['records']:,} |",
        "|---|---|---|---|---|---|",
    ]
    for target, by_contender in results["targets"].items():
        provider = by_contender.get("provider", {})
        cells = [
            _ratio(provider.get(step), by_contender.get(peer, {}).get(step))
            for step in ("first", "replay")
            for peer in ("insert_rows", "dlt")
        ]
        small, large, ratio, flat = _memory(provider)
        verdict = "n/a" if flat is None else ("flat" if flat else "**grows**")
        cells.append(f"{small} -> {large} MiB ({ratio}x): {verdict}")
        rows.append(f"| {_TARGET_LABELS[target]} | " + " | ".join(cells) + " |")
    return rows


def _memory_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        f"| target | contender | peak RSS at {results['small']:,} (MiB) "
        f"| at {results['records']:,} (MiB) | ratio |",
        "|---|---|---|---|---|",
    ]
    for target, by_contender in results["targets"].items():
        for contender, figures in by_contender.items():
            small, large, ratio, _ = _memory(figures)
            rows.append(
                f"| {_TARGET_LABELS[target]} | {_label(target, contender)} | {small} | {large} | {ratio} |"
            )
    return rows


def _measured(results: dict[str, Any]) -> list[str]:
    """When targets were measured by separate runs (``--combine``), each one's end and commit."""
    measured = results.get("measured", {})
    if results.get("runs", 1) <= 1:
        return []
    return [
        "",
        f"This section combines {results['runs']} runs made side by side to fit the time left: "
        "one per target (its contenders one after the other), and where a target's provider run "
        "was slow, a second run of its peers with a server of its own (same build, same "
        "settings). Last ended: " + "; ".join(f"{t} {when}" for t, when in measured.items()) + ".",
    ]


def render(results: dict[str, Any]) -> str:
    """The Markdown section of one run."""
    machine = results["machine"]
    failed = checks(results)
    out = [
        f"### W1 warehouse loads, {results['records']:,} referrals",
        "",
        f"`make bench-warehouse` on {machine['date']}, commit `{machine['commit']}`: {machine['cpu']} "
        f"({machine['cores']} cores), load average {machine['load']} at the start and "
        f"{results['load_at_end']} at the end: **the machine was shared with other engineers' work "
        "(builds, tests), so every figure is noisy; compare the contenders of one target, measured "
        "one after the other in this run, rather than absolute values.** Whole run: "
        f"{results['seconds'] / 60:.1f} min. Versions: {results['versions']}.",
        "",
        f"Input: {results['records']:,} referrals from the emulator's generator (seed 26), as the "
        f"operator writes them, in {results['files']} daily JSONL files "
        f"({results['megabytes']:,.0f} MB); each contender loads them one call per file, each load "
        "in a fresh process (imports and hooks not timed; peak RSS is the whole process's, native "
        "memory of DuckDB, delta-rs and the drivers included, the database server's not). "
        f"Replay: the same files again. Older file: {results['edits']:,} referrals of the newest day edited "
        "(newer `updatedDateTime`, another status) are loaded, then the newest day's file, now "
        "older, is replayed; \"loses\" means it overwrote edited rows.",
        *_measured(results),
        "",
        "#### Goals",
        "",
        "Each cell: the peer's wall-clock seconds over the provider's, then the same for CPU seconds "
        "(the loading process's plus the database server's); above 1 the provider is ahead. On a "
        "busy machine the clock stretches with the other work, the CPU time much less: read the "
        "second ratio when the two disagree (\"mixed\").",
        "",
        *_goal_rows(results),
        "",
        f"Checks of the provider on {', '.join(_checked(results)) or 'no target'}: "
        + ("all hold (first load holds every referral; the replay wrote 0 rows and left the count; "
           "the older file changed nothing)." if not failed else "**failed**: " + "; ".join(failed)),
        "",
        "#### Every load",
        "",
        *_w1_rows(results),
        "",
        f"#### Peak memory, {results['small']:,} vs {results['records']:,} referrals (first load; "
        f"the small size is {results['small_files']} daily files)",
        "",
        *_memory_rows(results),
        "",
    ]  # fmt: skip
    if results.get("profiles"):
        out += ["#### Where the provider's time goes (pyinstrument, first load)", ""]
        for target, lines in results["profiles"].items():
            out += [f"{_TARGET_LABELS[target]}:", "", "```text", *lines, "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_doc(path: Path, block: str) -> None:
    """Put ``block`` between this section's markers (a new section of its own the first time)."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        anchor = text.index(_BEFORE) if _BEFORE in text else len(text)
        text = f"{text[:anchor]}{_HEADING}\n\n{BEGIN}\n{END}\n\n{text[anchor:]}"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")
