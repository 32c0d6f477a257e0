"""
Follow-up actions of the example DAGs ``referrals_followup`` and ``referrals_event_driven``.

Part of the provider's public API (``airflow_provider_partner.examples.followup``), so the example
DAGs run from a plain dags folder with the provider installed from its wheel.

Accepting a referral is a JSON Patch guarded by ``If-Match``: if someone changed the referral
since it was read (HTTP 412), the referral is read again and, if it still waits for an answer,
accepted with the fresh ``eTag`` once more; otherwise it is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow_provider_partner.examples.warehouse import WAREHOUSE_CONN_ID, example_warehouse_hook

OUTCOMES = ("accepted", "skipped", "conflict")

ACCEPT = [
    {"op": "replace", "path": "/status", "value": "Active"},
    {"op": "replace", "path": "/substatus", "value": "Accepted"},
]

_FOLLOWUP_COLUMNS = ("id", "outcome", "attempts", "status", "substatus", "recorded_at")

FOLLOWUP_DDL = """
CREATE TABLE IF NOT EXISTS referral_followups (
    id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT,
    substatus TEXT,
    recorded_at TEXT NOT NULL
)
"""


def _waiting(referral: dict[str, Any]) -> bool:
    return referral.get("direction") == "Incoming" and referral.get("status") == "New"


# [START accept]
def accept_referral(hook: Any, referral: dict[str, Any]) -> dict[str, Any]:
    """
    Accept one incoming referral (status Active / substatus Accepted) with optimistic concurrency.

    :param hook: a ``PartnerCenterHook``.
    :param referral: the referral as the sensor returned it (``id``; ``eTag`` and ``status`` if known).
    :return: ``{"id", "outcome", "attempts", "status", "substatus"}``; outcome is ``accepted``,
        ``skipped`` (no longer new: someone else answered it) or ``conflict`` (changed twice meanwhile).
    """
    from airflow_provider_partner.errors import PartnerCenterPreconditionFailed

    referral_id = referral["id"]
    current = referral if referral.get("eTag") and "status" in referral else hook.get_referral(referral_id)
    for attempt in (1, 2):
        if not _waiting(current):
            return _outcome(current, "skipped", attempt)
        try:
            updated = hook.update_referral(
                referral_id, ACCEPT, etag=current["eTag"], return_representation=True
            )
        except PartnerCenterPreconditionFailed:
            # Changed since we read it: look again before deciding (retry once, never loop).
            current = hook.get_referral(referral_id)
            continue
        return _outcome(
            updated or {**current, "status": "Active", "substatus": "Accepted"}, "accepted", attempt
        )
    return _outcome(current, "conflict", 2)


# [END accept]


def _outcome(referral: dict[str, Any], outcome: str, attempts: int) -> dict[str, Any]:
    return {
        "id": referral["id"],
        "outcome": outcome,
        "attempts": attempts,
        "status": referral.get("status"),
        "substatus": referral.get("substatus"),
    }


def record_followups(
    results: list[dict[str, Any]], db_path: str | Path, conn_id: str = WAREHOUSE_CONN_ID
) -> int:
    """
    Record follow-up outcomes in the warehouse (one row per referral), in one transaction.

    The warehouse is the one the example warehouse load writes to: the connection ``conn_id``
    (SQLite or PostgreSQL), or while it is not defined the SQLite file ``db_path``
    (:func:`~airflow_provider_partner.examples.warehouse.example_warehouse_hook`).

    A rerun overwrites a referral's row, except that ``accepted`` is never replaced: accepting
    again finds the referral no longer new and reports ``skipped``, which must not hide that this
    follow-up accepted it.

    :param results: what :func:`accept_referral` returned, one per referral.
    :param db_path: the SQLite warehouse file used without the connection.
    :param conn_id: the warehouse connection's id.
    :return: rows in ``referral_followups`` afterwards.
    """
    from airflow_provider_partner.warehouse import count_rows, transaction

    hook = example_warehouse_hook(conn_id, db_path)
    values = ", ".join([hook.placeholder] * len(_FOLLOWUP_COLUMNS))
    # Fixed column names and the driver's placeholders only: no value is put in the SQL.
    upsert = (
        f"INSERT INTO referral_followups ({', '.join(_FOLLOWUP_COLUMNS)}) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, "
        "attempts = excluded.attempts, status = excluded.status, "
        "substatus = excluded.substatus, recorded_at = excluded.recorded_at "
        "WHERE referral_followups.outcome != 'accepted'"
    )
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    rows = [tuple({**result, "recorded_at": now}[name] for name in _FOLLOWUP_COLUMNS) for result in results]
    with transaction(hook, "referral_followups") as (cursor, _):
        cursor.execute(FOLLOWUP_DDL)
        if rows:
            cursor.executemany(upsert, rows)
        return count_rows(cursor, "referral_followups")


def summarize(results: Iterable[dict[str, Any]], rows: int) -> dict[str, Any]:
    """
    What a follow-up run did, for its XCom and the demo: ids by outcome, and the table's size.

    :param results: what :func:`accept_referral` returned, one per referral.
    :param rows: rows in ``referral_followups`` afterwards.
    """
    by_outcome: dict[str, list[str]] = {outcome: [] for outcome in OUTCOMES}
    for result in results:
        by_outcome.setdefault(result["outcome"], []).append(result["id"])
    return {**by_outcome, "rows": rows}


def referral_ids_from_events(events: Iterable[Any]) -> list[str]:
    """
    The referral ids of the asset events that triggered a run, in order, each once.

    The scheduler may fold several events into one run, and a watcher's event is delivered at
    least once, so ids are deduplicated. Events without the trigger's payload (an event posted by
    hand through the API, say) carry no ids and are ignored.

    :param events: the run's ``triggering_asset_events[asset]``: objects with an ``extra`` dict whose
        ``payload`` is what ``PartnerCenterNewReferralsEventTrigger`` fired (``ids``, ``count``, ...).
    """
    ids: dict[str, None] = {}
    for event in events:
        payload = (getattr(event, "extra", None) or {}).get("payload")
        if isinstance(payload, dict):
            ids.update(dict.fromkeys(str(i) for i in payload.get("ids") or ()))
    return list(ids)
