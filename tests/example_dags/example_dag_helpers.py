"""Shared helpers of the example-DAG tests: load a DAG, compute expectations, release arrivals."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dag_loading


def load_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` parsed from its (symlinked) file in the test DAGs folder."""
    return dag_loading.load_dag(dag_id)


def iso(moment: dt.datetime) -> str:
    """A UTC instant in the API's fixed 7-digit text format (text order == time order)."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def midnight_today() -> dt.datetime:
    """Today's 00:00 UTC."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def updated_in(referrals: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> dict[str, str]:
    """``{id: updatedDateTime}`` of the referrals updated in ``[start, end)``."""
    low, high = iso(start), iso(end)
    return {r["id"]: r["updatedDateTime"] for r in referrals if low <= r["updatedDateTime"] < high}


@contextmanager
def release_on_poll(emulator: Any, n: int, after: int = 1) -> Iterator[list[dict[str, Any]]]:
    """
    Make ``n`` new incoming referrals arrive while something polls for them; yields them (once out).

    A thread watches the emulator's counter of answered list requests (a readiness condition, not
    a sleep) and releases the referrals once ``after`` more have been answered: the waiter has
    looked and found nothing. The yielded list is filled then, oldest first.
    """
    released: list[dict[str, Any]] = []
    stop = threading.Event()

    def polls() -> int:
        return int(emulator.stats()["requests"].get("list", 0))

    target = polls() + after

    def watch() -> None:
        while not stop.wait(0.01):
            if polls() >= target:
                released.extend(emulator.release_incoming(n))
                return

    thread = threading.Thread(target=watch, name="release-on-poll", daemon=True)
    thread.start()
    try:
        yield released
    finally:
        stop.set()
        thread.join(timeout=10)


def ids_of(referrals: list[dict[str, Any]]) -> list[str]:
    """The referrals' ids, in order."""
    return [referral["id"] for referral in referrals]
