"""
The soak's long-lived interpreter: one process making hook calls across token rotations.

``python -m benchmarks.soak.in_process --calls N --pace S --out FILE`` (started by
:mod:`benchmarks.soak.run` with ``AIRFLOW_CONN_SOAK_INPROC`` set): calls alternate between a
first page of the list and one referral, each paced to ``S`` seconds so the emulator's
short-lived tokens rotate under them, as in ``airflow standalone``, a script or a notebook. Every
``--every`` calls it appends a JSON line: calls so far, RSS, CPU seconds, the masker's pattern
count and the cost of compiling them, and the slowest call of the window.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

from benchmarks.soak.probe import masker_figures, rss_mb


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(calls: int, pace: float, every: int, out: str) -> None:
    """Make ``calls`` hook calls, ``pace`` seconds apart; a line of figures every ``every``."""
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    hook = PartnerCenterHook("soak_inproc")
    referral_id = next(hook.iter_referrals(top=1))["id"]
    window_worst = 0.0
    cpu_before = _cpu()
    with open(out, "a", encoding="utf-8") as sink:
        for number in range(1, calls + 1):
            started = time.perf_counter()
            if number % 2:
                next(iter(hook.iter_pages(top=10)))
            else:
                hook.get_referral(referral_id)
            took = time.perf_counter() - started
            window_worst = max(window_worst, took)
            if number % every == 0 or number == calls:
                patterns, compile_ms = masker_figures()
                cpu = _cpu()
                line: dict[str, Any] = {
                    "t": time.time(),
                    "calls": number,
                    "rss_mb": round(rss_mb(), 1),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "cpu_ms_per_call": round((cpu - cpu_before) * 1000 / every, 3),
                    "worst_call_ms": round(window_worst * 1000, 1),
                    "patterns": patterns,
                    "compile_ms": round(compile_ms, 3),
                }
                sink.write(json.dumps(line) + "\n")
                sink.flush()
                window_worst, cpu_before = 0.0, cpu
            time.sleep(max(0.0, pace - took))


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.in_process")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--pace", type=float, required=True)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    run(args.calls, args.pace, args.every, args.out)


if __name__ == "__main__":
    main()
