"""A full-history extract with one retry, which resumes what its first try fetched (dag.test()).

tests/dags/test_resume_state_store.py runs it against the emulator, failing the first try with a
scripted fault. Each run writes every referral to
``$PARTNER_CENTER_DATA_DIR/test_resume/<params.name>.jsonl``. When a try fails and is to be retried,
``on_retry_callback`` records what it left for the retry in
``$PARTNER_CENTER_DATA_DIR/test_resume_tries/<params.name>.json``: the files of its checkpoint
folder, the manifest file if there is one (Airflow 3.1 and 3.2), and the manifest that Airflow
3.3's state store backend holds for the task instance (read from the metadata DB, which a
dag.test() task shares: the failed try's own ``context["task_state_store"]`` no longer resolves
once its retry state is reported, as its task instance id then moves to the history).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_partner.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_partner.extract.checkpoint import FOLDER_SUFFIX, MANIFEST_NAME, STATE_KEY
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

DATA_DIR = Path(os.environ.get("PARTNER_CENTER_DATA_DIR", "/tmp/partner-center-data"))
OUT_DIR = DATA_DIR / "test_resume"
TRIES_DIR = DATA_DIR / "test_resume_tries"


def _stored_manifest(ti: Any) -> Any:
    """The checkpoint manifest Airflow 3.3's state store backend holds for ``ti``'s task instance."""
    from airflow._shared.state import TaskScope
    from airflow.state import get_state_backend

    scope = TaskScope(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index)
    stored = get_state_backend().get(scope, STATE_KEY)
    return None if stored is None else json.loads(stored)


def record_failed_try(context: Any) -> None:
    """What a failed try left for its retry (``on_retry_callback``)."""
    ti = context["ti"]
    name = context["params"]["name"]
    folder = OUT_DIR / f".{name}.jsonl{FOLDER_SUFFIX}"
    manifest_file = folder / MANIFEST_NAME
    record = {
        "try_number": ti.try_number,
        "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
        "manifest_file": json.loads(manifest_file.read_text()) if manifest_file.is_file() else None,
        "state_store": _stored_manifest(ti) if AIRFLOW_V_3_3_PLUS else None,
    }
    TRIES_DIR.mkdir(parents=True, exist_ok=True)
    (TRIES_DIR / f"{name}.json").write_text(json.dumps(record))


with DAG(
    dag_id="test_resume_referrals",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"name": Param("referrals", type="string", description="The output file's name")},
    default_args={"retries": 1, "retry_delay": dt.timedelta(0), "on_retry_callback": record_failed_try},
    tags=["test"],
):
    PartnerCenterReferralsOperator(
        task_id="extract",
        window_field=None,
        output_path=f"file://{OUT_DIR}/" + "{{ params.name }}.jsonl",
    )
