"""Plain helpers of the lineage tests: the events a block of code emitted, DAGs from the DAGs folder."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dag_loading import load_dag


@contextmanager
def emitted(events_file: Path) -> Iterator[list[dict[str, Any]]]:
    """Collect the OpenLineage events appended to ``events_file`` inside the block (filled on exit)."""
    offset = events_file.stat().st_size if events_file.exists() else 0
    events: list[dict[str, Any]] = []
    yield events
    with events_file.open("rb") as source:
        source.seek(offset)
        events.extend(json.loads(line) for line in source.read().splitlines() if line.strip())


def task_events(events: list[dict[str, Any]], job_name: str) -> dict[str, dict[str, Any]]:
    """The events of one task's job, by event type (``START``, ``COMPLETE``, ``FAIL``)."""
    mine = [e for e in events if e["job"]["name"] == job_name]
    by_type = {e["eventType"]: e for e in mine}
    assert len(by_type) == len(mine), f"more than one event of a type for {job_name}"
    return by_type


def without_producer(value: Any) -> Any:
    """``value`` with every facet's ``_producer`` (the OpenLineage provider's version) removed."""
    if isinstance(value, dict):
        return {k: without_producer(v) for k, v in value.items() if k != "_producer"}
    if isinstance(value, list):
        return [without_producer(v) for v in value]
    return value


@contextmanager
def data_folder(name: str) -> Iterator[Path]:
    """A folder under ``$PARTNER_CENTER_DATA_DIR`` that is empty in the block and removed after it."""
    folder = Path(os.environ["PARTNER_CENTER_DATA_DIR"]) / name
    shutil.rmtree(folder, ignore_errors=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dag_from_folder(dag_id: str, dag_file: str = "test_lineage_referrals") -> Any:
    """The DAG ``dag_id`` of ``<DAGs folder>/<dag_file>.py``."""
    return load_dag(dag_id, f"{dag_file}.py")
