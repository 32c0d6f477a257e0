"""
Child processes of the import (P4), backfill (P5) and soak (P6) figures; each prints one JSON line.

- ``python -m benchmarks.scenarios imports``: seconds to import ``airflow.sdk``, then the operator
  module, then the sensor module (``null`` when it does not exist yet).
- ``python -m benchmarks.scenarios backfill PARALLELISM OUTDIR``: the operator over :data:`WINDOWS`
  one after another (``createdDateTime`` windows, ``parallelism`` slices each); total seconds.
- ``python -m benchmarks.scenarios soak OUTDIR``: the same windows while the emulator injects faults,
  and the first request of each window meets an expired token; the referral ids of each file.

The emulator's info comes in ``BENCH_EMULATOR_INFO``, its connection in the usual variable.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DAYS", "FIRST_DAY", "SENSOR_MODULE", "WINDOWS"]

#: First daily window of the backfill and the soak (the emulator's data starts the day before).
FIRST_DAY = dt.datetime(2026, 10, 21, tzinfo=dt.timezone.utc)
DAYS = 30
#: ``[start, end)`` of each daily window.
WINDOWS = [(FIRST_DAY + dt.timedelta(days=d), FIRST_DAY + dt.timedelta(days=d + 1)) for d in range(DAYS)]
OPERATOR_MODULE = "airflow_provider_partner.operators.referrals"
SENSOR_MODULE = "airflow_provider_partner.sensors.referrals"


def _print(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")


def imports() -> dict[str, Any]:
    """Import airflow.sdk, the operator module, the sensor module; seconds for each step."""
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401 - the baseline every DAG file pays

    sdk = time.perf_counter()
    importlib.import_module(OPERATOR_MODULE)
    operator = time.perf_counter()
    sensor: float | None = None
    if importlib.util.find_spec(SENSOR_MODULE) is not None:
        importlib.import_module(SENSOR_MODULE)
        sensor = time.perf_counter() - operator
    return {"sdk": sdk - started, "operator": operator - sdk, "sensor": sensor}


def _admin(action: str, body: Any = None) -> None:
    import requests

    info = json.loads(os.environ["BENCH_EMULATOR_INFO"])
    response = requests.post(
        f"{info['admin_url']}/{action}",
        json=body or {},
        headers={"Authorization": f"Bearer {info['admin_token']}"},
        timeout=30,
        verify=info["ca_bundle"],
    )
    response.raise_for_status()


def _script_expiry() -> None:
    _admin("script_faults", ["token_expired"])


def _forked(task: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """
    Run ``task`` in a forked child and return its result (with its ``seconds``).

    Airflow runs every task instance in a process of its own: a fork of this fully imported
    process is that, minus the interpreter start and imports (P4's figure). It also keeps
    per-process state, such as the log masker's growing list of secrets, from piling up over
    windows as it never would in Airflow.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, and leave without the parent's cleanup
        os.close(reader)
        code = 0
        try:
            started = time.perf_counter()
            result = task()
            result["seconds"] = time.perf_counter() - started
            payload = json.dumps(result).encode()
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
            payload = json.dumps({"error": f"{type(err).__name__}: {err}"}).encode()
            code = 1
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as source:
        result: dict[str, Any] = json.loads(source.read() or b'{"error": "no result"}')
    os.waitpid(pid, 0)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _run_windows(
    outdir: str, parallelism: int, prefix: str, before: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """One operator run per window, each in its own (forked) process; their manifests."""
    from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

    manifests = []
    for start, end in WINDOWS:
        if before is not None:
            before()
        operator = PartnerCenterReferralsOperator(
            task_id=f"{prefix}_{start:%Y%m%d}",
            window_field="createdDateTime",
            window_start=start,
            window_end=end,
            parallelism=parallelism,
            output_path=f"file://{outdir}/{prefix}_{start:%Y%m%d}.jsonl",
        )
        manifests.append(_forked(lambda operator=operator: operator.execute({"params": {}})))  # type: ignore[misc]
    return manifests


def backfill(parallelism: int, outdir: str) -> dict[str, Any]:
    """Every window, one after another, each with ``parallelism`` slices; the sum of their run times."""
    _warm_up(outdir)
    manifests = _run_windows(outdir, parallelism, f"p{parallelism}")
    return {
        "seconds": sum(m["seconds"] for m in manifests),
        "windows": len(manifests),
        "records": sum(m["count"] for m in manifests),
        "pages": sum(m["pages"] for m in manifests),
    }


def _warm_up(outdir: str) -> None:
    # One run in this process first: what the operator imports and initialises on first use is
    # then inherited by every forked run, as a task process has it from the task runner.
    from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

    start, end = WINDOWS[0]
    PartnerCenterReferralsOperator(
        task_id="warm_up",
        window_field="createdDateTime",
        window_start=start,
        window_end=end,
        output_path=f"file://{outdir}/warm_up.jsonl",
        top=10,
    ).execute({"params": {}})  # type: ignore[arg-type]
    _admin("reset_stats")  # the warm-up's requests are not the figure's


def soak(outdir: str) -> dict[str, Any]:
    """The windows under the emulator's faults, each starting with an expired token; the files' ids."""
    _warm_up(outdir)
    manifests = _run_windows(outdir, 1, "soak", before=_script_expiry)
    seconds = sum(m["seconds"] for m in manifests)
    files: dict[str, list[str]] = {}
    for (start, _), manifest in zip(WINDOWS, manifests, strict=True):
        path = manifest["path"].removeprefix("file://")
        with open(path, "rb") as lines:
            files[start.strftime("%Y-%m-%d")] = [json.loads(line)["id"] for line in lines]
    return {"seconds": seconds, "files": files}


def main(argv: list[str]) -> int:
    """Run one scenario and print its JSON line."""
    command, *args = argv
    if command == "imports":
        _print(imports())
    elif command == "backfill":
        _print(backfill(int(args[0]), args[1]))
    elif command == "soak":
        _print(soak(args[0]))
    else:
        raise SystemExit(f"unknown scenario {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
