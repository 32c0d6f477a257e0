"""
The demo's deployment (``make demo``, ``make demo-ui``) as a person meets it in the UI.

One real deployment, as ``run_demo.deploy`` makes it (emulator, api-server, scheduler,
dag-processor and triggerer), without the DAG runs of the scenario: its connections are in the
metadata database and pass the Test button, every page ``make demo-ui`` prints answers, and every
socket its processes listen on is on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil
import pytest
import requests

# The demo runs the development venv's Airflow (its UI routes, its CLI); the matrix venvs test
# the provider on the other Airflow lines, not the demo.
pytestmark = pytest.mark.slow


def _listening(groups: set[int]) -> set[tuple[str, int, str]]:
    """Every listening TCP socket of every process in the process groups ``groups``."""
    found: set[tuple[str, int, str]] = set()
    for proc in psutil.process_iter(["name"]):
        try:
            if os.getpgid(proc.pid) not in groups:
                continue
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port, proc.info["name"]))
        except (psutil.Error, ProcessLookupError):
            continue  # gone since the listing: nothing of it listens any more
    return found


def test_the_demo_deployment_as_a_person_meets_it(tmp_path: Path) -> None:
    # One test, not one per check: under pytest-xdist's worksteal, tests of a module can run on
    # both workers, and each would start a deployment of its own.
    import io
    from contextlib import redirect_stdout

    from example_dags.run_demo import deploy

    out = io.StringIO()
    with ExitStack() as stack:
        with redirect_stdout(out):
            airflow, info = deploy(stack, tmp_path / "run", tmp_path / "cache")
        groups = {c.proc.pid for c in airflow.components.values() if c.proc is not None} | {info["pid"]}
        demo = {"airflow": airflow, "info": info, "stdout": out.getvalue(), "groups": groups}
        _every_socket_of_the_demo_is_on_loopback(demo)
        _the_connections_are_in_the_metadata_database_with_only_what_a_user_sets(demo)
        _the_test_button_succeeds_and_no_secret_is_printed(demo)
        _the_pages_demo_ui_prints_answer_and_show_existing_objects(demo)
    assert _listening(groups) == set()  # stopped: nothing of the demo listens any more


def _every_socket_of_the_demo_is_on_loopback(demo: dict[str, Any]) -> None:
    airflow, info = demo["airflow"], demo["info"]
    listening = _listening(demo["groups"])
    assert {(ip, port) for ip, port, _ in listening} == {
        ("127.0.0.1", urlsplit(info["api_url"]).port),  # the emulator
        ("127.0.0.1", urlsplit(airflow.url).port),  # the api-server (UI, REST, execution API)
    }, sorted(listening)
    assert not any("serve-logs" in name for _, _, name in listening)


def _the_connections_are_in_the_metadata_database_with_only_what_a_user_sets(
    demo: dict[str, Any],
) -> None:
    airflow, info = demo["airflow"], demo["info"]
    listed = airflow.api("GET", "connections?limit=100")["connections"]
    assert sorted(c["connection_id"] for c in listed) == [
        "partner_center_default",
        "partner_center_warehouse",
    ]
    conn = airflow.api("GET", "connections/partner_center_default")
    port = urlsplit(info["api_url"]).port
    assert (conn["conn_type"], conn["host"], conn["port"], conn["login"]) == (
        "partner_center",
        f"https://127.0.0.1:{port}",
        port,
        info["client_id"],
    )
    extra = json.loads(conn["extra"])
    assert sorted(extra) == ["authority_host", "ca_bundle", "credential_store", "refresh_token", "tenant_id"]
    assert extra["credential_store"] == "variable://partner_center_token_cache"
    assert (extra["tenant_id"], extra["authority_host"]) == (info["tenant_id"], info["api_url"])
    warehouse = airflow.api("GET", "connections/partner_center_warehouse")
    assert (warehouse["conn_type"], warehouse["host"]) == (
        "sqlite",
        str(Path(airflow.env["PARTNER_CENTER_DATA_DIR"]) / "warehouse.db"),
    )


def _the_test_button_succeeds_and_no_secret_is_printed(demo: dict[str, Any]) -> None:
    from example_dags.demo.ui import test_button

    info, stdout = demo["info"], demo["stdout"]
    tested = [line for line in stdout.splitlines() if line.startswith("[demo] Test button: ok (")]
    assert len(tested) == 1, stdout
    assert tested[0].startswith(
        f"[demo] Test button: ok (Connected to {info['api_url']} as {info['username']};"
    )
    assert "read referral" in tested[0]
    # Pressed again, as a person would after reading the message.
    assert test_button(demo["airflow"], "partner_center_default").startswith(
        f"Connected to {info['api_url']}"
    )
    for secret in ("client_secret", "refresh_token", "password", "admin_token"):
        assert info[secret] not in stdout, secret


def _the_pages_demo_ui_prints_answer_and_show_existing_objects(demo: dict[str, Any]) -> None:
    from example_dags.demo.ui import pages

    airflow = demo["airflow"]
    found = pages(
        airflow,
        "partner_center_default",
        ["referrals_warehouse_load", "referrals_followup"],
        "referrals_warehouse_load",
    )
    url = airflow.url
    fixed = [
        (f"{url}/connections?name_pattern=partner_center_default", "connections/partner_center_default"),
        (f"{url}/dags/referrals_warehouse_load", "dags/referrals_warehouse_load"),
        (f"{url}/dags/referrals_followup", "dags/referrals_followup"),
        (f"{url}/assets", None),
    ]
    assert [(p.url, p.api) for p in found[: len(fixed)]] == fixed
    assets = found[len(fixed) :]
    # The warehouse load's declared output; an asset behind an alias joins once a run emitted it.
    assert assets, [p.url for p in found]
    for page in found:
        answer = requests.get(page.url, timeout=30)
        assert answer.status_code == 200, page.url
        assert '<div id="root"' in answer.text, page.url  # the UI's single page, routed in the browser
        if page.api is not None:
            assert airflow.api("GET", page.api), page.api
    for page in assets:
        uri = page.title.removeprefix("asset ")
        by_uri = airflow.api("GET", f"assets?uri_pattern={quote(uri, safe='')}")["assets"]
        assert [a["id"] for a in by_uri if a["uri"] == uri] == [int(page.url.rsplit("/", 1)[1])]
        assert page.api == f"assets/{page.url.rsplit('/', 1)[1]}"
