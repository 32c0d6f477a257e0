"""
The connection form as the api-server serves it (``/ui/connections/hook_meta``), on every release.

Airflow 3.2+ builds it from the provider info's ``conn-fields`` / ``ui-field-behaviour``; 3.1
ignores those and calls the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour``.
Both must give the user the same form. The api-server's own FastAPI app answers in a process of
its own (``airflow.api_fastapi.app.create_app``, what ``airflow api-server`` serves), with the
simple auth manager's token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.hooks.connection_schema import EXTRA_FIELDS, UI_FIELD_BEHAVIOUR, FieldKind

# What the api-server serves differs between Airflow releases: one Python per line runs it.
pytestmark = pytest.mark.airflow_line

# The api-server is a process of its own: its form is built by the first look at the providers'
# hooks in that process (Airflow 3.1 imports them under stand-ins for WTForms then). An earlier
# test of this session may already have imported the hooks, so the app is asked in a new process.
_READ_HOOK_META = """
import json
from airflow.api_fastapi.app import create_app
from fastapi.testclient import TestClient

client = TestClient(create_app())
token = client.get("/auth/token")
assert token.status_code in (200, 201), token.text
answer = client.get(
    "/ui/connections/hook_meta",
    headers={"Authorization": "Bearer " + token.json()["access_token"]},
)
assert answer.status_code == 200, answer.text
print(json.dumps(answer.json()))
"""


@pytest.fixture(scope="module")
def hook_meta(airflow_db: Path) -> dict[str, Any]:
    """The ``partner_center`` entry of ``GET /ui/connections/hook_meta``, from a fresh process."""
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    done = subprocess.run(
        [sys.executable, "-c", _READ_HOOK_META], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    [mine] = [entry for entry in answer if entry["connection_type"] == "partner_center"]
    return dict(mine)


def test_the_form_names_the_hook(hook_meta: dict[str, Any]) -> None:
    assert hook_meta["hook_class_name"] == "airflow_provider_partner.hooks.partner_center.PartnerCenterHook"
    assert hook_meta["hook_name"] == "Microsoft Partner Center"


def test_every_extra_field_is_in_the_form_with_its_label_and_kind(hook_meta: dict[str, Any]) -> None:
    extra = hook_meta["extra_fields"]
    assert list(extra) == [field.name for field in EXTRA_FIELDS]
    for field in EXTRA_FIELDS:
        served = extra[field.name]
        assert served["schema"]["title"] == field.label
        assert served["description"] == field.description
        kind = served["schema"]["type"]
        if field.kind is FieldKind.BOOL:
            assert kind == ["boolean", "null"]
        elif field.kind is FieldKind.INTEGER:
            assert kind == ["integer", "null"]
        elif field.kind is not FieldKind.NUMBER:  # 3.1's form has no number field: text there
            assert kind == ["string", "null"]
        assert (served["schema"].get("format") == "password") is (field.kind is FieldKind.SECRET)
        if field.default is not None:
            assert served["value"] == field.default


def test_what_a_user_sees_in_the_form(hook_meta: dict[str, Any]) -> None:
    standard, extra = hook_meta["standard_fields"], hook_meta["extra_fields"]
    assert standard["host"] == {
        "hidden": False,
        "title": "API base URL",
        "placeholder": "https://api.partner.microsoft.com",
    }
    assert standard["login"]["title"] == "Application (client) ID"
    assert (standard["port"]["hidden"], standard["url_schema"]["hidden"]) == (True, True)
    assert extra["tenant_id"]["schema"]["title"] == "Tenant ID"
    assert extra["tenant_id"]["value"] == "organizations"
    assert extra["refresh_token"]["schema"]["format"] == "password"
    assert extra["verify"]["schema"]["type"] == ["boolean", "null"]


def test_the_standard_fields_are_relabelled_and_hidden_as_declared(hook_meta: dict[str, Any]) -> None:
    standard = hook_meta["standard_fields"]
    # The api-server's names of the standard fields ("schema" is "url_schema" there).
    served = {
        "url_schema" if name == "schema" else name: name
        for name in ("host", "login", "password", "port", "schema", "description")
    }
    hidden = set(UI_FIELD_BEHAVIOUR["hidden-fields"])
    for key, name in served.items():
        field = standard[key]
        label = UI_FIELD_BEHAVIOUR.get("relabeling", {}).get(name)
        placeholder = UI_FIELD_BEHAVIOUR.get("placeholders", {}).get(name)
        if name in hidden or label or placeholder:
            assert field == {"hidden": name in hidden, "title": label, "placeholder": placeholder}, key
        else:
            assert field is None, key
