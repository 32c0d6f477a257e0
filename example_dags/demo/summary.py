"""
The demo's end-of-run report: what Airflow says ran, checked against the data itself.

:func:`summary` renders the warehouse runs as Airflow's REST API recorded them (type, state,
seconds, the load's XCom), the rerun of one cleared day, and the follow-up run's accepted
referrals. It checks them against the ground truth: the warehouse's rows against the ids the
emulator updated in those windows (:func:`window_ids`, from its admin API), each accepted
referral against the emulator's journal (:func:`journal_states`), and the token grants the
emulator counted.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from example_dags.demo.deployment import LocalAirflow
from example_dags.demo.emulator import Emulator
from example_dags.demo.scenario import DAYS, TOKEN_CACHE, WAREHOUSE_CONN_ID, run_day

LOOKBACK = dt.timedelta(hours=2)  # the warehouse load's ``lookback`` (referrals_warehouse_load.py)


def window_ids(emulator: Emulator, runs: list[dict[str, Any]]) -> set[str]:
    """From the emulator's own data: the ids updated in the runs' windows (each with the lookback)."""
    from airflow_provider_partner.instants import sort_key

    referrals = emulator.admin("referrals")  # every referral: 64 MB for 20,000, a few seconds
    ids: set[str] = set()
    for run in runs:
        start = dt.datetime.fromisoformat(run["data_interval_start"]) - LOOKBACK
        low, high = sort_key(start.isoformat()), sort_key(run["data_interval_end"])
        ids |= {r["id"] for r in referrals if low <= sort_key(r["updatedDateTime"]) < high}
    return ids


def journal_states(state_dir: Path) -> dict[str, str]:
    """
    The emulator's journal (``journal.jsonl`` of its state dir): every referral written since
    generation, in order; the last status/substatus of each.
    """
    states: dict[str, str] = {}
    with (state_dir / "journal.jsonl").open(encoding="utf-8") as journal:
        for line in journal:
            if line.strip():
                record = json.loads(line)
                states[record["id"]] = f"{record['status']}/{record['substatus']}"
    return states


def summary(
    airflow: LocalAirflow, loads: dict[str, Any], follow: dict[str, Any], truth: dict[str, Any]
) -> str:
    """The end-of-demo report: Airflow's record of the runs, checked against the data."""
    with closing(sqlite3.connect(loads["db"])) as conn:
        warehouse = {row[0] for row in conn.execute("SELECT id FROM referrals")}
        by_status = conn.execute(
            "SELECT status, COUNT(*) FROM referrals GROUP BY status ORDER BY 2 DESC"
        ).fetchall()
    rule = "=" * 78
    lines = ["", rule, "Partner Center referrals demo: what the scheduler ran (from REST /api/v2)", rule]
    lines.extend(_warehouse_runs(loads))
    expected = truth["window_ids"]
    lines.append(
        f"Warehouse: {len(warehouse)} rows = the {len(expected)} ids the emulator updated in those {DAYS} "
        f"windows (2 h lookback included): {'OK' if warehouse == expected else 'MISMATCH'}"
    )
    lines.append("  by status: " + ", ".join(f"{status} {count}" for status, count in by_status))
    lines.extend(_followup_run(follow, truth["states"]))
    stats = truth["stats"]
    lines.append(
        f"Token cache {TOKEN_CACHE} ({'written by the hook' if truth['cache_written'] else 'MISSING'}): "
        f"{stats['token_grants']['refresh_token']} refresh-token grant(s) in all, for "
        f"{stats['requests'].get('list', 0)} list and {stats['requests'].get('update', 0)} update requests."
    )
    lines.append(f"Files:         {Path(airflow.env['PARTNER_CENTER_DATA_DIR']) / 'referrals'}")
    dialects = sorted({load["dialect"] for load in loads["loads"].values()})
    lines.append(
        f"Warehouse:     {loads['db']}  (connection {WAREHOUSE_CONN_ID}, {'/'.join(dialects)}; "
        "tables referrals, referral_followups)"
    )
    lines.append(f"Airflow home:  {airflow.home}  (component-logs/, task logs in logs/)")
    return "\n".join(lines)


def _warehouse_runs(loads: dict[str, Any]) -> list[str]:
    """The warehouse runs' table, then the backfill's time and what the rerun of one day did."""
    lines = [
        f"{'data interval (UTC)':<22}{'run type':<11}{'state':<9}"
        f"{'seconds':>8}{'fetched':>9}{'written':>9}{'upserted':>10}"
    ]
    for run in loads["runs"]:
        load = loads["loads"][run["dag_run_id"]]
        seconds = (
            dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
        ).total_seconds()
        lines.append(
            f"{run_day(run):<22}{run['run_type']:<11}{run['state']:<9}{seconds:>8.1f}"
            f"{load['fetched']:>9}{load['written']:>9}{load['changed']:>10}"
        )
    rerun = loads["rerun"]
    same = rerun["checksum_before"] == rerun["checksum_after"]
    tries = ", ".join(f"{task} try {n}" for task, n in rerun["tries"].items())
    lines.append(
        f"{DAYS} runs in {loads['seconds']:.1f} s: backfill {loads['backfill_id']} and the scheduled run."
    )
    lines.append(
        f"Cleared {run_day(rerun['run'])}, rerun by the scheduler in {rerun['seconds']:.1f} s ({tries}): "
        "upserted "
        f"{rerun['load']['changed']}, table still {rerun['load']['rows']} rows, SHA-256 "
        f"{'unchanged (idempotent)' if same else 'CHANGED'}."
    )
    return lines


def _followup_run(follow: dict[str, Any], states: dict[str, str]) -> list[str]:
    """The follow-up run: the referrals it accepted, each with its state in the emulator's journal."""
    recorded, released = follow["recorded"], follow["released"]
    lines = [
        f"Follow-up run {follow['run']['dag_run_id']}: {follow['run']['state']}. {len(released)} referrals "
        f"released while its sensor was deferred in the triggerer;"
    ]
    latency = follow["release_to_accept"]
    lines.append(
        f"  accepted {len(recorded['accepted'])} "
        f"({'= the released: OK' if sorted(recorded['accepted']) == sorted(released) else 'MISMATCH'}), "
        f"{follow['updates']} PATCHes at the emulator"
        + (f", first accept task started {latency:.1f} s after the release:" if latency is not None else ":")
    )
    lines.extend(
        f"  {r['id']}  {r['outcome']} (attempts {r['attempts']}); emulator journal: {states.get(r['id'])}"
        for r in follow["results"]
    )
    lines.append(f"  recorded in the warehouse table referral_followups ({recorded['rows']} rows)")
    return lines
