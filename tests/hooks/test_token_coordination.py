"""
Many tasks, one rotating refresh token: 0 failures and one grant per access-token lifetime.

The emulator revokes every refresh token once used and issues 30-second access tokens. Each
round stands for one access-token lifetime passing (the authority forgets every access token),
after which all tasks start together; exactly one of them refreshes, the others use its token
(from memory in its process, from the credential store in the other). Real processes share one
``file://`` store (flock lease) or one ``variable://`` store in the SQLite metadata database
(lease row).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "token_worker.py"
ROUNDS = 20


def _result(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise AssertionError(f"worker ended without a result (exit {proc.wait()})")


@pytest.mark.parametrize("store", ["file", "variable"])
def test_8_tasks_on_2_workers_share_one_refresh_per_round(
    partner_center_emulator, connect, airflow_db, tmp_path: Path, store: str
) -> None:
    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=30)
    location = (
        f"file://{tmp_path}/cache.json" if store == "file" else "variable://pc_coordination_credentials"
    )
    conn_id = connect(emu, f"pc_coord_{store}", credential_store=location)
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), conn_id, "4"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    grants: list[int] = []
    results: list[dict] = []
    try:
        for _ in range(ROUNDS):
            emu.expire_access_tokens()  # one access-token lifetime has passed
            before = emu.stats()["token_grants"].get("refresh_token", 0)
            for proc in workers:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            results += [_result(proc) for proc in workers]
            grants.append(emu.stats()["token_grants"].get("refresh_token", 0) - before)
    finally:
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=60)
    print(f"{store}: grants per round {grants}")  # the figure of the closing note
    assert [r["failures"] for r in results] == [[]] * (2 * ROUNDS)
    assert sum(r["ok"] for r in results) == 8 * ROUNDS
    assert grants == [1] * ROUNDS
    if store == "variable":
        from airflow.models.variable import Variable

        Variable.delete("pc_coordination_credentials")


def test_4_threads_of_one_process_share_one_refresh_per_round(
    partner_center_emulator, connect, tmp_path: Path
) -> None:
    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=30)
    first = PartnerCenterHook(connect(emu, "pc_coord_threads", credential_store=f"file://{tmp_path}/c.json"))
    hooks = [first] + [first.sibling() for _ in range(3)]  # the operator's parallel slices
    grants: list[int] = []
    failures: list[str] = []
    for _ in range(ROUNDS):
        emu.expire_access_tokens()
        before = emu.stats()["token_grants"].get("refresh_token", 0)
        barrier = threading.Barrier(len(hooks))

        def read(hook: PartnerCenterHook, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=30)
            try:
                assert len(next(iter(hook.iter_pages(top=2))).records) == 2
            except Exception as err:  # noqa: BLE001 - collected for one exact assertion
                failures.append(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=read, args=(hook,)) for hook in hooks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        grants.append(emu.stats()["token_grants"].get("refresh_token", 0) - before)
    print(f"threads: grants per round {grants}")
    assert failures == []
    assert grants == [1] * ROUNDS
