"""
What a person sees in the demo's Airflow UI, stored and checked through the REST API.

:func:`store_connections` creates the demo's connections in the metadata database
(``POST /api/v2/connections``), as a user does in Admin -> Connections, so the UI lists them.
:func:`test_button` presses the connection list's "Test" button: it sends the stored fields as
the UI sends them (``POST /api/v2/connections/test``). :func:`pages` names the pages worth
opening after a run, each with the REST path of the object it shows, and :func:`task_log` reads a
task's log as the UI's log view does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from example_dags.demo.deployment import DemoError, LocalAirflow

# The pages' routes are those of Airflow 3's UI (airflow/ui/src/router.tsx). A connection has no
# page of its own (its form is a dialog of the list); the list filtered to it is one click away.
CONNECTIONS_PAGE = "connections?name_pattern={conn_id}"
MASKED = "***"  # how the REST API shows a stored password, and what the UI sends back unchanged


@dataclass(frozen=True)
class Page:
    """
    A page of the UI worth opening.

    :param title: what it shows.
    :param url: its full address.
    :param api: the ``/api/v2/`` path of the object it shows (``None`` for a list).
    """

    title: str
    url: str
    api: str | None


def store_connections(airflow: LocalAirflow, connections: list[dict[str, Any]]) -> None:
    """
    Create each connection in the metadata database through the REST API.

    :param connections: ``POST /api/v2/connections`` bodies (their ``extra`` a dict).
    """
    for body in connections:
        airflow.api("POST", "connections", {**body, "extra": json.dumps(body.get("extra") or {})})


def test_button(airflow: LocalAirflow, conn_id: str) -> str:
    """
    Press the connection list's Test button for ``conn_id``; its message, or :class:`DemoError`.

    The list sends the row as ``GET /api/v2/connections`` shows it: the password masked (the
    server then uses the stored one), empty strings for unset text fields and the port as a
    number (``Number(null)`` is 0, which differs from a stored empty port, so the server would
    refuse: "The host or port to test differs from the stored connection").
    """
    row = airflow.api("GET", f"connections/{quote(conn_id)}")
    body = {
        "connection_id": row["connection_id"],
        "conn_type": row["conn_type"],
        "description": row.get("description") or "",
        "host": row.get("host") or "",
        "login": row.get("login") or "",
        "password": row.get("password") or "",
        "port": int(row.get("port") or 0),
        "schema": row.get("schema") or "",
        "extra": row.get("extra") or "{}",
    }
    answer = airflow.api("POST", "connections/test", body)
    if not answer.get("status"):
        raise DemoError(f"the Test button of connection {conn_id} failed: {answer.get('message')}")
    return str(answer["message"])


def pages(airflow: LocalAirflow, conn_id: str, dag_ids: list[str], asset_dag: str) -> list[Page]:
    """
    The connection's row, the DAGs, the assets page and each asset ``asset_dag`` produces.

    An asset counts when a task of ``asset_dag`` declares it or an event of one of its runs
    names it (an asset behind an alias is known only from its events).
    """
    url = airflow.url
    found = [
        Page(
            f"connection {conn_id} (its row: edit, Test)",
            f"{url}/{CONNECTIONS_PAGE.format(conn_id=conn_id)}",
            f"connections/{quote(conn_id)}",
        ),
    ]
    found += [Page(f"DAG {dag_id}", f"{url}/dags/{dag_id}", f"dags/{dag_id}") for dag_id in dag_ids]
    found.append(Page("assets", f"{url}/assets", None))
    produced = {
        asset["id"]: asset["uri"]
        for asset in airflow.api("GET", f"assets?dag_ids={asset_dag}&limit=100")["assets"]
        if any(task["dag_id"] == asset_dag for task in asset.get("producing_tasks") or [])
    }
    events = airflow.api("GET", f"assets/events?source_dag_id={asset_dag}&limit=100")["asset_events"]
    produced.update({event["asset_id"]: event["uri"] for event in events})
    found += [
        Page(f"asset {uri}", f"{url}/assets/{asset_id}", f"assets/{asset_id}")
        for asset_id, uri in sorted(produced.items())
    ]
    return found


def task_log(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """
    A task's latest try's log as the UI's log view reads it: its sources and its lines.

    The REST API puts the sources (files read, log servers asked) first, between ``::group::``
    and ``::endgroup::`` markers.
    """
    path = f"dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
    try_number = airflow.api("GET", path)["try_number"]
    content = airflow.api("GET", f"{path}/logs/{try_number}?full_content=true")["content"]
    events = [str(entry.get("event", "")) for entry in content]
    end = events.index("::endgroup::") + 1 if "::endgroup::" in events else 0
    return {"sources": events[1 : end - 1] if end else [], "lines": events[end:], "try": try_number}


def check_log(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str, trigger: bool = False) -> str:
    """
    Raise :class:`DemoError` unless the UI shows the task's log (and its trigger's, if asked).

    :param trigger: the task deferred: the triggerer's log file must be among the sources.
    :return: a line saying what the log view shows.
    """
    log = task_log(airflow, dag_id, run_id, task_id)
    shown = _shown(log, trigger)
    if shown is None:
        raise DemoError(
            f"the log view of {dag_id}.{task_id} ({run_id}) shows {len(log['lines'])} line(s) from "
            f"{log['sources']}: expected the task's log file{' and its trigger log file' if trigger else ''}"
        )
    return f"{task_id} {shown}"


def trigger_log_shown(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str) -> str | None:
    """
    While ``task_id`` is deferred: what the log view shows once it has the trigger's log file.

    :return: a line saying so, ``None`` while the triggerer has not written its file yet.
    """
    log = task_log(airflow, dag_id, run_id, task_id)
    shown = _shown(log, trigger=True)
    if shown is None:
        return None
    refused = any(source.startswith("Could not read served logs") for source in log["sources"])
    return shown + ("; no log server to ask ('Could not read served logs')" if refused else "")


def _shown(log: dict[str, Any], trigger: bool) -> str | None:
    """What a log view shows, or ``None`` without lines, a log file or (if asked) a trigger's."""
    files = [source for source in log["sources"] if source.startswith("/")]
    triggers = [source for source in files if ".trigger." in source]
    if not log["lines"] or not files or (trigger and not triggers):
        return None
    return f"{len(log['lines'])} lines from {len(files)} file(s)" + (
        f", the triggerer's {Path(triggers[0]).name} among them" if triggers else ""
    )
