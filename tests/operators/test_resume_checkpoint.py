"""
Resuming an extraction from the checkpoint of an earlier, interrupted try (in process).

A try is interrupted by an exception raised after a number of spooled pages, which leaves what a
killed try leaves: the checkpoints written so far (every 10 pages here) and no output.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.extract import checkpointer
from airflow_provider_partner.extract.checkpoint import MANIFEST_NAME, STATE_KEY
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

PAGES = 200  # 2000 referrals, 10 a page


class KilledError(Exception):
    """Stands for the kill."""


class FakeStateStore:
    """``context["task_state_store"]`` of Airflow 3.3, kept in a dict (JSON round trip, as stored)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture
def paged_emu(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    emu.configure(page_size=10, expire_incoming=False)
    monkeypatch.setattr(checkpointer, "CHECKPOINT_PAGES", 10)
    return emu


def _context(run_id: str = "manual__1", store: FakeStateStore | None = None) -> dict[str, Any]:
    ti = types.SimpleNamespace(dag_id="resume", run_id=run_id, task_id="extract", map_index=-1)
    context: dict[str, Any] = {"params": {}, "ti": ti}
    if store is not None:
        context["task_state_store"] = store
    return context


def _operator(target: Path, **kwargs: Any) -> PartnerCenterReferralsOperator:
    kwargs.setdefault("window_field", None)
    return PartnerCenterReferralsOperator(task_id="extract", output_path=f"file://{target}", **kwargs)


def _interrupted(
    monkeypatch: pytest.MonkeyPatch, op: PartnerCenterReferralsOperator, context: Any, pages: int
) -> None:
    """Run ``op`` until ``pages`` pages are spooled, then raise as a kill would stop it."""
    original = checkpointer.Checkpointer.on_page
    seen = [0]

    def on_page(self: Any, index: int, page: Any) -> None:
        original(self, index, page)
        seen[0] += 1
        if seen[0] >= pages:
            raise KilledError

    with monkeypatch.context() as patch:
        patch.setattr(checkpointer.Checkpointer, "on_page", on_page)
        with pytest.raises(KilledError):
            op.execute(context)


def _restart_count(emu: Any) -> None:
    """Zero the emulator's counters once the interrupted try's requests (one sent ahead) are answered."""
    for thread in threading.enumerate():
        if thread.name.startswith(("partner-center-next-page", "partner-referrals-slice-")):
            thread.join(timeout=10)
    deadline = time.monotonic() + 10
    while emu.stats()["requests"].get("list", 0) != emu.stats()["pages_served"]:
        assert time.monotonic() < deadline, emu.stats()
        time.sleep(0.01)  # polling the emulator's counters, the condition waited for
    emu.reset_stats()


def _clean_bytes(tmp_path: Path, **kwargs: Any) -> bytes:
    target = tmp_path / "clean" / "referrals.jsonl"
    _operator(target, resume=False, **kwargs).execute(_context())
    return target.read_bytes()


def _folder(target: Path) -> Path:
    return target.parent / f".{target.name}.resume"


def _manifest(target: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((_folder(target) / MANIFEST_NAME).read_text())
    return loaded


def test_a_successful_run_removes_its_checkpoint(paged_emu, tmp_path):
    target = tmp_path / "out" / "referrals.jsonl"
    result = _operator(target).execute(_context())

    assert result["pages"] == PAGES
    assert "resumed_pages" not in result
    assert [p.name for p in target.parent.iterdir()] == ["referrals.jsonl"]


def test_the_retry_goes_on_from_the_state_store_manifest(paged_emu, tmp_path, monkeypatch):
    target = tmp_path / "out" / "referrals.jsonl"
    store = FakeStateStore()
    _interrupted(monkeypatch, _operator(target), _context(store=store), pages=125)

    saved = store.get(STATE_KEY)
    checkpointed = saved["cursor"][0]["pages"]
    # A checkpoint every 10 pages (one is skipped while the one before is still being written).
    assert 110 <= checkpointed <= 125
    assert not (_folder(target) / MANIFEST_NAME).exists()  # Airflow 3.3: the manifest is in the store
    chunks = len(saved["chunks"][0])
    assert sorted(p.name for p in _folder(target).iterdir()) == sorted(f"0-{n}.jsonl" for n in range(chunks))

    _restart_count(paged_emu)
    result = _operator(target).execute(_context(store=store))

    assert paged_emu.stats()["pages_served"] == PAGES - checkpointed
    assert result["resumed_pages"] == checkpointed
    assert result["pages"] == PAGES
    assert result["duplicates_removed"] == 0
    assert target.read_bytes() == _clean_bytes(tmp_path)
    assert store.values == {}
    assert [p.name for p in target.parent.iterdir()] == ["referrals.jsonl"]


def test_a_checkpoint_of_another_plan_is_discarded(paged_emu, tmp_path, monkeypatch, caplog):
    target = tmp_path / "out" / "referrals.jsonl"
    _interrupted(monkeypatch, _operator(target), _context(), pages=55)
    assert _manifest(target)["cursor"][0]["pages"] > 0

    _restart_count(paged_emu)
    with caplog.at_level(logging.INFO, logger="airflow_provider_partner"):
        _operator(target, select="name,status").execute(_context())

    assert paged_emu.stats()["pages_served"] == PAGES
    assert any(
        r.levelno == logging.INFO
        and "Discarding the checkpoint at" in r.getMessage()
        and "the query or plan changed since it was written (select differ)" in r.getMessage()
        for r in caplog.records
    )
    assert [p.name for p in target.parent.iterdir()] == ["referrals.jsonl"]


def test_a_checkpoint_of_another_run_is_discarded(paged_emu, tmp_path, monkeypatch, caplog):
    target = tmp_path / "out" / "referrals.jsonl"
    _interrupted(monkeypatch, _operator(target), _context(run_id="scheduled__1"), pages=55)

    _restart_count(paged_emu)
    with caplog.at_level(logging.INFO, logger="airflow_provider_partner"):
        _operator(target).execute(_context(run_id="scheduled__2"))

    assert paged_emu.stats()["pages_served"] == PAGES
    assert any("belongs to another task instance or run" in r.getMessage() for r in caplog.records)
    assert target.read_bytes() == _clean_bytes(tmp_path)


def _expire_next_link(target: Path) -> None:
    manifest = _manifest(target)
    for state in manifest["cursor"]:
        if state["next_link"]:
            link = state["next_link"]
            state["next_link"] = link[: link.index("$skiptoken=") + 11] + "ZXhwaXJlZA"
    (_folder(target) / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_a_refused_next_link_restarts_the_slice_from_its_order_key(paged_emu, tmp_path, monkeypatch, caplog):
    target = tmp_path / "out" / "referrals.jsonl"
    _interrupted(monkeypatch, _operator(target), _context(), pages=95)
    checkpointed = _manifest(target)["cursor"][0]["pages"]
    _expire_next_link(target)

    _restart_count(paged_emu)
    with caplog.at_level(logging.INFO, logger="airflow_provider_partner"):
        result = _operator(target).execute(_context())

    refused = [r.getMessage() for r in caplog.records if "The stored nextLink was refused" in r.getMessage()]
    assert refused
    assert "HTTP 400" in refused[0]
    # The restarted query reads the last checkpointed page again (10 referrals): one page more.
    assert paged_emu.stats()["pages_served"] == PAGES - checkpointed + 1
    assert result["duplicates_removed"] == 10
    assert target.read_bytes() == _clean_bytes(tmp_path)


def test_a_referral_updated_between_the_tries_is_read_again_in_its_new_version(
    paged_emu, tmp_path, monkeypatch
):
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    target = tmp_path / "out" / "referrals.jsonl"
    _interrupted(monkeypatch, _operator(target), _context(), pages=95)
    # The first referral the killed try spooled changes: its updatedDateTime moves past the checkpoint.
    first = json.loads((_folder(target) / "0-0.jsonl").read_bytes().split(b"\n")[0])
    PartnerCenterHook().update_referral(
        first["id"], [{"op": "replace", "path": "/details/notes", "value": "v2"}]
    )
    _expire_next_link(target)

    result = _operator(target).execute(_context())

    written = [json.loads(line) for line in target.read_bytes().splitlines()]
    assert next(r for r in written if r["id"] == first["id"])["details"]["notes"] == "v2"
    assert result["count"] == len(written) == 2000
    assert result["duplicates_removed"] == 11  # the last page read again, and the updated referral
    assert target.read_bytes() == _clean_bytes(tmp_path)


def test_parallel_slices_resume_each_from_where_it_was(paged_emu, tmp_path, monkeypatch):
    target = tmp_path / "out" / "referrals.jsonl"
    _interrupted(monkeypatch, _operator(target, parallelism=3), _context(), pages=125)
    cursor = _manifest(target)["cursor"]
    checkpointed = sum(state["pages"] for state in cursor)
    assert len(cursor) == 3
    assert all(state["pages"] > 0 for state in cursor)

    _restart_count(paged_emu)
    result = _operator(target, parallelism=3).execute(_context())

    # No planning again (no probe, no first pages): the recorded slices go on, each from its nextLink.
    assert paged_emu.stats()["pages_served"] == result["pages"] - checkpointed
    assert result["resumed_pages"] == checkpointed
    assert result["pages"] <= PAGES + 3
    assert result["count"] == 2000
    assert target.read_bytes() == _clean_bytes(tmp_path, parallelism=3)


@pytest.mark.parametrize("output_format", ["jsonl.gz", "parquet"])
def test_gzip_and_parquet_outputs_resume_to_the_same_bytes(paged_emu, tmp_path, monkeypatch, output_format):
    if output_format == "parquet":
        pytest.importorskip("pyarrow")
    target = tmp_path / "out" / f"referrals.{output_format}"
    _interrupted(monkeypatch, _operator(target, output_format=output_format), _context(), pages=75)
    checkpointed = _manifest(target)["cursor"][0]["pages"]

    _restart_count(paged_emu)
    result = _operator(target, output_format=output_format).execute(_context())

    assert paged_emu.stats()["pages_served"] == PAGES - checkpointed
    clean = tmp_path / "clean" / f"referrals.{output_format}"
    _operator(clean, output_format=output_format, resume=False).execute(_context())
    assert result["count"] == 2000
    assert target.read_bytes() == clean.read_bytes()
