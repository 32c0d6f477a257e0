"""
One measured load in a fresh process: ``python -m benchmarks.warehouse.child '<spec JSON>'``.

Prints one JSON line: the load's seconds (imports and hooks excluded), its CPU seconds here and
in the database server's processes (a busy machine stretches the clock, much less the CPU
time), the process's RSS when
the load starts and its peak (``VmHWM``: the whole process, native memory of DuckDB, delta-rs
and the drivers included; a database server's memory is not), the rows the contender wrote (the
provider's ``changed``), and the table's rows and edited rows counted afterwards. With
``"profile": "<file>"`` the load runs under pyinstrument and its text report is written there.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson
import psutil

from benchmarks.warehouse.contenders import CONTENDERS, inspect

#: Every child's result, one JSON line each (``--combine`` can read it after an interrupted run).
JOURNAL = Path(__file__).resolve().parents[2] / ".venv-bench" / "warehouse-journal.jsonl"


def _cpu() -> float:
    """CPU seconds of this process so far (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    """
    This process's peak RSS in bytes: the kernel's high-water mark of its own memory (VmHWM).

    Not ``ru_maxrss``: Linux carries that across fork and exec, so a child of a parent that once
    held 900 MiB (the generated inputs) reported 900 MiB whatever it loaded.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def server_cpu(pid: int | None) -> float:
    """
    CPU seconds of a database server so far: its main process, its exited children (PostgreSQL's
    backends, reaped by the postmaster) and its live ones; 0 for an in-process target.
    """
    if not pid:
        return 0.0
    main = psutil.Process(pid)
    own = main.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    for child in main.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def _step(spec: dict[str, Any], load: Any, prepared: Any, profile: str | None) -> dict[str, Any]:
    rss_start = psutil.Process().memory_info().rss
    server = spec["where"].get("pid")
    cpu_start, server_start = _cpu(), server_cpu(server)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    written = load(spec, prepared)
    seconds = time.perf_counter() - started
    cpu, server_seconds = _cpu() - cpu_start, server_cpu(server) - server_start
    # The peak of the whole process so far: only the first step's is its own.
    peak = _peak_rss()
    if profiler is not None:
        profiler.stop()
        with open(profile, "w") as out:
            out.write(profiler.output_text(unicode=True, color=False, show_all=False))
    rows, edited = inspect(spec, prepared)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "server_cpu": server_seconds,
        "rss_start": rss_start,
        "rss_peak": peak,
        "written": written,
        "rows": rows,
        "edited": edited,
    }


def measure(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Run the steps of ``spec`` (``{"steps": [{"name", "files"}, ...], ...}``) one after the other.

    :return: each step's figures by its name (:mod:`this module <benchmarks.warehouse.child>`).
    """
    prepare, load = CONTENDERS[spec["contender"]]
    prepared = prepare(spec)
    return {
        step["name"]: _step({**spec, "files": step["files"]}, load, prepared, step.get("profile"))
        for step in spec["steps"]
    }


def main() -> int:
    """Measure the load given as the first argument; print the figures (or the error) as JSON."""
    spec = orjson.loads(sys.argv[1])
    # insert_rows logs every 1,000 rows and dlt every step: the figures, not the logs, go to stdout.
    logging.disable(logging.INFO)
    try:
        out = measure(spec)
    except Exception as err:  # noqa: BLE001 - reported as the figure's error
        traceback.print_exc()
        out = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]}
    sys.stdout.write("\nRESULT " + orjson.dumps(out).decode() + "\n")
    # Also kept beside the run's figures, so an interrupted run's finished loads are not lost.
    with JOURNAL.open("ab") as journal:
        kept = {key: spec[key] for key in ("target", "contender", "table")}
        journal.write(orjson.dumps({**kept, "result": out}) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
