"""``partner-center-login``: the device-code bootstrap, end to end through the console script."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from airflow_provider_partner.cli.login import main
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

LOGIN = str(Path(sys.executable).with_name("partner-center-login"))


def test_device_code_login_stores_the_cache_and_prints_the_connection(
    emulator_factory, monkeypatch, tmp_path: Path
) -> None:
    emu = emulator_factory(referrals=50, seed=3)
    info = emu.info
    cache = tmp_path / "cache.json"
    proc = subprocess.Popen(
        [
            LOGIN,
            "--client-id", info["client_id"],
            "--tenant-id", info["tenant_id"],
            "--authority-host", info["authority_host"],
            "--api-url", info["api_url"],
            "--ca-bundle", info["ca_bundle"],
            "--token-cache", f"file://{cache}",
            "--new-conn-id", "pc_boot",
            "--timeout", "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        # Airflow 3.1's alembic logs a few lines to stderr on import, before the prompt.
        prompt = ""
        match = None
        while match is None and (line := proc.stderr.readline()):
            prompt += line
            match = re.search(r"open (\S+) and enter the code (\S+) ", line)
        assert match, prompt
        assert match.group(1).startswith(info["authority_host"])
        emu.approve_device_code(match.group(2), emu.users["admin"]["username"])
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(out, err)  # captured: the session-wide secrets scan reads it too
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Signed in as {emu.users['admin']['username']}. Token cache saved to file://{cache}."
    assert lines[1] == "Create (or update) the Airflow connection with:"
    command = shlex.split(lines[2])
    assert command[:5] == ["airflow", "connections", "add", "pc_boot", "--conn-json"]
    conn = json.loads(command[5])
    assert conn == {
        "conn_type": "partner_center",
        "host": info["api_url"],
        "login": info["client_id"],
        "extra": {
            "tenant_id": info["tenant_id"],
            "authority_host": info["authority_host"],
            "ca_bundle": info["ca_bundle"],
            "credential_store": f"file://{cache}",
        },
    }
    stored = json.loads(cache.read_text())
    (refresh_token,) = [entry["secret"] for entry in stored["RefreshToken"].values()]
    assert refresh_token not in out + err
    assert emu.stats()["token_grants"]["device_code"] == 1

    # The printed connection works as is: a public client living on the stored cache.
    monkeypatch.setenv("AIRFLOW_CONN_PC_BOOT", command[5])
    hook = PartnerCenterHook("pc_boot")
    assert [r["id"] for r in hook.iter_referrals(top=3)] == [r["id"] for r in emu.referrals()[:3]]


def test_login_refuses_to_run_without_a_place_for_the_token(capsys) -> None:
    status = main(["--client-id", "00000000-0000-0000-0000-000000000001", "--tenant-id", "contoso.com"])
    assert status == 2
    assert (
        "error: nowhere to keep the rotating refresh token. Pass --credential-store"
        in capsys.readouterr().err
    )
