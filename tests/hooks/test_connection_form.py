"""
The connection form and its Test button, as the api-server serves them, on every Airflow line.

Airflow 3.2+ builds the form from the provider info's ``conn-fields`` / ``ui-field-behaviour``; 3.1
ignores those and calls the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour``.
Both must give the user the same form. The api-server's own FastAPI app answers in a process of
its own (``airflow.api_fastapi.app.create_app``, what ``airflow api-server`` serves), with the
simple auth manager's token, and is sent the bodies Airflow's UI sends:

- Save in the "Add Connection" form (``src/queries/useAddConnection.ts``): empty standard fields
  left out, ``port`` as a number, ``extra`` the JSON of every extra field the form shows. The UI
  writes each shown field (``useParamStore``'s ``setParamsDict``), an untouched one as null.
- The Test button of the connection list (``src/pages/Connections/TestConnectionButton.tsx``,
  the only Test button of Airflow 3.3's UI): the listed connection as the list API returns it
  (password and secret extras masked as ``***``), ``port: Number(connection.port)``, so 0 for a
  connection without a port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# What the api-server serves differs between Airflow releases: one Python per line runs it.
pytestmark = pytest.mark.airflow_line

# The form a person fills in, exactly: the extras in form order, with their labels and help texts.
FORM_EXTRAS = {
    "tenant_id": (
        "Tenant ID",
        "Entra ID tenant of your partner organisation: its ID or a domain such as "
        "contoso.onmicrosoft.com. Empty: organizations (any work account).",
    ),
    "credential_store": (
        "Credential store (token cache location)",
        "Where partner-center-login saved the sign-in, and the rotating tokens are kept: "
        "variable://KEY for an Airflow Variable (encrypted), or a file or object storage URL "
        "such as s3://aws_default@bucket/partner/cache.json.",
    ),
    "refresh_token": (
        "Refresh token (bootstrap)",
        "Optional: a refresh token from partner-center-login, used only while the credential "
        "store holds none. Leave empty when the credential store is set.",
    ),
    "ca_bundle": (
        "CA bundle",
        "Optional: path of a PEM file of CA certificates, present on every worker, trusted for "
        "TLS to the API and to Entra ID (for a TLS-inspecting proxy).",
    ),
}
REFUSED = (
    "The host or port to test differs from the stored connection. "
    "Include the credentials to test in the request body."
)

# Run in a new process: the api-server's form is built by the first look at the providers' hooks
# in that process (Airflow 3.1 imports them under stand-ins for WTForms then), and an earlier test
# of this session may already have imported them. Reads the steps as JSON on stdin.
_API_SERVER = """
import json, sys
from airflow.api_fastapi.app import create_app
from fastapi.testclient import TestClient

client = TestClient(create_app())
try:  # Airflow 3.3's check of a Test request against the stored connection (3.1 and 3.2 have none)
    from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint
    refuses_port_0 = not _same_endpoint(0, None)
except ImportError:
    refuses_port_0 = False
token = client.get("/auth/token")
assert token.status_code in (200, 201), token.text
headers = {"Authorization": "Bearer " + token.json()["access_token"]}


def call(method, path, body=None):
    answer = client.request(method, path, json=body, headers=headers)
    return {"status": answer.status_code, "body": answer.json() if answer.content else None}


def list_button(conn_id):
    # TestConnectionButton.tsx: the connection as the list shows it, port through Number().
    [conn] = [c for c in call("GET", "/api/v2/connections")["body"]["connections"]
              if c["connection_id"] == conn_id]
    body = {
        "conn_type": conn["conn_type"], "connection_id": conn["connection_id"],
        "description": conn["description"] or "",
        "extra": "{}" if conn["extra"] in ("", None) else conn["extra"],
        "host": conn["host"] or "", "login": conn["login"] or "", "password": conn["password"] or "",
        "port": int(conn["port"] or 0), "schema": conn["schema"] or "",
    }
    return {"sent": body, **call("POST", "/api/v2/connections/test", body)}


results = {"refuses_port_0": refuses_port_0, "hook_meta": call("GET", "/ui/connections/hook_meta")}
for step in json.loads(sys.stdin.read()):
    name, kind, args = step
    results[name] = list_button(*args) if kind == "TEST" else call(kind, *args)
print(json.dumps(results))
"""


def ui_save(conn_id: str, form: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """The body of "Save" in the Add Connection form (useAddConnection.ts): blanks left out."""
    body = {"conn_type": "partner_center", "connection_id": conn_id, "extra": json.dumps(extras, indent=2)}
    body.update({key: value for key, value in form.items() if value not in ("", None)})
    return body


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One api-server process: the form it serves, then saves and Tests as the UI sends them."""
    from partner_center_emulator import Emulator

    emu = Emulator(referrals=20, seed=7).start()
    folder = tmp_path_factory.mktemp("form")
    admin = emu.users["admin"]["username"]

    def emulator_save(conn_id: str, port: int | None) -> dict[str, Any]:
        # The emulator's connection typed into the form: the four form extras, and its authority
        # host in "Extra Fields JSON" (the UI keeps keys it has no field for).
        form = {"host": emu.info["api_url"], "login": emu.info["client_id"], "port": port}
        form["password"] = emu.info["client_secret"]
        extras = {
            "tenant_id": emu.info["tenant_id"],
            "credential_store": f"file://{folder / conn_id}.json",
            "refresh_token": emu.issue_refresh_token(admin),
            "ca_bundle": emu.info["ca_bundle"],
            "authority_host": emu.info["authority_host"],
        }
        return ui_save(conn_id, form, extras)

    lean = {
        "tenant_id": "contoso.onmicrosoft.com",
        "credential_store": "variable://partner_center_form_test",
        "refresh_token": None,  # untouched fields, as the UI writes them
        "ca_bundle": None,
    }
    set_only = {key: value for key, value in lean.items() if value is not None}
    steps = [
        (
            "save_lean",
            "POST",
            ["/api/v2/connections", ui_save("pc_form_lean", {"login": "app-1", "port": 443}, lean)],
        ),
        ("read_lean", "GET", ["/api/v2/connections/pc_form_lean"]),
        (
            "save_set_only",
            "POST",
            ["/api/v2/connections", ui_save("pc_form_set", {"login": "app-1"}, set_only)],
        ),
        ("read_set_only", "GET", ["/api/v2/connections/pc_form_set"]),
        ("save_443", "POST", ["/api/v2/connections", emulator_save("pc_form_443", 443)]),
        ("test_443", "TEST", ["pc_form_443"]),
        ("save_no_port", "POST", ["/api/v2/connections", emulator_save("pc_form_no_port", None)]),
        ("test_no_port", "TEST", ["pc_form_no_port"]),
    ]
    steps += [
        (f"delete_{conn_id}", "DELETE", [f"/api/v2/connections/{conn_id}"])
        for conn_id in ("pc_form_lean", "pc_form_set", "pc_form_443", "pc_form_no_port")
    ]
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _API_SERVER],
            input=json.dumps(steps),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(done.stdout.strip().splitlines()[-1])
        first = emu.referrals()[0]["id"]
        results["expected_success"] = lambda conn_id: (
            f"Connected to {emu.info['api_url']} as {admin}; read referral {first}. Credential store "
            f"file://{folder / conn_id}.json: the refresh token is 0.0 days old "
            "(it dies after 90 days unused)."
        )
        results["lean"], results["set_only"] = lean, set_only
        yield results
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def hook_meta(api_server: dict[str, Any]) -> dict[str, Any]:
    """The ``partner_center`` entry of ``GET /ui/connections/hook_meta``."""
    answer = api_server["hook_meta"]
    assert answer["status"] == 200, answer
    [mine] = [entry for entry in answer["body"] if entry["connection_type"] == "partner_center"]
    return dict(mine)


def test_the_form_names_the_hook(hook_meta: dict[str, Any]) -> None:
    assert hook_meta["hook_class_name"] == "airflow_provider_partner.hooks.partner_center.PartnerCenterHook"
    assert hook_meta["hook_name"] == "Microsoft Partner Center"


def test_the_form_shows_exactly_the_extras_a_person_decides_in_plain_text(hook_meta: dict[str, Any]) -> None:
    extra = hook_meta["extra_fields"]
    assert list(extra) == list(FORM_EXTRAS)
    for name, (label, description) in FORM_EXTRAS.items():
        served = extra[name]
        assert (served["schema"]["title"], served["description"]) == (label, description), name
        assert served["schema"]["type"] == ["string", "null"], name
        assert (served["schema"].get("format") == "password") is (name == "refresh_token"), name
        # Nothing pre-filled: the form would save a default into the connection.
        assert served["value"] is None, name
        assert served["schema"].get("default") is None, name
        assert "`" not in label + description, name


def test_the_standard_fields_are_relabelled_and_port_asks_for_443(hook_meta: dict[str, Any]) -> None:
    # The api-server's names of the standard fields ("schema" is "url_schema" there).
    assert hook_meta["standard_fields"] == {
        "description": None,
        "url_schema": {"hidden": True, "title": None, "placeholder": None},
        "host": {
            "hidden": False,
            "title": "API base URL",
            "placeholder": "https://api.partner.microsoft.com",
        },
        "port": {"hidden": False, "title": "Port (enter 443)", "placeholder": "443"},
        "login": {
            "hidden": False,
            "title": "Application (client) ID",
            "placeholder": "00000000-0000-0000-0000-000000000000",
        },
        "password": {
            "hidden": False,
            "title": "Client secret (empty for a public client)",
            "placeholder": None,
        },
    }


def test_a_save_stores_what_the_form_sent_and_no_default(api_server: dict[str, Any]) -> None:
    # The UI writes the untouched form fields as null (meaning unset: the hook's default applies,
    # now and after an upgrade); no other extra, no default. A save that leaves them out (REST
    # API, CLI) stores just the set keys.
    for save, read, extras in (
        ("save_lean", "read_lean", "lean"),
        ("save_set_only", "read_set_only", "set_only"),
    ):
        assert api_server[save]["status"] == 201, api_server[save]
        stored = api_server[read]["body"]
        assert json.loads(stored["extra"]) == api_server[extras], read
    assert list(json.loads(api_server["read_lean"]["body"]["extra"])) == list(FORM_EXTRAS)
    assert (api_server["read_lean"]["body"]["port"], api_server["read_set_only"]["body"]["port"]) == (
        443,
        None,
    )


def test_the_list_test_button_succeeds_with_port_443(api_server: dict[str, Any]) -> None:
    answer = api_server["test_443"]
    assert answer["sent"]["port"] == 443
    assert answer["sent"]["password"] == "***"  # the list masks the secret; the server restores it
    assert json.loads(answer["sent"]["extra"])["refresh_token"] == "***"
    expected = api_server["expected_success"]("pc_form_443")
    assert (answer["status"], answer["body"]) == (200, {"status": True, "message": expected})


def test_the_list_test_button_without_a_port_is_refused_by_airflow_3_3(api_server: dict[str, Any]) -> None:
    answer = api_server["test_no_port"]
    assert answer["sent"]["port"] == 0  # Number(null)
    if api_server["refuses_port_0"]:  # Airflow 3.3 (3.3.2 here), before apache/airflow#73298
        assert (answer["status"], answer["body"]) == (400, {"detail": REFUSED})
    else:  # Airflow 3.1 and 3.2 merge the request into the stored connection without that check
        expected = api_server["expected_success"]("pc_form_no_port")
        assert (answer["status"], answer["body"]) == (200, {"status": True, "message": expected})


def test_the_test_connections_are_removed(api_server: dict[str, Any]) -> None:
    deleted = [key for key in api_server if key.startswith("delete_")]
    assert [api_server[key]["status"] for key in deleted] == [204] * 4
