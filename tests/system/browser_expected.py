"""
What the browser scenario expects to see, taken from the provider's own definitions and docs.

Nothing here drives the browser (``browser_pages.py`` does): the connection form's labels come
from :mod:`airflow_provider_partner.hooks.connection_schema` (what the form should show), the
operator's extra links from ``docs/lineage.md`` (the documented URLs), and the checks that a
secret is nowhere in a text fail with the secret's name, never its value.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from system_checks import psql_rows
from system_deployment import REPO_ROOT, SystemTestError

#: Where Debian's packages put the browser; ``PARTNER_CENTER_CHROMIUM`` overrides. The headless
#: shell (package ``chromium-headless-shell``, what ``.ci/system-deps`` installs) comes first.
CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/lib/chromium/chromium",
)
#: The per-run screenshots: kept after the run (gitignored), one folder per run.
ARTIFACTS = REPO_ROOT / ".artifacts" / "browser"
#: Airflow 3.3's connection form: its standard fields in the order it shows them, with the
#: titles it gives them unless the provider relabels them (``ui/src/.../ConnectionForm``,
#: ``i18n/locales/en/admin.json`` ``connections.typeMeta.standardFields``).
STANDARD_FIELDS = (
    ("description", "Description"),
    ("host", "Host"),
    ("login", "Login"),
    ("password", "Password"),
    ("port", "Port"),
    ("schema", "Schema"),
)
#: The two fields the form always starts with.
FORM_HEAD = ("Connection ID", "Connection Type")
LINEAGE_DOC = REPO_ROOT / "docs" / "lineage.md"
_LINK_ROW = re.compile(r"^\|\s*(?P<tasks>[^|]+?)\s*\|\s*(?P<name>[^|]+?)\s*\|\s*`(?P<url>[^`]+)`")
REDACTED = "***"


class Hidden(dict[str, Any]):
    """A mapping holding secrets: its repr (in pytest's failure reports) shows only its keys."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={sorted(self)})"


def chromium_executable() -> Path:
    """The system's Chromium binary (Playwright's own download does not work here)."""
    override = os.environ.get("PARTNER_CENTER_CHROMIUM")
    candidates = [override] if override else list(CHROMIUM_CANDIDATES)
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if found and not override:
        return Path(found)
    raise SystemTestError(
        f"no Chromium at {candidates}: run `make system-deps` (apt-get install chromium-headless-shell)"
    )


def artifacts_folder(now: dt.datetime | None = None) -> Path:
    """A new folder ``.artifacts/browser/<UTC timestamp>/`` for this run's screenshots."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    folder = ARTIFACTS / moment.strftime("%Y%m%dT%H%M%S.%fZ")
    folder.mkdir(parents=True)
    return folder


def form_definition() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The provider's connection form: its ``conn-fields`` and its ``ui-field-behaviour``."""
    from airflow_provider_partner.hooks import connection_schema

    return connection_schema.conn_fields(), connection_schema.ui_field_behaviour()


def standard_labels(behaviour: Mapping[str, Any]) -> dict[str, str]:
    """The standard fields the form shows, by name, with the labels it gives them."""
    hidden = set(behaviour.get("hidden-fields", []))
    relabel = behaviour.get("relabeling", {})
    return {name: relabel.get(name, title) for name, title in STANDARD_FIELDS if name not in hidden}


def expected_form_labels() -> list[str]:
    """Every label of the form for the provider's type, in order, from its own definitions."""
    fields, behaviour = form_definition()
    extras = [str(field["label"]) for field in fields.values()]
    return [*FORM_HEAD, *standard_labels(behaviour).values(), *extras]


def documented_links(task: str) -> dict[str, str]:
    """The extra links ``docs/lineage.md`` documents for ``task`` ("operator" or "sensor"): name -> URL."""
    text = LINEAGE_DOC.read_text(encoding="utf-8")
    section = text.split("## Extra links", 1)[1].split("\n## ", 1)[0]
    links: dict[str, str] = {}
    for line in section.splitlines():
        row = _LINK_ROW.match(line)
        if row and task in {t.strip() for t in row["tasks"].split(",")}:
            links[row["name"]] = row["url"]
    if not links:
        raise SystemTestError(f"docs/lineage.md documents no extra link for the {task}")
    return links


def stored_connection(database_url: str, fernet_key: str, conn_id: str) -> Hidden:
    """
    A connection's password and extra as the metadata database holds them, decrypted.

    :return: ``{"password": ..., "extra": {...}}`` (its repr shows no value).
    """
    if not re.fullmatch(r"\w+", conn_id):
        raise SystemTestError(f"not a plain connection id: {conn_id!r}")
    columns = "password, extra, is_encrypted, is_extra_encrypted"
    sql = f"SELECT {columns} FROM connection WHERE conn_id = '{conn_id}'"  # noqa: S608 - a plain word
    [(password, extra, encrypted, extra_encrypted)] = psql_rows(database_url, sql)
    fernet = Fernet(fernet_key.encode())

    def plain(text: str, is_encrypted: str) -> str:
        return fernet.decrypt(text.encode()).decode() if is_encrypted == "t" else text

    extras = json.loads(plain(extra, extra_encrypted))
    return Hidden({"password": plain(password, encrypted), "extra": extras})


def assert_absent(secrets: Mapping[str, str], text: str, where: str) -> None:
    """Fail, naming the secret but never showing it, if any of ``secrets`` occurs in ``text``."""
    found = sorted(name for name, value in secrets.items() if value and value in text)
    if found:
        pytest.fail(f"{', '.join(found)} found in {where}", pytrace=False)


def assert_same_secret(actual: object, expected: str, what: str) -> None:
    """Fail without showing either value if the stored secret differs from the one entered."""
    if not isinstance(actual, str) or not hmac.compare_digest(actual.encode(), expected.encode()):
        pytest.fail(f"the stored {what} is not the one entered in the form", pytrace=False)
