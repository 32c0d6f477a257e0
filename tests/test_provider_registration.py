"""The provider registers with Airflow through its entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from airflow_provider_partner import __version__
from airflow_provider_partner.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.dist and ep.dist.name == "airflow-provider-partner"
    ]
    assert ep.load() is get_provider_info


def test_package_name_matches_distribution_and_version() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-partner"
    assert info["versions"] == [__version__] == [version("airflow-provider-partner")]


def test_connection_form_marks_secrets_as_password_fields() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    secrets = {
        name for name, f in conn_type["conn-fields"].items() if f["schema"].get("format") == "password"
    }
    assert secrets == {"refresh_token"}  # the legacy user_password is a documented extra, not a form field


def _airflow_cli(*args: str) -> list[dict[str, str]]:
    out = subprocess.run(
        [AIRFLOW, *args, "--output", "json"], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)


@pytest.mark.airflow_line
def test_airflow_providers_list_shows_the_provider() -> None:
    rows = _airflow_cli("providers", "list")
    mine = [r for r in rows if r["package_name"] == "airflow-provider-partner"]
    assert len(mine) == 1
    assert mine[0]["version"] == __version__


@pytest.mark.airflow_line
def test_airflow_providers_hooks_shows_the_connection_type() -> None:
    rows = _airflow_cli("providers", "hooks")
    mine = [r for r in rows if r.get("connection_type") == "partner_center"]
    assert len(mine) == 1
    assert mine[0]["class"] == "airflow_provider_partner.hooks.partner_center.PartnerCenterHook"
    assert mine[0]["package_name"] == "airflow-provider-partner"


@pytest.mark.airflow_line
def test_airflow_providers_triggers_shows_the_triggers_module_and_every_trigger_imports() -> None:
    from airflow_provider_partner.compat import import_string

    rows = _airflow_cli("providers", "triggers")
    mine = [r for r in rows if r["package_name"] == "airflow-provider-partner"]
    assert [r["class"] for r in mine] == ["airflow_provider_partner.triggers.referrals"]
    for name in ("PartnerCenterNewReferralsTrigger", "PartnerCenterNewReferralsEventTrigger"):
        assert import_string(f"{mine[0]['class']}.{name}").__name__ == name
