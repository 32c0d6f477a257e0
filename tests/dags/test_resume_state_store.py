"""
A real retry resumes the extraction its first try left (dag.test() of tests/dags/test_resume_referrals.py).

The first try fails after part of the pages (the emulator answers one list request with a truncated
page, which the hook does not retry); ``retries=1`` and no retry delay, so the same dag.test() runs
the second try at once. On Airflow 3.3 the checkpoint's manifest is in Airflow's own task state
store (the metadata DB, through the execution API), on 3.1 and 3.2 in ``manifest.json`` beside
the chunks.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dag_loading import load_dag

from airflow_provider_partner.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_partner.extract.checkpoint import MANIFEST_NAME

# A DAG run per Airflow line (the state store differs between them, not between Pythons).
pytestmark = [pytest.mark.dag, pytest.mark.airflow_line]

DAG_ID = "test_resume_referrals"
REFERRALS = 2000
PAGES = 200  # 10 a page
# The first try's list requests 1 to 125 are served whole; request 126 gets a truncated page.
FAILED_AT = 125


@pytest.fixture
def data_dirs() -> Iterator[tuple[Path, Path]]:
    """The DAG's output folder and the folder its retry callback writes to, empty."""
    data = Path(os.environ["PARTNER_CENTER_DATA_DIR"])
    folders = (data / "test_resume", data / "test_resume_tries")
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def emu(partner_center_emulator: Any) -> Any:
    # The data must not change between the clean run and the resumed one (expire_incoming=False);
    # "slow" faults with no delay are served as usual: they count the requests before the real one.
    partner_center_emulator.configure(page_size=10, expire_incoming=False, slow_seconds=0)
    return partner_center_emulator


def _state_store_rows(run: Any) -> list[tuple[str, str]]:
    """``(task_id, key)`` of every task state store row of ``run`` (Airflow 3.3's metadata DB)."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(TaskStateStoreModel.task_id, TaskStateStoreModel.key)
        return [tuple(row) for row in session.execute(query.where(TaskStateStoreModel.run_id == run.run_id))]


def test_the_retry_resumes_from_the_first_tries_checkpoint(emu, airflow_db, data_dirs, caplog, capsys):
    out_dir, tries_dir = data_dirs
    dag = load_dag(DAG_ID)

    clean = dag.test(run_conf={"name": "clean"})

    assert clean.state == "success"
    assert emu.stats()["pages_served"] == PAGES
    assert "resumed_pages" not in clean.get_task_instance("extract").xcom_pull(task_ids="extract")
    assert not (tries_dir / "clean.json").exists()

    emu.reset_stats()
    emu.script_faults(["slow"] * FAILED_AT + ["truncated"])
    run = dag.test(run_conf={"name": "resumed"})

    assert run.state == "success"
    ti = run.get_task_instance("extract")
    assert ti.try_number == 2
    stats = emu.stats()
    assert stats["faults"] == {"slow": FAILED_AT, "truncated": 1}

    # What the first try left: chunk files, and the manifest naming them in the store (3.3) or beside them.
    first = json.loads((tries_dir / "resumed.json").read_text())
    assert first["try_number"] == 1
    stored, beside = first["state_store"], first["manifest_file"]
    assert (stored is not None, beside is not None) == (AIRFLOW_V_3_3_PLUS, not AIRFLOW_V_3_3_PLUS), first
    manifest = stored if AIRFLOW_V_3_3_PLUS else beside
    chunks = [f"0-{n}.jsonl" for n in range(len(manifest["chunks"][0]))]
    assert first["files"] == sorted(chunks if AIRFLOW_V_3_3_PLUS else [*chunks, MANIFEST_NAME])
    assert manifest["identity"] == {
        "dag_id": DAG_ID,
        "run_id": run.run_id,
        "task_id": "extract",
        "map_index": -1,
    }
    checkpointed = manifest["cursor"][0]["pages"]
    assert 0 < checkpointed <= FAILED_AT  # a checkpoint every 50 pages

    # The retry took those pages from the checkpoint and fetched only the others.
    retry_pages = stats["pages_served"] - FAILED_AT
    result = ti.xcom_pull(task_ids="extract")
    logged = caplog.text + capsys.readouterr().out  # where a task's log line goes differs between releases
    print(
        f"first try: {FAILED_AT} pages fetched, {checkpointed} checkpointed ({len(chunks)} chunks, "
        f"manifest {len(json.dumps(manifest))} bytes); retry: {retry_pages} pages fetched; "
        f"{stats['pages_served']} served in all"
    )
    assert retry_pages == PAGES - checkpointed
    assert stats["requests"]["list"] == FAILED_AT + 1 + retry_pages
    assert result["resumed_pages"] == checkpointed
    assert (result["pages"], result["count"]) == (PAGES, REFERRALS)
    where = "task state store" if AIRFLOW_V_3_3_PLUS else MANIFEST_NAME
    assert (
        f"Resuming from the checkpoint of an earlier try (CheckpointStore(file://{out_dir}/.resumed.jsonl"
        f".resume, manifest in the {where})): {checkpointed} page(s)"
    ) in logged

    # The same bytes as the clean run; the checkpoint is gone, folder and store entry.
    assert (out_dir / "resumed.jsonl").read_bytes() == (out_dir / "clean.jsonl").read_bytes()
    assert sorted(p.name for p in out_dir.iterdir()) == ["clean.jsonl", "resumed.jsonl"]
    if AIRFLOW_V_3_3_PLUS:
        assert _state_store_rows(run) == []
        assert _state_store_rows(clean) == []
