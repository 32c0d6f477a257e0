"""The sensor inside real DAG runs (dag.test) while the emulator releases new incoming referrals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState
from dag_loading import load_dag

from airflow_provider_partner.extract.new_referrals import DEFAULT_FIELDS

pytestmark = pytest.mark.dag


def _load(dag_id: str) -> Any:
    return load_dag(dag_id, "test_sensor_new_referrals.py")


def _mapped_results(run: Any) -> list[str]:
    tis = sorted(
        (ti for ti in run.get_task_instances() if ti.task_id == "follow_up"), key=lambda ti: ti.map_index
    )
    assert all(ti.state == TaskInstanceState.SUCCESS for ti in tis)
    return [ti.xcom_pull(task_ids="follow_up", map_indexes=ti.map_index) for ti in tis]


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_each_mode_returns_exactly_the_referrals_that_arrived_and_maps_one_follow_up_each(
    mode: str, emu: Any, airflow_db: Any, arrivals_after_pokes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = _load(f"test_sensor_{mode}")
    before = {r["id"] for r in emu.referrals()}
    # The first poke finds nothing (the run started after every seeded referral); then 3 arrive.
    arrivals = arrivals_after_pokes(emu, 3, after_requests=1)

    run = dag.test()

    assert run.state == "success"
    assert arrivals.done.is_set()
    returned = run.get_task_instance("wait").xcom_pull(task_ids="wait")
    assert [r["id"] for r in returned] == arrivals.ids
    assert not set(arrivals.ids) & before
    assert all(set(r) == set(DEFAULT_FIELDS) for r in returned)
    assert [(r["direction"], r["status"]) for r in returned] == [("Incoming", "New")] * 3
    assert _mapped_results(run) == [f"{i}:New" for i in arrivals.ids]
    logged = capsys.readouterr().out
    assert ("deferring to the triggerer" in logged) is (mode == "deferrable")
    # Reschedules are read from the metadata database: the log line's wording and whether it
    # reaches the captured stdout differ between Airflow releases.
    assert (_reschedules(run.get_task_instance("wait")) > 0) is (mode == "reschedule")


def _reschedules(ti: Any) -> int:
    """How many times the task instance was rescheduled (its rows in ``task_reschedule``)."""
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(session.scalar(select(func.count()).where(TaskReschedule.ti_id == ti.id)) or 0)


def _floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _api(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _expected(emu: Any, start: dt.datetime, end: dt.datetime) -> list[str]:
    low, high = _api(start), _api(end)
    matches = [
        r
        for r in emu.referrals()
        if r["direction"] == "Incoming"
        and r["status"] == "New"
        and r["type"] == "Shared"
        and low <= r["createdDateTime"] < high
    ]
    return [r["id"] for r in sorted(matches, key=lambda r: (r["createdDateTime"], r["id"]))]


def test_consecutive_intervals_report_a_referral_created_on_their_shared_bound_exactly_once(
    emu: Any, airflow_db: Any
) -> None:
    dag = _load("test_sensor_hourly_intervals")
    t2 = _floor_hour(dt.datetime.now(dt.timezone.utc)) - dt.timedelta(hours=1)
    t1, t0 = t2 - dt.timedelta(hours=1), t2 - dt.timedelta(hours=2)
    inside = emu.release_incoming(1, type="Shared", createdDateTime=_api(t0 + dt.timedelta(minutes=10)))
    on_bound = emu.release_incoming(1, type="Shared", createdDateTime=_api(t1))
    last_tick = emu.release_incoming(
        1, type="Shared", createdDateTime=t1.strftime("%Y-%m-%dT%H:59:59.9999999Z")
    )
    first_expected, second_expected = _expected(emu, t0, t1), _expected(emu, t1, t2)
    assert inside[0]["id"] in first_expected
    assert {on_bound[0]["id"], last_tick[0]["id"]} <= set(second_expected)

    reported = []
    for end, expected in ((t1, first_expected), (t2, second_expected)):
        run = dag.test(logical_date=end)
        assert run.state == "success"
        assert (run.data_interval_start, run.data_interval_end) == (end - dt.timedelta(hours=1), end)
        ids = [r["id"] for r in run.get_task_instance("wait").xcom_pull(task_ids="wait")]
        assert ids == expected
        reported += ids
    assert len(reported) == len(set(reported))


def test_an_interval_without_arrivals_is_skipped_with_soft_fail(emu: Any, airflow_db: Any) -> None:
    dag = _load("test_sensor_hourly_intervals")
    now = _floor_hour(dt.datetime.now(dt.timezone.utc))
    end = next(
        now - dt.timedelta(hours=h)
        for h in range(3, 200)
        if not _expected(emu, now - dt.timedelta(hours=h + 1), now - dt.timedelta(hours=h))
    )

    run = dag.test(logical_date=end)

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["wait"] == TaskInstanceState.SKIPPED
    assert states["follow_up"] == TaskInstanceState.SKIPPED
