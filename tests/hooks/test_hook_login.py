"""``partner-center-login``: the device-code bootstrap, end to end through the console script."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_provider_partner.cli.login import main
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

LOGIN = str(Path(sys.executable).with_name("partner-center-login"))


def sign_in(emu: Any, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the console script with ``args``, approve its device code as the admin; (status, out, err)."""
    info = emu.info
    proc = subprocess.Popen(
        [
            LOGIN,
            "--client-id", info["client_id"],
            "--tenant-id", info["tenant_id"],
            "--authority-host", info["authority_host"],
            "--api-url", info["api_url"],
            "--ca-bundle", info["ca_bundle"],
            "--timeout", "60",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
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
    return proc.returncode, out, err


def test_device_code_login_stores_the_cache_and_prints_the_connection(
    emulator_factory, monkeypatch, tmp_path: Path
) -> None:
    emu = emulator_factory(referrals=50, seed=3)
    info = emu.info
    cache = tmp_path / "cache.json"
    returncode, out, err = sign_in(emu, "--token-cache", f"file://{cache}", "--new-conn-id", "pc_boot")
    assert returncode == 0, err
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


#: A secrets backend of the shadowing tests (tests/stores/shadow_backend.py), for subprocesses.
SHADOW_BACKENDS = Path(__file__).resolve().parents[1] / "stores"


def test_login_to_a_key_a_secrets_backend_shadows_keeps_the_sign_in_and_warns(
    emulator_factory, monkeypatch, airflow_db, tmp_path: Path
) -> None:
    from airflow.models.variable import Variable

    emu = emulator_factory(referrals=50, seed=3)
    key = "partner_center_login_shadowed"
    shadow = tmp_path / "shadow.json"
    shadow.write_text(json.dumps({key: "a copy someone put in the secrets backend"}), encoding="utf-8")
    backend = {
        "AIRFLOW__SECRETS__BACKEND": "shadow_backend.ShadowBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"path": str(shadow)}),
        "PYTHONPATH": os.pathsep.join(p for p in (str(SHADOW_BACKENDS), os.environ.get("PYTHONPATH")) if p),
    }
    try:
        returncode, out, err = sign_in(emu, "--credential-store", f"variable://{key}", env=backend)

        assert returncode == 3
        # Airflow's own warning of the write (structlog, on stdout) comes first.
        signed_in = f"Signed in as {emu.users['admin']['username']}. Token cache saved to variable://{key}."
        assert signed_in in out.splitlines()
        assert err.splitlines()[-1] == (
            "warning: the sign-in was saved, but tasks will not read it yet. "
            f"Token cache variable://{key} is shadowed: Airflow reads Variable {key!r} from a secrets "
            "backend ([secrets] backend = shadow_backend.ShadowBackend) before the metadata database, "
            "where the provider saves it. The value just saved is in the database (the newest: no new "
            f"sign-in is needed), but reads return the other. Fix: delete Variable {key!r} from that "
            "secrets backend (reads then return the database's value), or set credential_store to "
            "another Variable key, a file:// or an object storage location."
        )

        # This process has no such backend: what the tasks will read once it is removed works as is.
        conn = {**json.loads(emu.info["airflow_conn"])}
        conn["extra"] = {**conn["extra"], "credential_store": f"variable://{key}"}
        conn["extra"].pop("refresh_token")
        monkeypatch.setenv("AIRFLOW_CONN_PC_LOGIN_SHADOWED", json.dumps(conn))
        hook = PartnerCenterHook("pc_login_shadowed")
        assert [r["id"] for r in hook.iter_referrals(top=3)] == [r["id"] for r in emu.referrals()[:3]]
        assert emu.stats()["token_grants"]["device_code"] == 1
    finally:
        Variable.delete(key)


def test_keep_alive_of_a_shadowed_key_fails_naming_it(
    emulator_factory, monkeypatch, airflow_db, capsys
) -> None:
    from airflow.models.variable import Variable

    emu = emulator_factory(referrals=5, seed=3)
    key = "partner_center_keepalive_shadowed"
    env_name = f"AIRFLOW_VAR_{key.upper()}"
    conn = json.loads(emu.info["airflow_conn"])
    conn["extra"]["credential_store"] = f"variable://{key}"
    monkeypatch.setenv("AIRFLOW_CONN_PC_KEEPALIVE_SHADOWED", json.dumps(conn))
    PartnerCenterHook("pc_keepalive_shadowed").tokens.get_token()  # a cache in the database
    monkeypatch.setenv(env_name, "a stale copy")
    grants = emu.stats()["token_grants"]["refresh_token"]
    try:
        status = main(["--conn-id", "pc_keepalive_shadowed", "--refresh"])

        assert status == 1
        assert capsys.readouterr().err == (
            f"error: Token cache variable://{key} is shadowed: Airflow reads Variable {key!r} from the "
            f"environment variable {env_name} (set in this process) before the metadata database, where "
            "the provider saves it, so every rotated refresh token saved would be lost and a later run "
            f"would redeem a revoked one. Nothing was saved. Fix: unset {env_name} (reads then return "
            "the database's value), or set credential_store to another Variable key, a file:// or an "
            "object storage location.\n"
        )
        assert emu.stats()["token_grants"]["refresh_token"] == grants  # nothing redeemed
    finally:
        Variable.delete(key)
