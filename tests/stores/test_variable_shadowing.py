"""A ``variable://`` store whose key a secrets backend also serves is refused, never used stale.

Airflow's ``Variable.get`` reads the secrets backends (``[secrets] backend``, the
``AIRFLOW_VAR_<KEY>`` environment variables) before the metadata database, while ``Variable.set``
writes to the database. Before the check, with an ``AIRFLOW_VAR_`` copy of a valid token cache and
revoking rotation, the first run redeemed the copy's refresh token and saved the rotated cache where
no read looks; the next one redeemed the copy's (now revoked) token again and failed with "the
refresh token was revoked or is invalid (AADSTS50173)", asking for a new sign-in.

Here every shadow is refused by name: on load (nothing is refreshed) where this process can see
the backend, after the save otherwise (the task's API server serves the key from a backend of its
own), and the database keeps the newest value, so removing the shadow is the whole fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dag_loading import load_dag

from airflow_provider_partner.errors import PartnerCenterConfigError, PartnerCenterStoreShadowedError
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.stores import open_store
from airflow_provider_partner.stores.variables import ENCRYPTED_PREFIX

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE / "dags" / "shadowed_token_cache_dag.py"
RUNNER = HERE / "shadowed_dag_run.py"
KEY = "partner_center_shadowed_token_cache"
ENV_NAME = f"AIRFLOW_VAR_{KEY.upper()}"
BACKEND = "shadow_backend.ShadowBackend"

#: Where each source is named in the messages.
FROM_ENV = f"the environment variable {ENV_NAME} (set in this process)"
FROM_BACKEND = f"a secrets backend ([secrets] backend = {BACKEND})"
FROM_API_SERVER = (
    f"a secrets backend or an {ENV_NAME} environment variable of the Airflow API server "
    "(none of this worker's backends holds it)"
)
TOKEN_CACHE_FIX = (
    "(reads then return the database's value), or set credential_store to another Variable key, "
    "a file:// or an object storage location."
)


#: How the message goes on when the cache was refused as it was read (nothing refreshed) ...
ON_LOAD = (
    ", so every rotated refresh token saved would be lost and a later run would redeem a revoked one. "
    "Nothing was saved."
)
#: ... and when its save read back another value.
AFTER_SAVE = (
    ". The value just saved is in the database (the newest: no new sign-in is needed), but reads "
    "return the other."
)


def refused(source: str, remedy: str, effect: str) -> str:
    """The message refusing Variable ``KEY`` as a token cache."""
    return (
        f"Token cache variable://{KEY} is shadowed: Airflow reads Variable {KEY!r} from {source} "
        f"before the metadata database, where the provider saves it{effect} Fix: {remedy} {TOKEN_CACHE_FIX}"
    )


def database_value(key: str) -> str | None:
    """The raw value of Variable ``key`` in the metadata database, no secrets backend asked."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == key).one_or_none()
        return None if row is None else str(row.val)


def decrypted(raw: str | None) -> dict[str, Any]:
    """The token cache of an encrypted Variable value."""
    from airflow_provider_partner.compat import get_fernet

    assert raw is not None
    assert raw.startswith(ENCRYPTED_PREFIX)
    cache: dict[str, Any] = json.loads(get_fernet().decrypt(raw[len(ENCRYPTED_PREFIX) :].encode()))
    return cache


def refresh_tokens(cache: dict[str, Any]) -> list[str]:
    return [entry["secret"] for entry in cache["RefreshToken"].values()]


def delete_variables(*keys: str) -> None:
    from airflow.models.variable import Variable

    for key in keys:
        Variable.delete(key)


@pytest.fixture
def variables(airflow_db: Path) -> Iterator[list[str]]:
    """Keys the test writes; each (and its lease) is deleted from the database at the end."""
    keys: list[str] = []
    yield keys
    delete_variables(*keys, *(f"{key}.lease" for key in keys))


@pytest.fixture
def shadow_file(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """``shadow_file({key: value})``: what :class:`shadow_backend.ShadowBackend` serves, now."""
    path = tmp_path / "shadow.json"

    def write(values: dict[str, str]) -> Path:
        path.write_text(json.dumps(values), encoding="utf-8")
        return path

    return write


@pytest.fixture
def custom_backend(monkeypatch: pytest.MonkeyPatch, shadow_file: Callable[..., Path]) -> Callable[..., None]:
    """
    ``custom_backend({key: value})``: ``[secrets] backend`` serves those Variables in this process.

    Outside a task Airflow builds its backends anew on each lookup while no custom one was
    configured when it started, so setting the option here takes effect at once and goes with
    the test.
    """

    def configure(values: dict[str, str]) -> None:
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", BACKEND)
        monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps({"path": str(shadow_file(values))}))

    return configure


@pytest.fixture
def seeded(partner_center_emulator: Any, connect: Callable[..., str], variables: list[str]) -> Any:
    """The emulator revoking used refresh tokens, and a valid token cache in Variable ``KEY``."""
    emu = partner_center_emulator
    emu.configure(revoke_used_refresh_tokens=True, token_ttl=60)
    variables.append(KEY)
    connect(emu, "pc_seed", credential_store=f"variable://{KEY}")
    PartnerCenterHook("pc_seed").tokens.get_token()
    connect(emu, "pc_shadow", credential_store=f"variable://{KEY}", drop=("refresh_token",))
    return emu


def grants(emu: Any) -> int:
    return int(emu.stats()["token_grants"].get("refresh_token", 0))


# -- outside a task: the hook, the store ------------------------------------------------------------


def test_a_cache_an_environment_variable_shadows_is_refused_before_any_refresh(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = seeded
    copy = database_value(KEY)
    assert copy is not None
    # The setup: a copy of the valid cache, exported for Airflow to find.
    monkeypatch.setenv(ENV_NAME, copy)
    before = grants(emu)

    with pytest.raises(PartnerCenterStoreShadowedError) as caught:
        PartnerCenterHook("pc_shadow").tokens.refresh()

    assert str(caught.value) == refused(FROM_ENV, f"unset {ENV_NAME}", ON_LOAD)
    assert isinstance(caught.value, PartnerCenterConfigError)
    assert (caught.value.key, caught.value.sources) == (KEY, (FROM_ENV,))
    assert grants(emu) == before  # no rotation spent on a cache nobody would read again
    assert database_value(KEY) == copy

    # The fix is removing the shadow: the database's cache is read, no sign-in.
    monkeypatch.delenv(ENV_NAME)
    hook = PartnerCenterHook("pc_shadow")
    assert [r["id"] for r in hook.iter_referrals(top=3)] == [r["id"] for r in emu.referrals()[:3]]


def test_a_save_that_does_not_read_back_is_refused_and_kept_in_the_database(
    airflow_db: Path, variables: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    variables.append(KEY)
    monkeypatch.setenv(ENV_NAME, "what the environment serves")
    store = open_store(f"variable://{KEY}")

    # No load before: the save alone finds the shadow (partner-center-login saves without one).
    with pytest.raises(PartnerCenterStoreShadowedError) as caught:
        store.save('{"newest": true}')

    assert str(caught.value) == refused(FROM_ENV, f"unset {ENV_NAME}", AFTER_SAVE)
    written = database_value(KEY)
    assert written is not None
    assert written.startswith(ENCRYPTED_PREFIX)
    assert written not in str(caught.value)
    monkeypatch.delenv(ENV_NAME)
    assert store.load() == '{"newest": true}'


def test_a_watermark_a_secrets_backend_shadows_is_refused_by_name(
    airflow_db: Path,
    variables: list[str],
    custom_backend: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "partner_center_shadowed_watermark"
    variables.append(key)
    store = open_store(f"variable://{key}", "Watermark location")
    store.save('{"created": "2026-11-01T00:00:00.0000000Z"}')
    custom_backend({key: '{"created": "2026-01-01T00:00:00.0000000Z"}'})
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", '{"created": "2026-02-01T00:00:00.0000000Z"}')

    with pytest.raises(PartnerCenterStoreShadowedError) as caught:
        store.load()

    # Both sources, in the order Airflow asks them: removing one alone would not do.
    sources = (
        FROM_BACKEND,
        f"the environment variable AIRFLOW_VAR_{key.upper()} (set in this process)",
    )
    assert caught.value.sources == sources
    assert str(caught.value) == (
        f"Watermark variable://{key} is shadowed: Airflow reads Variable {key!r} from {sources[0]} and "
        f"{sources[1]} before the metadata database, where the provider saves it, so every watermark "
        "saved would be lost and the trigger would report the same referrals again. Nothing was saved. "
        f"Fix: delete Variable {key!r} from that secrets backend and unset AIRFLOW_VAR_{key.upper()} "
        "(reads then return the database's value), or set watermark_location to another Variable "
        "key, a file:// or an object storage location."
    )
    with pytest.raises(PartnerCenterStoreShadowedError):
        store.save('{"created": "2026-11-02T00:00:00.0000000Z"}')
    assert database_value(key) == '{"created": "2026-11-02T00:00:00.0000000Z"}'


def test_a_key_no_backend_serves_reads_back_what_was_saved(
    airflow_db: Path, variables: list[str], custom_backend: Callable[..., None]
) -> None:
    variables.append(KEY)
    custom_backend({"another_key": "unrelated"})
    store = open_store(f"variable://{KEY}")

    store.save('{"first": 1}')
    assert store.load() == '{"first": 1}'
    store.save('{"second": 2}')
    assert store.load() == '{"second": 2}'


def test_a_save_overtaken_by_another_writer_is_not_a_shadow(airflow_db: Path, variables: list[str]) -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_partner.stores.variables import VariableTextStore

    variables.append(KEY)

    class Overtaken(VariableTextStore):
        """Another process saves right after this one's write, before its read-back."""

        def _set(self, key: str, value: str, description: str) -> None:
            super()._set(key, value, description)
            with create_session() as session:
                session.query(Variable).filter(Variable.key == key).one().val = "the other writer's"

    store = Overtaken(KEY, "Watermark of airflow-provider-partner")
    store.save("mine")  # no error: no backend holds the key; the newer value wins

    assert store.load() == "the other writer's"


# -- inside a task (the Task SDK) ----------------------------------------------------------------


@pytest.fixture
def shadowed_dag(airflow_home: Path) -> Iterator[Path]:
    """The test DAG, linked into the session's DAGs folder for ``dag.test()``; unlinked after."""
    link = airflow_home / "dags" / DAG_FILE.name
    link.symlink_to(DAG_FILE)
    yield link
    link.unlink()


def run_in_process(link: Path, env: dict[str, str]) -> tuple[str, str]:
    """``dag.test()`` of the DAG in a process of its own with ``env`` added; (state, output)."""
    paths = [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(link)],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = proc.stdout + proc.stderr
    print(output)  # captured: the session-wide secrets scan reads it too
    assert proc.returncode == 0, output
    state = proc.stdout.splitlines()[-1].removeprefix("STATE ")
    return state, output


@pytest.mark.airflow_line
def test_in_a_task_an_environment_variable_shadow_fails_the_task_before_any_refresh(
    seeded: Any, shadowed_dag: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = seeded
    copy = database_value(KEY)
    assert copy is not None
    monkeypatch.setenv(ENV_NAME, copy)
    dag = load_dag("shadowed_token_cache", shadowed_dag)
    before = grants(emu)

    run = dag.test()

    assert run.state == "failed"
    assert refused(FROM_ENV, f"unset {ENV_NAME}", ON_LOAD) in capsys.readouterr().out
    assert grants(emu) == before
    assert database_value(KEY) == copy

    monkeypatch.delenv(ENV_NAME)
    run = dag.test()
    assert run.state == "success"
    assert run.get_task_instance("renew_and_read").xcom_pull(task_ids="renew_and_read") == {
        "records": 3,
        "token_requests": 1,
    }


def run_behind_a_backend(
    emu: Any, link: Path, shadow_file: Callable[..., Path], worker_backend: str | None = None
) -> tuple[str, str, str, int]:
    """
    Run the DAG in its own process with ``[secrets] backend`` serving a copy of Variable ``KEY``.

    :param worker_backend: the task's ``[workers] secrets_backend`` (default: none, so the task
        asks ``[secrets] backend`` too).
    :return: the copy, the state of the run, its output, and the refresh grants before it.
    """
    copy = database_value(KEY)
    assert copy is not None
    env = {
        "AIRFLOW__SECRETS__BACKEND": BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"path": str(shadow_file({KEY: copy}))}),
    }
    if worker_backend is not None:
        env["AIRFLOW__WORKERS__SECRETS_BACKEND"] = worker_backend
    before = grants(emu)
    state, output = run_in_process(link, env)
    return copy, state, output, before


@pytest.mark.airflow_line
def test_in_a_task_a_secrets_backend_shadow_fails_the_task_before_any_refresh(
    seeded: Any, shadowed_dag: Path, shadow_file: Callable[..., Path]
) -> None:
    emu = seeded
    copy, state, output, before = run_behind_a_backend(emu, shadowed_dag, shadow_file)

    assert state == "failed"
    assert refused(FROM_BACKEND, f"delete Variable {KEY!r} from that secrets backend", ON_LOAD) in output
    assert grants(emu) == before
    assert database_value(KEY) == copy


@pytest.mark.airflow_line
def test_in_a_task_a_shadow_only_the_api_server_sees_is_refused_after_the_save(
    seeded: Any, shadowed_dag: Path, shadow_file: Callable[..., Path]
) -> None:
    emu = seeded
    # The worker asks a backend that holds nothing; the API server (in-process under dag.test())
    # asks [secrets] backend, which holds the copy: only the read-back can tell.
    copy, state, output, before = run_behind_a_backend(
        emu, shadowed_dag, shadow_file, worker_backend="shadow_backend.NullBackend"
    )

    assert state == "failed"
    assert refused(FROM_API_SERVER, "remove it there", AFTER_SAVE) in output
    # The retry (same process) is refused as soon as it reads what the first try's save revealed.
    assert refused(FROM_API_SERVER, "remove it there", ON_LOAD) in output
    assert grants(emu) == before + 1  # the copy's refresh token, redeemed once (and revoked now)
    # Nothing was lost: the rotated cache is the database's, and it is all the fix needs.
    stored = refresh_tokens(decrypted(database_value(KEY)))
    assert len(stored) == 1
    assert stored != refresh_tokens(decrypted(copy))
    PartnerCenterHook("pc_shadow").tokens.refresh()  # this process has no shadow configured
    assert grants(emu) == before + 2
    assert refresh_tokens(decrypted(database_value(KEY))) not in ([], stored)
