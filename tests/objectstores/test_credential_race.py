"""
Eight processes, one token cache on an object store, strictly rotating refresh tokens.

The emulator revokes every refresh token once used and issues 4-second access tokens; eight
worker processes read Partner Center back to back for 20 s, sharing one credential store on the
store's server. Every refresh happens under the store's lease, so exactly one process redeems
each refresh token: the run must end with 0 failures, and the refresh-token grants within twice
the number of access-token lifetimes the run spans (docs/connection.md, "Which store").
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORKER = Path(__file__).parent / "workers" / "race_worker.py"
PROCESSES = 8
TOKEN_SECONDS = 4
READ_SECONDS = 20.0


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    # Airflow may log to stdout before the worker's line: every line up to READY is skipped.
    assert proc.stdout is not None
    for line in proc.stdout:
        if line == "READY\n":
            return
    raise AssertionError(f"a worker ended before it was ready (exit {proc.wait()})")


def _results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=READ_SECONDS + 240)
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert lines, f"a worker ended without a result (exit {proc.returncode})"
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    return results


def test_eight_processes_share_one_cache_under_strict_rotation(
    partner_center_emulator: Any, connect: Any, object_store: Any
) -> None:
    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=TOKEN_SECONDS)
    location = object_store.url("race/credentials.json")
    conn_id = connect(emu, f"pc_race_{object_store.scheme}", credential_store=location)
    env = {**os.environ, **object_store.env}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), conn_id, str(READ_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for proc in procs:
            _wait_ready(proc)
        before = emu.stats()["token_grants"].get("refresh_token", 0)
        started = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = _results(procs)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    grants = emu.stats()["token_grants"].get("refresh_token", 0) - before
    lifetimes = math.ceil(elapsed / TOKEN_SECONDS)
    failures = [failure for result in results for failure in result["failures"]]
    reads = sum(result["reads"] for result in results)
    slowest = max(result["slowest"] for result in results)
    guarantees = sorted({kind for result in results for kind in result["leases"]})
    # The figures of the closing note and of docs/connection.md's table.
    print(
        f"{object_store.scheme}: {PROCESSES} processes, {elapsed:.1f} s, {reads} reads, "
        f"slowest read {slowest:.2f} s, {len(failures)} failures, {grants} grants, "
        f"{lifetimes} token lifetimes, leases {guarantees}"
    )
    assert failures == []
    assert guarantees == ["exclusive"]
    assert reads >= PROCESSES  # every process read, at least once
    assert 1 <= grants <= 2 * lifetimes
