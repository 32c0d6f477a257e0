"""
A task process SIGKILLed at about 90% of a 200,000-referral extraction: its retry goes on from the
checkpoint beside the output, fetches at most 15% of the pages again, and writes the same bytes as
a clean, uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.extract.checkpoint import MANIFEST_NAME

# Airflow-independent (the 3.1/3.2 manifest beside the output is what a process without the Task
# SDK uses on every release), and about 40 s: the main combination runs it.
pytestmark = pytest.mark.slow

REFERRALS = 200_000
# The operator's execute() in its own process, as a task runner would call it for one task instance.
SCRIPT = """
import json, sys, types
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

op = PartnerCenterReferralsOperator(
    task_id="extract", window_field=None, select="name,status", output_path=sys.argv[1]
)
ti = types.SimpleNamespace(dag_id="resume_test", run_id="manual__1", task_id="extract", map_index=-1)
manifest = op.execute({"params": {}, "ti": ti, "data_interval_start": None, "data_interval_end": None})
print(json.dumps(manifest))
"""


def _start(target: Path, tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, f"file://{target}"],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(target: Path, tmp: Path) -> tuple[dict[str, Any], float, str]:
    started = time.monotonic()
    process = _start(target, tmp)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1]), time.monotonic() - started, stdout


@pytest.fixture
def big_emu(emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # expire_incoming=False: reading must not change the data between the runs compared.
    emu = emulator_factory(referrals=REFERRALS, seed=11, expire_incoming=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.info["ca_bundle"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", emu.info["airflow_conn"])
    return emu


def test_a_retry_after_sigkill_at_90_percent_refetches_little_and_writes_the_same_bytes(big_emu, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    clean_target = tmp_path / "clean" / "referrals.jsonl"
    clean, clean_seconds, _ = _run(clean_target, tmp)
    clean_pages = big_emu.stats()["pages_served"]
    assert clean["count"] == REFERRALS
    assert clean_pages == clean["pages"] == REFERRALS // 100
    assert sorted(p.name for p in clean_target.parent.iterdir()) == ["referrals.jsonl"]

    target = tmp_path / "out" / "referrals.jsonl"
    checkpoint = target.parent / f".{target.name}.resume"
    big_emu.reset_stats()
    with _start(target, tmp) as process:
        deadline = time.monotonic() + 120
        while big_emu.stats()["pages_served"] < clean_pages * 9 // 10 and time.monotonic() < deadline:
            assert process.poll() is None, "the try ended before it was killed"
            time.sleep(0.02)  # polling the emulator's page counter, the condition the kill waits for
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed_pages = big_emu.stats()["pages_served"]
    assert not target.exists()
    assert (checkpoint / MANIFEST_NAME).is_file()

    big_emu.reset_stats()
    retry, retry_seconds, output = _run(target, tmp)
    retry_pages = big_emu.stats()["pages_served"]
    figures = (
        f"clean run {clean_pages} pages in {clean_seconds:.1f} s; killed try fetched {killed_pages}; "
        f"retry fetched {retry_pages} ({retry_pages / clean_pages:.1%}) in {retry_seconds:.1f} s, "
        f"{retry['resumed_pages']} page(s) from the checkpoint"
    )
    print(figures)
    assert "Resuming from the checkpoint of an earlier try" in output
    assert retry_pages <= clean_pages * 15 // 100, figures
    assert retry["count"] == REFERRALS
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(clean_target.read_bytes()).digest()
    # The checkpoint is gone once the output is published, and so is the killed try's spool.
    assert sorted(p.name for p in target.parent.iterdir()) == ["referrals.jsonl"]
    assert list(tmp.iterdir()) == []
