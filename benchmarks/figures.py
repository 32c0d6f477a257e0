"""
The figures: each one runs child processes (``benchmarks.contenders``, ``benchmarks.scenarios``)
against an emulator process and aggregates what they print.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.emulator import EmulatorProcess
from benchmarks.scenarios import DAYS, FIRST_DAY, WINDOWS

__all__ = [
    "LABELS",
    "Sample",
    "Stat",
    "alternate",
    "backfill",
    "import_cost",
    "in_process",
    "median",
    "run_contender",
    "soak",
    "throughput",
]

CONTENDER_ORDER = ("floor", "operator", "http_operator", "dlt")
#: How the report names each contender.
LABELS = {
    "floor": "floor (requests + orjson loop)",
    "operator": "**PartnerCenterReferralsOperator**",
    "http_operator": "HttpOperator + pagination_function",
    "dlt": "dlt rest_api -> filesystem jsonl",
}

#: Random faults of the soak. The expired token is scripted once per window instead of drawn: two
#: in a row would be a refreshed token refused, which the hook rightly treats as an auth failure.
SOAK_FAULTS = ("429", "500", "503", "reset")


@dataclass(frozen=True)
class Stat:
    """Median, min and max of a series; ``runs`` is its length."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        """Summarise ``values`` (at least one)."""
        return cls(statistics.median(values), min(values), max(values), len(values))


@dataclass
class Sample:
    """The runs of one contender at one size on one server: throughput, memory and request counts."""

    name: str
    records: int
    server: str = "keep-alive"
    rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    bases: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    lists: list[int] = field(default_factory=list)
    handshakes: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def median(values: Sequence[float]) -> float | None:
    """The median, or ``None`` for no values."""
    return statistics.median(values) if values else None


def _child(module: str, args: Sequence[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and modules
        [sys.executable, "-m", module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({done.returncode}): {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def alternate(items: Sequence[str], round_number: int) -> list[str]:
    """``items`` in order on even rounds, reversed on odd ones: no contender always goes first."""
    return list(items) if round_number % 2 == 0 else list(reversed(items))


def run_contender(
    emu: EmulatorProcess,
    sample: Sample,
    tmp: str,
    log: Callable[[str], None],
    options: Sequence[str] = (),
    label: str = "",
) -> None:
    """
    One run of ``sample.name`` in a fresh process; its figures appended to ``sample``.

    The emulator's counters are reset before the run and read after it; the output file is
    deleted whatever happens. A failed run is recorded in ``sample.errors`` and logged.
    """
    output = os.path.join(tmp, f"{sample.name}.jsonl")
    emu.reset_stats()
    try:
        result = _child("benchmarks.contenders", [sample.name, output, *options], emu.env(), timeout=1800)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        sample.errors.append(str(err))
        log(f"  {label or sample.name} at {sample.records:,}: FAILED {str(err)[:300]}")
        return
    finally:
        if os.path.exists(output):
            os.remove(output)
    handshakes = emu.handshakes()
    stats = emu.stats()["requests"]
    if result["records"] != sample.records:
        sample.errors.append(f"copied {result['records']} of {sample.records}")
    sample.rates.append(result["records"] / result["seconds"])
    sample.seconds.append(result["seconds"])
    sample.cpu.append(result["cpu_seconds"])
    sample.peaks.append(result["peak_rss_mb"])
    sample.bases.append(result["base_rss_mb"])
    sample.tokens.append(int(stats.get("token", 0)))
    sample.lists.append(int(stats.get("list", 0)))
    sample.handshakes.append(handshakes)
    if result.get("sha256"):
        sample.hashes.append(result["sha256"])
    log(
        f"  {label or sample.name:<13} {sample.server:<22} {sample.records:>8,}: "
        f"{sample.rates[-1]:>7,.0f}/s ({result['seconds']:.1f} s, CPU {result['cpu_seconds']:.1f} s), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB, {sample.tokens[-1]} token + {sample.lists[-1]} list "
        f"requests, {handshakes} handshakes"
    )


def throughput(
    records: int,
    plan: dict[str, dict[str, int]],
    *,
    page_size: int = 100,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Sample]]:
    """
    P1/P2/P3: copy ``records`` referrals to JSONL; ``plan[server][name]`` runs of each contender.

    One emulator serves both servers of :data:`~benchmarks.emulator.SERVERS` (its
    ``close_connections`` switched before each run): same process, same data. Rounds are
    interleaved and alternate their order (servers, and contenders within each), so a change of
    load on the shared machine hits every contender alike. Each run is a fresh process.
    """
    samples = {
        server: {name: Sample(name, records, server) for name in CONTENDER_ORDER if runs.get(name)}
        for server, runs in plan.items()
    }
    rounds = max(count for runs in plan.values() for count in runs.values())
    with EmulatorProcess(records, page_size=page_size) as emu, tempfile.TemporaryDirectory() as tmp:
        for round_number in range(rounds):
            for server in alternate(list(samples), round_number):
                emu.use_server(server)
                for name in alternate(list(samples[server]), round_number):
                    if round_number < plan[server][name]:
                        run_contender(emu, samples[server][name], tmp, log)
    return samples


def in_process(records: int, runs: int, log: Callable[[str], None] = print) -> dict[str, Sample]:
    """
    P7: the floor and the operator at ``records`` on the keep-alive server, ``runs`` each.

    Each child imports first and times only the extraction (wall and the process's CPU time);
    the figure is the ratio of CPU time per referral, the client's own cost whatever the server
    and the machine's other load do. A profile of the operator's path (``profile_path.py`` of the
    engine work) can replace this function: the report reads ``floor`` and ``operator`` samples.
    """
    return throughput(records, {"keep-alive": {"floor": runs, "operator": runs}}, log=log)["keep-alive"]


def expected_pages(records: int, page_size: int) -> int:
    """Pages a complete listing takes."""
    return max(1, math.ceil(records / page_size))


def compile_bytecode() -> None:
    """
    Let every child process cache bytecode, and fill the cache once.

    An installed provider runs from cached bytecode; the shells of this machine set
    ``PYTHONDONTWRITEBYTECODE=1``, which would charge each child with compiling Airflow anew.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    _child("benchmarks.scenarios", ["imports"], dict(os.environ), timeout=300)
    for module in ("benchmarks.contenders", "partner_center_emulator"):
        subprocess.run(  # noqa: S603 - our own interpreter and modules
            [sys.executable, "-c", f"import {module}, msal, dlt, airflow.providers.http.operators.http"],
            check=False,
            capture_output=True,
            timeout=300,
        )


def import_cost(runs: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """P4: seconds to import the operator (and sensor) module after ``airflow.sdk``, fresh processes."""
    operator: list[float] = []
    sensor: list[float] = []
    sdk: list[float] = []
    for _ in range(runs):
        result = _child("benchmarks.scenarios", ["imports"], dict(os.environ), timeout=120)
        sdk.append(result["sdk"])
        operator.append(result["operator"])
        if result["sensor"] is not None:
            sensor.append(result["sensor"])
    log(
        f"  import: airflow.sdk {statistics.median(sdk) * 1000:.0f} ms, operator module "
        f"{statistics.median(operator) * 1000:.1f} ms, sensor module "
        f"{f'{statistics.median(sensor) * 1000:.1f} ms' if sensor else 'n/a (not yet built)'}"
    )
    return {
        "sdk": Stat.of(sdk),
        "operator": Stat.of(operator),
        "sensor": Stat.of(sensor) if len(sensor) == runs else None,
        "both": Stat.of([o + s for o, s in zip(operator, sensor, strict=False)]) if sensor else None,
    }


def _backfill_emulator(page_size: int, per_day: int) -> EmulatorProcess:
    # Created times spread evenly over DAYS + 1 days: about per_day referrals per daily window.
    return EmulatorProcess(per_day * (DAYS + 1), page_size=page_size, period_days=DAYS + 1)


def backfill(
    runs: int,
    *,
    latency: float = 0.1,
    page_size: int = 25,
    per_day: int = 400,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """P5: the daily windows one after another, ``parallelism`` 1 vs 4, ``latency`` s per page."""
    results: dict[int, list[dict[str, Any]]] = {1: [], 4: []}
    tokens: dict[int, list[int]] = {1: [], 4: []}
    with _backfill_emulator(page_size, per_day) as emu, tempfile.TemporaryDirectory() as tmp:
        emu.configure(latency_per_page=latency)
        for _ in range(runs):
            for parallelism in (1, 4):
                emu.reset_stats()
                result = _child("benchmarks.scenarios", ["backfill", str(parallelism), tmp], emu.env(), 900)
                results[parallelism].append(result)
                tokens[parallelism].append(int(emu.stats()["requests"].get("token", 0)))
                log(
                    f"  backfill parallelism={parallelism}: {result['seconds']:.1f} s, "
                    f"{result['records']} referrals, {result['pages']} pages, "
                    f"{tokens[parallelism][-1]} tokens"
                )
    sequential = Stat.of([r["seconds"] for r in results[1]])
    parallel = Stat.of([r["seconds"] for r in results[4]])
    return {
        "sequential": sequential,
        "parallel": parallel,
        "speedup": Stat.of(
            [s["seconds"] / p["seconds"] for s, p in zip(results[1], results[4], strict=True)]
        ),
        "records": results[1][0]["records"],
        "pages": {p: results[p][0]["pages"] for p in (1, 4)},
        "tokens_per_window": {p: statistics.median(tokens[p]) / len(WINDOWS) for p in (1, 4)},
        "latency": latency,
        "page_size": page_size,
    }


def soak(
    *, fault_rate: float = 0.2, page_size: int = 25, per_day: int = 200, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """P6: the daily windows with random faults and token expiry; delivered vs served."""
    with _backfill_emulator(page_size, per_day) as emu, tempfile.TemporaryDirectory() as tmp:
        served: dict[str, set[str]] = {start.strftime("%Y-%m-%d"): set() for start, _ in WINDOWS}
        last = (FIRST_DAY + len(WINDOWS) * (WINDOWS[0][1] - WINDOWS[0][0])).strftime("%Y-%m-%d")
        for referral in emu.referrals():
            day = referral["createdDateTime"][:10]
            if day in served and day < last:
                served[day].add(referral["id"])
        emu.configure(fault_rate=fault_rate, fault_kinds=list(SOAK_FAULTS), fault_seed=11, retry_after=0)
        emu.reset_stats()
        env = emu.env()
        conn = json.loads(env["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
        # Retry fast: the figure is about what arrives, not about waiting out backoffs.
        conn["extra"].update({"backoff_factor": 0.01, "max_retry_wait": 0.2})
        env["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"] = json.dumps(conn)
        started = time.perf_counter()
        result = _child("benchmarks.scenarios", ["soak", tmp], env, timeout=900)
        stats = emu.stats()
    delivered = sum(len(ids) for ids in result["files"].values())
    everywhere = [i for ids in result["files"].values() for i in ids]
    missing = sum(len(served[day] - set(ids)) for day, ids in result["files"].items())
    extra = sum(len(set(ids) - served[day]) for day, ids in result["files"].items())
    figures = {
        "intervals": len(result["files"]),
        "served": sum(len(ids) for ids in served.values()),
        "delivered": delivered,
        "duplicates": len(everywhere) - len(set(everywhere)),
        "missing": missing,
        "unexpected": extra,
        "faults": sum(stats.get("faults", {}).values()),
        "faults_by_kind": stats.get("faults", {}),
        "token_requests": stats["requests"].get("token", 0),
        "expired_tokens": stats.get("faults", {}).get("token_expired", 0),
        "fault_rate": fault_rate,
        "fault_kinds": list(SOAK_FAULTS),
        "api_requests": stats["requests"].get("list", 0),
        "seconds": time.perf_counter() - started,
    }
    log(f"  soak: {figures}")
    return figures
