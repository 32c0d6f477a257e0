"""A task process killed while paging leaves no output; the next run cleans up after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from operator_helpers import read_jsonl

from airflow_provider_partner.extract.spool import SPOOL_PREFIX
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

# The operator's execute() in its own process, with the SIGTERM handling of Airflow's task runner
# (SIGTERM calls on_kill; the supervisor sends SIGKILL if the task does not end in time).
SCRIPT = """
import signal, sys
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

op = PartnerCenterReferralsOperator(task_id="killed", window_field=None, output_path=sys.argv[1])
signal.signal(signal.SIGTERM, lambda signum, frame: op.on_kill())
op.execute({"params": {}, "data_interval_start": None, "data_interval_end": None})
"""


def _start(target: Path, spool_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(spool_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, f"file://{target}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _spools(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(SPOOL_PREFIX)]


def _wait_for_pages(emu, pages: int, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while emu.stats()["pages_served"] < pages:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"only {emu.stats()['pages_served']} pages served"
        # Polling the emulator's page counter, the condition this test waits for.
        time.sleep(0.05)


@pytest.fixture
def slow_emu(emu):
    # 200 pages of 10, 0.1 s each: ~20 s for the whole run, so a kill lands mid-paging.
    emu.configure(page_size=10, latency_per_page=0.1)
    return emu


def test_sigkill_mid_paging_leaves_no_file_and_the_next_run_cleans_up(slow_emu, tmp_path, monkeypatch):
    out, spool_dir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    spool_dir.mkdir()
    target = out / "referrals.jsonl"
    process = _start(target, spool_dir)
    try:
        _wait_for_pages(slow_emu, 5, process)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()

    assert list(out.iterdir()) == []
    assert [p.name.rsplit("-", 1)[0] for p in _spools(spool_dir)] == [f"{SPOOL_PREFIX}{process.pid}"]
    # A killed writer would leave its temporary key beside the target; the next run removes it too.
    (out / ".referrals.jsonl.partial-0badc0de").write_bytes(b'{"id": "half')

    slow_emu.configure(latency_per_page=0.0, page_size=100)
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    manifest = PartnerCenterReferralsOperator(
        task_id="next", window_field=None, output_path=f"file://{target}"
    ).execute({"params": {}})

    assert _spools(spool_dir) == []
    assert [p.name for p in out.iterdir()] == ["referrals.jsonl"]
    expected = sorted(slow_emu.referrals(), key=lambda r: (r["updatedDateTime"], r["id"]))
    assert manifest["count"] == len(expected) == 2000
    assert read_jsonl(target) == expected


def test_sigterm_stops_paging_promptly_and_removes_temporary_files(slow_emu, tmp_path):
    out, spool_dir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    spool_dir.mkdir()
    process = _start(out / "referrals.jsonl", spool_dir)
    try:
        _wait_for_pages(slow_emu, 5, process)
        process.send_signal(signal.SIGTERM)
        # on_kill stops at the next page boundary: well before the ~20 s the run needs.
        code = process.wait(timeout=5)
        _, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert code == 1
    assert "PartnerCenterCancelledError: Stopped after" in stderr
    assert "because the task is being killed; no output was written." in stderr
    assert slow_emu.stats()["pages_served"] < 30
    assert list(out.iterdir()) == []
    assert _spools(spool_dir) == []
