"""
What a user sees, in a real browser: headless Chromium (Debian's ``chromium-headless-shell``)
driven by Playwright against a LocalExecutor deployment's api-server (Airflow 3.3 UI, simple
auth manager), in order: log in; the Partner Center connection form (its fields and labels and
only those); Save (the extra holds exactly what was entered); Test; the operator's extra links;
the asset events and their extras. Screenshots of each step go to
``.artifacts/browser/<timestamp>/`` (kept; the path is printed). No secret may appear in a
page's HTML after Save, on any photographed page, or in any component's log.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from browser_expected import (
    REDACTED,
    Hidden,
    artifacts_folder,
    assert_absent,
    assert_same_secret,
    chromium_executable,
    documented_links,
    expected_form_labels,
    form_definition,
    standard_labels,
    stored_connection,
)
from browser_pages import (
    TIMEOUT_MS,
    Screens,
    connection_test_result,
    editor_text,
    event_card,
    extra_inputs,
    extra_links,
    form_labels,
    goto_connections,
    helper_texts,
    json_editor,
    log_in,
    open_add_form,
    open_connections,
    open_section,
    replace_editor_text,
    shown_extra,
)
from playwright.sync_api import Browser, Page, expect, sync_playwright
from system_checks import LOOKBACK, jsonl_ids, parse_time, record_figure, warehouse_ids
from system_deployment import Airflow, EmulatorProcess, deployment, wait_until

HOOK_NAME = "Microsoft Partner Center"
CONN_ID = "partner_center_browser"
CREDENTIAL_STORE = "variable://partner_center_browser_token_cache"
WAREHOUSE = "referrals_warehouse_load"
OPERATOR_TASK = "extract_referrals"
LOAD_TASK = "load_warehouse"
#: The form as it must look (a literal list, beside the one derived from the provider's schema:
#: a change to the schema must be a deliberate change here too).
LITERAL_FORM_LABELS = [
    "Connection ID",
    "Connection Type",
    "Description",
    "API base URL",
    "Application (client) ID",
    "Client secret (empty for a public client)",
    "Port (enter 443)",
    "Tenant ID",
    "Credential store (token cache location)",
    "Refresh token (bootstrap)",
    "CA bundle",
]
#: Extras Airflow's REST API redacts by their name (the values are checked through the CLI).
REDACTED_EXTRAS = {"refresh_token"}


def _fresh_refresh_token(emu: EmulatorProcess) -> str:
    # A refresh token nobody used yet: the emulator revokes one once redeemed, and the other
    # deployments of the suite start from the emulator's own.
    admin = emu.admin("users")["admin"]["username"]
    issued = emu.admin("issue_refresh_token", {"username": admin})
    return str(issued["refresh_token"] if isinstance(issued, dict) else issued)


@pytest.fixture(scope="module")
def browser_airflow(
    system_venv: Path,
    system_root: Path,
    create_database: Callable[[str], str],
    emu: EmulatorProcess,
    request: pytest.FixtureRequest,
) -> Iterator[Airflow]:
    """A LocalExecutor deployment of its own (the other scenarios' deployments are per module)."""
    began = time.monotonic()
    with deployment(
        system_venv,
        system_root / "airflow-browser",
        create_database("airflow_browser"),
        emu,
        refresh_token=_fresh_refresh_token(emu),
    ) as airflow:
        ready = time.monotonic()
        yield airflow
        if request.session.testsfailed:
            print(f"\n===== Airflow logs (browser) =====\n{airflow.diagnostics()}")
        stopping = time.monotonic()
    # What this module adds to the suite: its deployment's start and stop, and its tests.
    record_figure(
        "browser_module",
        {
            "deployment_start_s": round(ready - began, 1),
            "tests_s": round(stopping - ready, 1),
            "deployment_stop_s": round(time.monotonic() - stopping, 1),
            "total_s": round(time.monotonic() - began, 1),
        },
    )


@pytest.fixture(scope="module")
def entered(emu: EmulatorProcess) -> dict[str, Any]:
    """What the user types into the form: the suite's emulator, a fresh refresh token."""
    return Hidden(
        {
            "host": emu.info["api_url"],
            "login": emu.info["client_id"],
            "password": emu.info["client_secret"],
            "port": 443,
            "extra": {
                "tenant_id": emu.info["tenant_id"],
                "authority_host": emu.info["authority_host"],
                "refresh_token": _fresh_refresh_token(emu),
                "credential_store": CREDENTIAL_STORE,
                "ca_bundle": emu.info["ca_bundle"],
            },
            "username": emu.info["username"],
        }
    )


@pytest.fixture(scope="module")
def secrets(entered: dict[str, Any], browser_airflow: Airflow) -> dict[str, str]:
    """The values that must never show: by name (failure messages name them, never show them)."""
    default = json.loads(browser_airflow.env["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
    return Hidden(
        {
            "the client secret": entered["password"],
            "the refresh token entered in the form": entered["extra"]["refresh_token"],
            "the default connection's refresh token": default["extra"]["refresh_token"],
        }
    )


@pytest.fixture(scope="module")
def screens(secrets: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Screens]:
    """This run's screenshot folder (kept after the run; its path is printed at the end)."""
    shots = Screens(artifacts_folder(), secrets)
    yield shots
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"browser screenshots ({len(shots.taken)}): {shots.folder}"
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from the system (Playwright's own browser download does not work here)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_executable()), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, browser_airflow: Airflow) -> Iterator[Page]:
    """One tab for the whole scenario (the login's cookie carries over); clipboard for Monaco."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def warehouse_run(browser_airflow: Airflow) -> Callable[[], dict[str, Any]]:
    """
    Unpause the warehouse DAG now (the scheduler makes its latest interval's run); the returned
    call waits for that run to succeed and returns it. Started before the form tests, so the
    run goes on while they work.
    """
    airflow = browser_airflow
    airflow.unpause(WAREHOUSE)

    def finished() -> dict[str, Any]:
        runs = wait_until(
            f"a run of {WAREHOUSE}",
            lambda: airflow.api("GET", f"dags/{WAREHOUSE}/dagRuns?limit=10")["dag_runs"],
            120,
            0.5,
            airflow.diagnostics,
        )
        run = airflow.wait_run_done(WAREHOUSE, runs[0]["dag_run_id"], 300)
        assert run["state"] == "success", airflow.diagnostics()
        return run

    return finished


@pytest.mark.timeout(300)
def test_log_in_through_the_login_page(
    page: Page, browser_airflow: Airflow, screens: Screens, warehouse_run: Callable[[], dict[str, Any]]
) -> None:
    # The address the UI sends a signed-out visitor to (straight there: the UI's own bundle,
    # loaded first otherwise, took 15 s of a loaded machine to redirect).
    page.goto(f"{browser_airflow.api_url}/auth/login?next=%2F")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=TIMEOUT_MS)
    screens.shot(page, "login")
    log_in(page, browser_airflow.api_url, "admin", browser_airflow.password)
    screens.shot(page, "home")


@pytest.mark.timeout(300)
def test_the_connection_form_shows_the_providers_fields_only(page: Page, screens: Screens) -> None:
    open_connections(page)
    dialog = open_add_form(page, HOOK_NAME)
    screens.shot(page, "connection-form-standard", element=dialog)
    open_section(dialog, "Extra Fields")
    screens.shot(page, "connection-form-extra", element=dialog)

    fields, _ = form_definition()
    assert form_labels(dialog) == expected_form_labels()
    assert form_labels(dialog) == LITERAL_FORM_LABELS
    assert extra_inputs(dialog) == list(fields)
    texts = helper_texts(dialog)
    assert texts == {name: field["description"] for name, field in fields.items()}
    assert [name for name, text in texts.items() if "`" in text] == []  # plain text, no Markdown
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden(timeout=TIMEOUT_MS)


@pytest.mark.timeout(300)
def test_save_stores_only_what_was_entered(
    page: Page, browser_airflow: Airflow, entered: dict[str, Any], screens: Screens, secrets: dict[str, str]
) -> None:
    airflow = browser_airflow
    fields, behaviour = form_definition()
    labels = standard_labels(behaviour)
    goto_connections(page, airflow.api_url)
    dialog = open_add_form(page, HOOK_NAME)
    dialog.get_by_role("textbox", name="Connection ID").fill(CONN_ID)
    for name in ("host", "login", "password", "port"):
        if name in labels:  # Port: shown for the Test button of Airflow 3.3 (docs/connection.md)
            dialog.get_by_label(labels[name], exact=True).fill(str(entered[name]))

    extra = entered["extra"]
    in_form = {key: value for key, value in extra.items() if key in fields}
    open_section(dialog, "Extra Fields")
    for key, value in in_form.items():
        dialog.locator(f"#element_{key}").fill(value)
    screens.shot(page, "connection-form-filled", html=False, element=dialog)
    if in_form != extra:
        # What the form has no field for goes into the JSON, as a user adds it there; the JSON
        # must hold exactly what was typed into the fields before (no defaults, no nulls).
        open_section(dialog, "Extra Fields JSON")
        editor = json_editor(dialog)
        typed = json.loads(editor_text(page, editor))
        if typed != in_form:
            pytest.fail(f"the Extra Fields JSON holds keys {sorted(typed)}, entered {sorted(in_form)}")
        replace_editor_text(page, editor, json.dumps(extra))
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden(timeout=TIMEOUT_MS)
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    screens.shot(page, "connection-saved")

    stored = airflow.api("GET", f"connections/{CONN_ID}")
    assert {k: stored[k] for k in ("conn_type", "host", "login", "password", "port", "schema")} == {
        "conn_type": "partner_center",
        "host": entered["host"],
        "login": entered["login"],
        "password": REDACTED,
        "port": entered["port"] if "port" in labels else None,
        "schema": None,
    }
    expected_extra = {k: REDACTED if k in REDACTED_EXTRAS else v for k, v in extra.items()}
    assert json.loads(stored["extra"]) == expected_extra
    # The secrets themselves, which the REST API redacts: as the metadata database holds them.
    env = airflow.env
    record = stored_connection(
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env["AIRFLOW__CORE__FERNET_KEY"], CONN_ID
    )
    assert sorted(record["extra"]) == sorted(extra)
    assert_same_secret(record["password"], entered["password"], "client secret")
    assert_same_secret(record["extra"]["refresh_token"], extra["refresh_token"], "refresh token")
    assert_absent(secrets, page.content(), "the connection list's HTML after Save")


@pytest.mark.timeout(300)
def test_the_test_button_succeeds(
    page: Page, browser_airflow: Airflow, entered: dict[str, Any], screens: Screens
) -> None:
    goto_connections(page, browser_airflow.api_url)
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    message = connection_test_result(page, row)
    screens.shot(page, "connection-test")
    screens.shot(page, "connection-test-result", element=page.get_by_role("status").first)
    expected = re.compile(
        r"Test Connection Successful\s+Connected to "
        + re.escape(entered["host"])
        + " as "
        + re.escape(entered["username"])
        + r"; read referral [\w-]+\. Credential store "
        + re.escape(CREDENTIAL_STORE)
        + r": the refresh token is [0-9.]+ days old"
    )
    assert expected.search(message), message


@pytest.mark.timeout(400)
def test_the_operators_extra_links_resolve_to_the_documented_urls(
    page: Page, browser_airflow: Airflow, screens: Screens, warehouse_run: Callable[[], dict[str, Any]]
) -> None:
    run = warehouse_run()
    shown = extra_links(page, browser_airflow.api_url, WAREHOUSE, run["dag_run_id"], OPERATOR_TASK)
    screens.shot(page, "extra-links")
    assert shown == documented_links("operator")
    rest = browser_airflow.api(
        "GET", f"dags/{WAREHOUSE}/dagRuns/{run['dag_run_id']}/taskInstances/{OPERATOR_TASK}/links"
    )
    assert rest["extra_links"] == shown


@pytest.mark.timeout(400)
def test_the_asset_pages_show_the_events_and_their_extras(
    page: Page, browser_airflow: Airflow, screens: Screens, warehouse_run: Callable[[], dict[str, Any]]
) -> None:
    airflow = browser_airflow
    run = warehouse_run()
    query = urlencode({"source_dag_id": WAREHOUSE, "source_run_id": run["dag_run_id"], "limit": 100})
    events = airflow.api("GET", f"assets/events?{query}")["asset_events"]
    by_task = {event["source_task_id"]: event for event in events}
    assert sorted(by_task) == [OPERATOR_TASK, LOAD_TASK], events
    check_event_extras(airflow, run, by_task[OPERATOR_TASK]["extra"], by_task[LOAD_TASK]["extra"])

    for event in events:  # the UI shows each event's extra as the REST API gives it
        total = airflow.api("GET", f"assets/events?asset_id={event['asset_id']}&limit=1")["total_entries"]
        source = f"/dags/{WAREHOUSE}/runs/{run['dag_run_id']}/tasks/{event['source_task_id']}"
        card = event_card(page, airflow.api_url, event["asset_id"], source, total)
        shown = shown_extra(page, card)
        assert shown == event["extra"], f"asset {event['name']}: the page shows another extra"
        screens.shot(page, f"asset-events-{event['source_task_id']}")
        screens.shot(page, f"asset-event-{event['source_task_id']}", element=card)
    record_figure("browser_asset_events", {e["source_task_id"]: e["extra"] for e in events})


def check_event_extras(
    airflow: Airflow, run: dict[str, Any], extracted: dict[str, Any], loaded: dict[str, Any]
) -> None:
    """The two events' extras: the file's window, counts and path; the load's day and rows."""
    start, end = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
    assert start is not None
    assert end is not None
    path = f"file://{airflow.home}/data/referrals/{start:%Y-%m-%d}.jsonl"
    written = jsonl_ids(Path(path.removeprefix("file://")))
    assert extracted == {
        "window_start": f"{start - LOOKBACK:%Y-%m-%dT%H:%M:%SZ}",
        "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        "count": len(written),
        "received": extracted["received"],
        "duplicates_removed": extracted["received"] - len(written),
        "pages": extracted["pages"],
        "format": "jsonl",
        "path": path,
    }
    assert extracted["pages"] >= 1
    result = airflow.xcom(WAREHOUSE, run["dag_run_id"], LOAD_TASK)
    assert loaded == {
        "day": f"{start:%Y-%m-%d}",
        "path": path,
        "rows_read": result["read"],
        "rows_changed": result["changed"],
        "rows_total": result["rows"],
    }
    # The deployment's first load into an empty table: every row read is new, and is all there is.
    assert (result["read"], result["changed"], result["rows"]) == (len(written),) * 3
    assert warehouse_ids(airflow.home / "data" / "warehouse.db") == set(written)


def test_no_secret_in_any_component_log(browser_airflow: Airflow, secrets: dict[str, str]) -> None:
    logs = [*browser_airflow.logs.glob("*.log"), *(browser_airflow.home / "logs").glob("**/*.log")]
    assert any(path.name == "api-server.log" for path in logs)
    for path in logs:
        assert_absent(secrets, path.read_text(encoding="utf-8", errors="replace"), f"the log {path.name}")
    record_figure("browser", {"logs_checked": len(logs), "checked_at": dt.datetime.now(dt.timezone.utc)})
