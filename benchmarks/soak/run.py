"""
``make soak``: a long-lived triggerer and a long-lived interpreter through thousands of rotations.

``python -m benchmarks.soak.run [--rotations 2000] [--hook-calls 1000] [--label after] ...``
(``--help`` lists every option). Accelerated time: the emulator's access tokens last
``--token-ttl`` seconds (the hook uses each for half of that), are ``--access-token-bytes`` long
like Entra ID's JWTs, and every used refresh token is revoked, so each renewal rotates both.

1. **One interpreter** (:mod:`.in_process`) makes ``--hook-calls`` hook calls across rotations.
2. **A real triggerer** (:mod:`.deployment`) runs ``--connections`` event triggers and as many
   deferred sensors, each on its own connection, plus the probe trigger (:mod:`.probe`), until
   the emulator has granted ``--rotations`` refreshes.
3. Every log line of both (task, trigger and component logs, at DEBUG) is scanned for every
   token the emulator issued.

The figures go to ``.venv-bench/soak-<label>.json``; :mod:`.report` plots them and writes the
section of ``docs/performance.md``. ``--provider-path`` runs the same soak on another checkout of
the provider (``git worktree add``): how the "before" figures were taken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.soak import deployment, report
from benchmarks.soak.scan import scan_for_tokens

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".venv-bench"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.run", description=__doc__)
    add = parser.add_argument
    add("--rotations", type=int, default=2000, help="refresh grants the triggerer lives through (2000)")
    add("--hook-calls", type=int, default=1000, help="hook calls of the long-lived interpreter (1000)")
    add("--pace", type=float, default=0.15, help="seconds per hook call in the interpreter (0.15)")
    add("--connections", type=int, default=4, help="connections, each an event trigger and a sensor (4)")
    add("--poke-interval", type=float, default=0.2, help="seconds between a trigger's checks (0.2)")
    add("--token-ttl", type=int, default=1, help="access token lifetime, seconds (1)")
    add("--access-token-bytes", type=int, default=1500, help="access token length, like a JWT (1500)")
    add("--max-minutes", type=float, default=30, help="stop the triggerer part after this long (30)")
    add("--label", default="after", help="name of this run's figures (after)")
    add("--provider-path", default=None, help="a checkout of the provider to soak instead of this one")
    add("--skip", default="", help="comma-separated parts to skip: in_process, triggerer")
    add("--no-docs", action="store_true", help="do not write docs/performance.md and the plot")
    add("--log-level", default="DEBUG", help="Airflow's logging level (DEBUG: the scan sees every line)")
    add("--keep-work", action="store_true", help="keep the run's folder (logs, stores) and print it")
    return parser


def _pythonpath(provider: str | None, work: Path) -> str:
    """This checkout's root, behind the other checkout's provider package when one is given."""
    if not provider:
        return str(ROOT)
    # Only the package: the other checkout's benchmarks/ must not shadow this soak.
    shadow = work / "provider"
    shadow.mkdir(exist_ok=True)
    link = shadow / "airflow_provider_partner"
    if not link.exists():
        link.symlink_to(Path(provider).resolve() / "airflow_provider_partner")
    return os.pathsep.join([str(shadow), str(ROOT)])


def _start_emulator(args: argparse.Namespace) -> Any:
    from partner_center_emulator import Emulator

    emulator = Emulator(
        referrals=300, token_ttl=args.token_ttl, access_token_bytes=args.access_token_bytes
    ).start()
    emulator.configure(revoke_used_refresh_tokens=True)
    return emulator


def in_process(args: argparse.Namespace, emulator: Any, work: Path) -> list[dict[str, Any]]:
    """Run the long-lived interpreter to its end; its lines of figures."""
    out = work / "in_process.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(work / "in-process-home"),
        AIRFLOW_CONN_SOAK_INPROC=deployment.connection(emulator, "soak_inproc", work),
        REQUESTS_CA_BUNDLE=emulator.info["ca_bundle"],
        PYTHONPATH=_pythonpath(args.provider_path, work),
    )
    command = [sys.executable, "-m", "benchmarks.soak.in_process", "--calls", str(args.hook_calls)]
    command += ["--pace", str(args.pace), "--out", str(out)]
    with (work / "in_process.log").open("w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=work)  # noqa: S603
    return [json.loads(line) for line in out.read_text().splitlines()]


def triggerer(args: argparse.Namespace, emulator: Any, work: Path) -> dict[str, Any]:
    """Run the deployment until the rotations are reached; what was sampled and logged."""
    seconds = args.max_minutes * 60
    env = {
        "SOAK_CONNECTIONS": str(args.connections),
        "SOAK_POKE_INTERVAL": str(args.poke_interval),
        "SOAK_SECONDS": str(seconds + 600),
        "SOAK_PROBE_FILE": str(work / "probe.jsonl"),
        "PYTHONPATH": _pythonpath(args.provider_path, work),
        "REQUESTS_CA_BUNDLE": emulator.info["ca_bundle"],
        "AIRFLOW__LOGGING__LOGGING_LEVEL": args.log_level,
        # The watchdog sleeps 0.1 s and warns when that took longer than this: a block of 0.1 s.
        "AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD": "0.2",
        # Active from the first parse: the watchers of a paused DAG are registered only when
        # its file is parsed again, which this deployment does every 10 minutes.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }
    for index in range(args.connections):
        conn_id = f"soak_{index}"
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = deployment.connection(emulator, conn_id, work)
    airflow = deployment.start_airflow(work / "airflow", env, args.connections)
    samples: list[dict[str, Any]] = []
    try:
        deployment.wait_deferred(airflow, args.connections)
        emulator.reset_stats()
        sampler = deployment.TriggererSampler(airflow)
        started = time.monotonic()

        def on_sample(grants: int) -> None:
            stats = emulator.stats()
            samples.append(
                {
                    "t": time.time(),
                    "s": time.monotonic() - started,
                    "grants": grants,
                    "polls": stats["pages_served"],
                }
                | sampler.sample()
            )

        on_sample(0)
        deployment.wait_rotations(emulator, args.rotations, started + seconds, on_sample)
        blocked = deployment.blocked_warnings(airflow)
    finally:
        airflow.stop()
    probe_file = work / "probe.jsonl"
    probe = [json.loads(line) for line in probe_file.read_text().splitlines()] if probe_file.is_file() else []
    return {"samples": samples, "probe": probe, "blocked_warnings": blocked}


def main(argv: list[str] | None = None) -> int:
    """Run the soak; write its figures (and, unless ``--no-docs``, the plot and the docs)."""
    args = _parser().parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="partner-soak-"))
    emulator = _start_emulator(args)
    result: dict[str, Any] = {"label": args.label, "args": vars(args), "started": time.time()}
    try:
        if "in_process" not in skip:
            print(f"soak: {args.hook_calls} hook calls in one interpreter ...", flush=True)
            result["in_process"] = in_process(args, emulator, work)
            result["in_process_grants"] = emulator.stats()["token_grants"]["refresh_token"]
        if "triggerer" not in skip:
            print(f"soak: a triggerer through {args.rotations} rotations ...", flush=True)
            result["triggerer"] = triggerer(args, emulator, work)
        result["secrets"] = scan_for_tokens(work, emulator.issued_tokens())
    finally:
        emulator.stop()
    result["seconds"] = time.time() - result["started"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"soak-{args.label}.json").write_text(json.dumps(result, indent=1))
    print(report.summary(result))
    if not args.no_docs:
        report.write(RESULTS)
    if args.keep_work:
        print(f"soak: the run's folder is {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not result["secrets"]["found"] else 1


if __name__ == "__main__":
    sys.exit(main())
