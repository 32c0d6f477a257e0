"""
The soak's probe: a trigger that measures the triggerer from inside, where its event loop runs.

It shares the trigger runner's process and event loop with the provider's triggers. Every
``SAMPLE_SECONDS`` it appends one JSON line to ``$SOAK_PROBE_FILE``:

- ``lag_max_ms``: the longest an ``asyncio.sleep`` of :data:`TICK` overshot in the window: how
  long something held the loop (a pattern compile holds the GIL, so it shows here too);
- ``patterns``: how many patterns the process's secrets masker holds;
- ``compile_ms``: what compiling them once costs now, the price of the next registration
  (measured every :data:`COMPILE_EVERY` windows: it holds the loop too);
- ``gc_max_ms``, ``full_collections``: the garbage collector's longest pause in the window, and
  how many full collections it made (a full collection walks Airflow's whole heap);
- ``rss_mb``: this process's resident memory.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: The loop probe's sleep: each overshoot is a block of the loop.
TICK = 0.02
#: Seconds per line of figures.
SAMPLE_SECONDS = 2.0
#: Windows between two measures of the compile.
COMPILE_EVERY = 5


def rss_mb() -> float:
    """This process's resident memory, MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576


def masker_patterns() -> set[str]:
    """The patterns of this process's secrets masker."""
    from airflow_provider_partner.compat import secrets_masker

    return set(secrets_masker().patterns)


def masker_figures() -> tuple[int, float]:
    """The masker's pattern count, and what compiling them costs now (ms)."""
    patterns = list(masker_patterns())
    collecting = gc.isenabled()
    gc.disable()  # the compile's own cost, not a collection it happens to set off
    started = time.perf_counter()
    try:
        if patterns:
            re.compile("|".join(patterns))
            re.purge()  # the probe's own compile must not be what grows the re module's cache
        return len(patterns), (time.perf_counter() - started) * 1000
    finally:
        if collecting:
            gc.enable()


class _CollectorPauses:
    """The garbage collector's pauses in this process (``gc.callbacks``): the longest per window."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.longest = max(self.longest, time.perf_counter() - self._started)
        self.full += info.get("generation") == 2

    def take(self) -> tuple[float, int]:
        """``(longest pause in ms, full collections)`` since the last call."""
        figures = (self.longest * 1000, self.full)
        self.longest, self.full = 0.0, 0
        return figures


class SoakProbeTrigger(BaseTrigger):
    """Measure the loop and the masker until ``seconds`` have passed, then fire once."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The import path and the run's length."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {"seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Sample until the end, one line per window."""
        loop = asyncio.get_running_loop()
        path = os.environ["SOAK_PROBE_FILE"]
        end = loop.time() + self.seconds
        window = 0
        patterns, compile_ms = masker_figures()
        pauses = _CollectorPauses()
        gc.callbacks.append(pauses)
        while loop.time() < end:
            window_end = loop.time() + SAMPLE_SECONDS
            worst = 0.0
            while loop.time() < window_end:
                before = loop.time()
                await asyncio.sleep(TICK)
                worst = max(worst, loop.time() - before - TICK)
            # Compiling holds the loop too: measured after the window, it never counts as lag.
            window += 1
            if window % COMPILE_EVERY == 0:
                patterns, compile_ms = masker_figures()
            else:
                patterns = len(masker_patterns())
            gc_max_ms, full_collections = pauses.take()
            line = {
                "t": time.time(),
                "lag_max_ms": round(worst * 1000, 2),
                "gc_max_ms": round(gc_max_ms, 2),
                "full_collections": full_collections,
                "patterns": patterns,
                "compile_ms": round(compile_ms, 3),
                "rss_mb": round(rss_mb(), 1),
            }
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        gc.callbacks.remove(pauses)
        yield TriggerEvent({"done": True})  # type: ignore[no-untyped-call]
