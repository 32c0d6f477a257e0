"""dag.test() of example_dags/referrals_followup.py while the emulator releases new referrals."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.listeners import hookimpl
from airflow.utils.state import TaskInstanceState
from example_dag_helpers import ids_of, load_dag, release_on_poll

pytestmark = pytest.mark.dag

SENSOR = "wait_for_new_referrals"
ACCEPTED = ("Active", "Accepted")


def _accepts(run: Any) -> list[Any]:
    return sorted(
        (ti for ti in run.get_task_instances() if ti.task_id == "accept_referral"),
        key=lambda ti: ti.map_index,
    )


def _accept_results(run: Any) -> list[dict[str, Any]]:
    tis = _accepts(run)
    assert [ti.state for ti in tis] == [TaskInstanceState.SUCCESS] * len(tis)
    return [ti.xcom_pull(task_ids="accept_referral", map_indexes=ti.map_index) for ti in tis]


def _followup_rows(db: Path) -> dict[str, tuple[str, int, str, str]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, outcome, attempts, status, substatus FROM referral_followups")
        return {row[0]: tuple(row[1:]) for row in rows}
    finally:
        conn.close()


def _list_requests(emulator: Any) -> int:
    return int(emulator.stats()["requests"].get("list", 0))


def test_accepts_exactly_the_referrals_that_arrived_while_it_waited(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path, fast_polls: None
) -> None:
    emu = partner_center_emulator
    dag = load_dag("referrals_followup")
    before = _list_requests(emu)
    # The sensor's first check finds nothing (the run began after every seeded referral) and
    # defers; the referrals arrive while the trigger polls.
    with release_on_poll(emu, 3) as arrivals:
        run = dag.test()

    assert run.state == "success"
    ids = ids_of(arrivals)
    assert len(ids) == 3
    assert _list_requests(emu) - before >= 2  # the check before deferring, then the trigger's
    assert [r["id"] for r in run.get_task_instance(SENSOR).xcom_pull(task_ids=SENSOR)] == ids

    assert [ti.rendered_map_index for ti in _accepts(run)] == ids  # the UI names each mapped task by id
    results = _accept_results(run)
    assert results == [
        {"id": i, "outcome": "accepted", "attempts": 1, "status": "Active", "substatus": "Accepted"}
        for i in ids
    ]
    summary = run.get_task_instance("record_outcomes").xcom_pull(task_ids="record_outcomes")
    assert summary == {"accepted": ids, "skipped": [], "conflict": [], "rows": 3}

    truth = {r["id"]: r for r in emu.referrals()}
    assert [(truth[i]["status"], truth[i]["substatus"]) for i in ids] == [ACCEPTED] * 3
    assert all(truth[i]["acceptedDateTime"] for i in ids)
    assert _followup_rows(data_dir / "warehouse.db") == {i: ("accepted", 1, *ACCEPTED) for i in ids}


class _ChangedAfterTheSensorRead:
    """
    A listener: when the sensor task succeeds, someone else changes referrals in Partner Center.

    The accept tasks then hold eTags that are already stale, as when a colleague edits or
    declines a referral between the sensor's read and our PATCH.
    """

    def __init__(self, change: Callable[[], None]) -> None:
        self.change = change
        self.fired = 0

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        if task_instance.task_id == SENSOR:
            self.change()
            self.fired += 1


@pytest.fixture
def listen() -> Iterator[Callable[[Any], None]]:
    from airflow_provider_partner.compat import get_listener_manager

    manager = get_listener_manager()
    added: list[Any] = []

    def add(listener: Any) -> None:
        manager.add_listener(listener)
        added.append(listener)

    yield add
    for listener in added:
        manager.pm.unregister(listener)


@pytest.mark.airflow_line
def test_a_referral_changed_after_the_sensor_read_it_is_reread_not_crashed_on(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path, fast_polls: None, listen: Any
) -> None:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    emu = partner_center_emulator
    dag = load_dag("referrals_followup")
    arrivals: list[dict[str, Any]] = []

    def change() -> None:
        _, edited, declined = ids_of(arrivals)
        hook = PartnerCenterHook()
        hook.update_referral(edited, [{"op": "replace", "path": "/statusReason", "value": "edited"}])
        hook.update_referral(
            declined,
            [
                {"op": "replace", "path": "/status", "value": "Closed"},
                {"op": "replace", "path": "/substatus", "value": "Declined"},
            ],
        )

    listener = _ChangedAfterTheSensorRead(change)
    listen(listener)
    with release_on_poll(emu, 3) as released:
        arrivals = released  # the listener reads them once the sensor is done
        run = dag.test()

    assert run.state == "success"
    assert listener.fired == 1
    fresh, edited, declined = ids_of(arrivals)
    returned = run.get_task_instance(SENSOR).xcom_pull(task_ids=SENSOR)
    # The sensor handed over the eTags it read; two of them were stale by the time of the PATCH.
    truth = {r["id"]: r for r in emu.referrals()}
    assert [r["id"] for r in returned] == [fresh, edited, declined]
    assert returned[1]["eTag"] != truth[edited]["eTag"]
    assert returned[2]["eTag"] != truth[declined]["eTag"]

    assert _accept_results(run) == [
        {"id": fresh, "outcome": "accepted", "attempts": 1, "status": "Active", "substatus": "Accepted"},
        {"id": edited, "outcome": "accepted", "attempts": 2, "status": "Active", "substatus": "Accepted"},
        {"id": declined, "outcome": "skipped", "attempts": 2, "status": "Closed", "substatus": "Declined"},
    ]
    summary = run.get_task_instance("record_outcomes").xcom_pull(task_ids="record_outcomes")
    assert summary == {"accepted": [fresh, edited], "skipped": [declined], "conflict": [], "rows": 3}
    assert [(truth[i]["status"], truth[i]["substatus"]) for i in (fresh, edited, declined)] == [
        ACCEPTED,
        ACCEPTED,
        ("Closed", "Declined"),
    ]
    assert truth[edited]["statusReason"] == "edited"  # our retry kept the colleague's change
    assert _followup_rows(data_dir / "warehouse.db") == {
        fresh: ("accepted", 1, *ACCEPTED),
        edited: ("accepted", 2, *ACCEPTED),
        declined: ("skipped", 2, "Closed", "Declined"),
    }
