"""The CLI (one JSON line when ready), the admin HTTP endpoints, and --state-dir restarts."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

SCOPE = "https://api.partner.microsoft.com/.default"
ARGS = ["--port", "0", "--referrals", "300", "--seed", "5", "--now", "2026-11-20T12:00:00Z"]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "partner_center_emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=60)
    selector.close()
    if not ready:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail("the emulator printed nothing within 60 s")
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        return proc, {"stderr": proc.stderr.read()}
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Every CLI process started by a test is reaped at teardown, whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            _stop(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _admin(
    info: dict, action: str, body=None, method: str = "POST", token: str | None = None
) -> requests.Response:
    """One admin request, authorized with the CLI's own ``admin_token`` unless ``token`` is given."""
    headers = {"Authorization": f"Bearer {info['admin_token'] if token is None else token}"}
    return requests.request(
        method,
        f"{info['admin_url']}/{action}",
        json=body,
        headers=headers,
        verify=info["ca_bundle"],
        timeout=10,
    )


def _token(info: dict, refresh_token: str) -> dict:
    response = requests.post(
        info["authority"] + "/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": info["client_id"],
              "client_secret": info["client_secret"], "refresh_token": refresh_token, "scope": SCOPE},
        verify=info["ca_bundle"], timeout=10,
    )  # fmt: skip
    return response.json()


def test_cli_admin_endpoints_and_state_dir_restart(tmp_path: Path, processes) -> None:
    state = tmp_path / "state"
    proc, info = _start(*ARGS, "--state-dir", str(state))
    processes.append(proc)
    assert info["api_url"].startswith("https://127.0.0.1:")
    assert info["ca_bundle"] == str(state / "ca.pem")
    assert json.loads((state / "info.json").read_text()) == info
    conn = json.loads(info["airflow_conn"])
    assert conn["extra"]["refresh_token"] == info["refresh_token"]

    assert _admin(info, "info", method="GET").json() == info
    assert _admin(info, "users", method="GET").json()["user"]["role"] == "Referral User"
    assert _admin(info, "configure", {"page_size": 10, "revoke_used_refresh_tokens": True}).json() == {
        "ok": True
    }
    tokens = _token(info, info["refresh_token"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    api = info["referrals_url"]
    page = requests.get(api, headers=headers, verify=info["ca_bundle"], timeout=10).json()
    assert len(page["value"]) == 10
    assert _admin(info, "script_faults", ["503"]).json() == {"ok": True}
    assert requests.get(api, headers=headers, verify=info["ca_bundle"], timeout=10).status_code == 503
    released = _admin(info, "release_incoming", {"n": 2, "type": "Shared"}).json()
    assert [(r["direction"], r["type"]) for r in released] == [("Incoming", "Shared")] * 2
    patched = page["value"][0]
    ops = [{"op": "replace", "path": "/statusReason", "value": "kept across restarts"}]
    response = requests.patch(
        f"{api}/{patched['id']}", json=ops, headers=headers, verify=info["ca_bundle"], timeout=10
    )
    assert response.status_code == 204
    stats = _admin(info, "stats", method="GET").json()
    assert stats["faults"] == {"503": 1}
    assert stats["token_grants"]["refresh_token"] == 1
    assert stats["requests"] == {"token": 1, "list": 2, "update": 1}
    assert _admin(info, "reset_stats").json() == {"ok": True}
    assert _admin(info, "stats", method="GET").json()["requests"] == {}
    assert _admin(info, "expire_access_tokens").json() == {"ok": True}
    assert requests.get(api, headers=headers, verify=info["ca_bundle"], timeout=10).status_code == 401
    seller = _admin(info, "issue_refresh_token", {"username": "r2d2@contoso.com"}).json()["refresh_token"]

    devicecode = requests.post(
        info["authority"] + "/oauth2/v2.0/devicecode", data={"client_id": info["client_id"], "scope": SCOPE},
        verify=info["ca_bundle"], timeout=10,
    ).json()  # fmt: skip
    approve = {"user_code": devicecode["user_code"], "username": info["username"]}
    assert _admin(info, "approve", approve).json() == {"ok": True}
    assert _admin(info, "approve", {"user_code": "nope", "username": info["username"]}).status_code == 400
    assert _admin(info, "nonsense").status_code == 404
    assert _admin(info, "configure", method="GET").status_code == 405
    assert "Unknown emulator setting" in _admin(info, "configure", {"colour": 1}).json()["error"]
    assert _stop(proc) == 0

    # Restart: same CA, secrets, rotated refresh tokens and writes; the first bootstrap token
    # was used with rotation enforced, so it stays dead.
    proc, again = _start(*ARGS, "--state-dir", str(state))
    processes.append(proc)
    assert again["ca_bundle"] == info["ca_bundle"]
    assert again["client_secret"] == info["client_secret"]
    assert _token(again, tokens["refresh_token"])["token_type"] == "Bearer"
    assert _token(again, seller)["token_type"] == "Bearer"
    assert _token(again, info["refresh_token"])["error"] == "invalid_grant"
    referrals = _admin(again, "referrals", method="GET").json()
    assert len(referrals) == 302
    assert next(r for r in referrals if r["id"] == patched["id"])["statusReason"] == "kept across restarts"
    assert [r["id"] for r in referrals[-2:]] == [r["id"] for r in released]
    assert _stop(proc) == 0

    mismatch, failed = _start("--port", "0", "--referrals", "301", "--seed", "5", "--state-dir", str(state))
    processes.append(mismatch)
    assert mismatch.returncode == 2
    assert "holds an emulator with seed=5, referrals=300" in failed["stderr"]


def test_cli_without_state_dir_removes_its_ca(processes) -> None:
    proc, info = _start("--port", "0", "--referrals", "5")
    processes.append(proc)
    ca = Path(info["ca_bundle"])
    assert ca.exists()
    assert requests.get(info["referrals_url"], verify=str(ca), timeout=10).status_code == 401
    assert _stop(proc) == 0
    assert not ca.exists()


def test_cli_restart_issues_a_new_admin_token(tmp_path: Path, processes) -> None:
    state = tmp_path / "state"
    proc, first = _start(*ARGS, "--state-dir", str(state))
    processes.append(proc)
    assert _admin(first, "stats", method="GET").status_code == 200
    assert _stop(proc) == 0

    # The token lives only as long as the process: a restart from the same state dir makes a new
    # one (the CA and secrets are kept, the admin token is not).
    proc, again = _start(*ARGS, "--state-dir", str(state))
    processes.append(proc)
    assert again["admin_token"] != first["admin_token"]
    assert again["client_secret"] == first["client_secret"]
    assert json.loads((state / "info.json").read_text())["admin_token"] == again["admin_token"]
    assert _admin(again, "stats", method="GET", token=first["admin_token"]).status_code == 401
    assert _admin(again, "stats", method="GET").status_code == 200
    assert _stop(proc) == 0


def test_cli_warns_on_stderr_only_when_bound_beyond_loopback(processes) -> None:
    proc, info = _start("--host", "0.0.0.0", "--port", "0", "--referrals", "1")
    processes.append(proc)
    port = info["api_url"].rsplit(":", 1)[1]
    assert info["api_url"] == f"https://0.0.0.0:{port}"
    assert _stop(proc) == 0
    assert proc.stderr.read() == (
        "partner-center-emulator: WARNING: The Partner Center emulator listens on 0.0.0.0, not a "
        "loopback address: other machines can reach it. It is a test double with well-known users; "
        "bind 127.0.0.1 unless you mean to share it.\n"
    )

    proc, info = _start("--host", "127.0.0.1", "--port", "0", "--referrals", "1")
    processes.append(proc)
    assert _stop(proc) == 0
    assert proc.stderr.read() == ""


def test_cli_close_connections_and_latency_flags(processes) -> None:
    proc, info = _start(*ARGS, "--close-connections", "--latency-per-page", "0.2")
    processes.append(proc)
    access = _token(info, info["refresh_token"])["access_token"]
    assert _admin(info, "reset_stats").status_code == 200
    session = requests.Session()
    started = time.monotonic()
    for _ in range(2):
        response = session.get(
            info["referrals_url"], params={"$top": "1"}, headers={"Authorization": f"Bearer {access}"},
            verify=info["ca_bundle"], timeout=10,
        )  # fmt: skip
        assert response.status_code == 200
        assert response.headers["Connection"] == "close"
    # Two pages, each held at least the configured latency.
    assert time.monotonic() - started >= 0.4
    session.close()
    # One handshake per API request, plus the one of this admin request itself.
    assert _admin(info, "handshakes", method="GET").json() == {"handshakes": 3}
    assert _stop(proc) == 0


def test_cli_soak_flags_sized_short_lived_rotating_tokens(processes) -> None:
    proc, info = _start(
        *ARGS, "--token-ttl", "2", "--access-token-bytes", "1500", "--revoke-used-refresh-tokens"
    )
    processes.append(proc)
    body = _token(info, info["refresh_token"])
    assert (len(body["access_token"]), body["access_token"][:10], body["expires_in"]) == (
        1500,
        "emu-at-eyJ",
        2,
    )
    assert _token(info, info["refresh_token"])["error_codes"] == [50173]
    assert _admin(info, "token_counts", method="GET").json() == {"access_tokens": 1, "refresh_tokens": 2}
    issued = _admin(info, "issued_tokens", method="GET").json()
    assert issued == {
        "access_tokens": [body["access_token"]],
        "refresh_tokens": [info["refresh_token"], body["refresh_token"]],
    }
    assert _stop(proc) == 0

    refused, failed = _start("--port", "0", "--referrals", "1", "--access-token-bytes", "49")
    processes.append(refused)
    assert refused.returncode == 2
    assert "access_token_bytes must be 0 (the default token) or at least 50, got 49" in failed["stderr"]
