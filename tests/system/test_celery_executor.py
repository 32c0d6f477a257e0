"""
Concurrency on CeleryExecutor: 5 warehouse-load runs at once on 2 workers sharing one token cache.

The emulator revokes every used refresh token and issues access tokens of 60 s. As on workers that
share no disk, the token cache and the extracted files are S3 objects (moto, through the ``aws``
connection the URLs name) and the warehouse is PostgreSQL. Asserted: no task failed or was
retried; each run's object holds exactly the emulator's ids of its window, each at its current
``updatedDateTime``; the bucket holds those objects, the token cache and its lease records and
nothing else (no checkpoint left behind); the warehouse holds exactly the runs' ids; no local file
and no Variable stood in for the bucket; no log holds a token of the cache.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from objectstores.servers import ObjectStore
from system_checks import (
    CELERY_OUTPUTS,
    CELERY_TOKEN_CACHE,
    LOOKBACK,
    ids_updated_in,
    parse_time,
    psql_rows,
    record_figure,
)
from system_deployment import Airflow, EmulatorProcess, wait_until

WAREHOUSE = "referrals_warehouse_load"
RUNS = 5
#: What an object store's token cache holds: MSAL's own JSON, not encrypted (the provider encrypts
#: only variable:// caches; docs/connection.md: use the bucket's encryption), section by section
#: (entries in each), with the provider's metadata block.
CACHE_SECTIONS = {
    "AccessToken": 1,
    "Account": 1,
    "AirflowProviderPartner": 2,
    "AppMetadata": 1,
    "IdToken": 1,
    "RefreshToken": 1,
}


def _max_overlap(runs: list[dict[str, Any]]) -> int:
    spans = [(parse_time(r["start_date"]), parse_time(r["end_date"])) for r in runs if r["start_date"]]
    edges = sorted(
        [(s, 1) for s, _ in spans if s] + [(e, -1) for _, e in spans if e], key=lambda x: (x[0], x[1])
    )
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def _cache_sections(store: ObjectStore) -> dict[str, int]:
    """The token cache object's sections and the entries in each."""
    cache = json.loads(store.read(CELERY_TOKEN_CACHE))
    return {name: len(section) for name, section in cache.items()}


def _logs_holding_cached_tokens(home: Path, store: ObjectStore) -> int:
    """
    How many task and component logs hold the cache's access or refresh token: a count, so that
    no token reaches a failure message or the test's locals (``pytest -l``).
    """
    cache = json.loads(store.read(CELERY_TOKEN_CACHE))
    tokens = [e["secret"] for section in ("AccessToken", "RefreshToken") for e in cache[section].values()]
    logs = [*home.glob("logs/dag_id=*/**/*.log"), *home.glob("component-logs/*.log")]
    return sum(any(t in p.read_text(errors="replace") for t in tokens) for p in logs)


@pytest.mark.timeout(900)
def test_five_concurrent_loads_on_two_celery_workers_sharing_one_token_cache(
    celery_airflow: Airflow, emu: EmulatorProcess, celery_s3: ObjectStore, celery_warehouse: str
) -> None:
    airflow, store = celery_airflow, celery_s3
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=14)
    last = first + dt.timedelta(days=RUNS - 1)
    grants_before = dict(emu.stats()["token_grants"])
    emu.admin("configure", {"token_ttl": 60, "revoke_used_refresh_tokens": True})
    began = time.monotonic()
    try:
        airflow.unpause(WAREHOUSE)
        airflow.api(
            "POST",
            "backfills",
            {
                "dag_id": WAREHOUSE,
                "from_date": first.isoformat(),
                "to_date": last.isoformat(),
                "max_active_runs": RUNS,
            },
        )

        def all_done() -> list[dict[str, Any]] | None:
            runs = list(airflow.api("GET", f"dags/{WAREHOUSE}/dagRuns?limit=100")["dag_runs"])
            backfilled = [r for r in runs if r["run_type"] == "backfill"]
            done = len(backfilled) == RUNS and all(r["state"] in ("success", "failed") for r in runs)
            return runs if done else None

        runs = wait_until("the concurrent loads to end", all_done, 600, 1, airflow.diagnostics)
        airflow.unpause(WAREHOUSE, paused=True)
    finally:
        emu.admin("configure", {"token_ttl": 3600, "revoke_used_refresh_tokens": False})
    seconds = time.monotonic() - began
    grants = {k: v - grants_before.get(k, 0) for k, v in emu.stats()["token_grants"].items()}

    referrals = emu.referrals()
    updated = {r["id"]: r["updatedDateTime"] for r in referrals}
    allowed: set[str] = set()
    outputs: list[str] = []
    failures: list[dict[str, Any]] = []
    for run in runs:
        start, end = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
        assert start is not None
        assert end is not None
        window = ids_updated_in(referrals, start - LOOKBACK, end)
        allowed |= window
        tis = airflow.task_instances(WAREHOUSE, run["dag_run_id"])
        failures.extend(
            {
                "run": f"{start:%Y-%m-%d}",
                "task": ti["task_id"],
                "state": ti["state"],
                "tries": ti["try_number"],
            }
            for ti in tis
            if ti["state"] != "success" or ti["try_number"] > 1
        )
        if run["state"] == "success":
            output = f"{CELERY_OUTPUTS}{start:%Y-%m-%d}.jsonl"
            outputs.append(output)
            # The manifest's path keeps the connection id: the load task read the same object.
            load = airflow.xcom(WAREHOUSE, run["dag_run_id"], "load_warehouse")
            assert load["path"] == store.url(output)
            lines = store.read(output).decode("utf-8").splitlines()
            written = {r["id"]: r["updatedDateTime"] for r in map(json.loads, lines)}
            assert len(lines) == len(written), f"an id twice in {output}"
            assert written == {i: updated[i] for i in window}, f"{output} differs from the emulator"
    stored = {row[0] for row in psql_rows(celery_warehouse, "SELECT id FROM referrals")}
    objects = store.listing()
    sections = _cache_sections(store)
    leaked = _logs_holding_cached_tokens(airflow.home, store)
    leases = [key for key in objects if key.startswith(f"{CELERY_TOKEN_CACHE}.lease/")]
    logs = [p.read_text(errors="replace") for p in (airflow.home / "logs").glob("dag_id=*/**/*.log")]
    record_figure(
        "celery_concurrency",
        {
            "runs": len(runs),
            "succeeded": sum(r["state"] == "success" for r in runs),
            "max_runs_at_once": _max_overlap(runs),
            "seconds": round(seconds, 1),
            "token_grants": grants,
            "task_logs_with_AADSTS50173": sum("AADSTS50173" in text for text in logs),
            "failed_or_retried_tasks": failures,
            "s3_objects": len(objects),
            "lease_records": len(leases),
        },
    )
    # With the credential store's lease and the lost-race retry (issue 13), no task fails or needs
    # a retry on a token: before them, 2 of 6 extracts failed with invalid_grant (AADSTS50173).
    assert failures == []
    assert sum(r["state"] == "success" for r in runs) == len(runs)
    assert stored == allowed
    # The bucket: each run's file, the token cache and its lease's records (each holder removes
    # those before its predecessor's: at most 3 stay), and nothing else (no checkpoint left).
    assert sorted(set(objects) - set(leases)) == sorted([*outputs, CELERY_TOKEN_CACHE])
    assert 1 <= len(leases) <= 3
    # One account's tokens: the newest access token and refresh token (each rotation replaces them).
    assert sections == CACHE_SECTIONS
    assert leaked == 0, "a token of the cache is in a log"
    # Nothing stood in for the bucket: no local data folder (outputs, embedded warehouse), no Variable.
    assert not (airflow.home / "data").exists()
    airflow.api("GET", "variables/partner_center_token_cache", ok=(404,))
