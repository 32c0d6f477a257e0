"""
The Airflow 3.3 UI pages the browser scenario uses, driven with Playwright.

Every wait is Playwright's auto-waiting or an ``expect(...)`` with :data:`TIMEOUT_MS`; nothing
sleeps. Screenshots go through :class:`Screens`, which checks each page it photographs for the
scenario's secrets first (the visible text always, the whole HTML once the form is saved).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_expected import assert_absent
from playwright.sync_api import Locator, Page, expect

#: The bound of every wait on the page (a busy 2-core machine).
TIMEOUT_MS = 30_000
TEST_RESULT = re.compile(r"Test Connection (Successful|Failed)")


@dataclass
class Screens:
    """The run's screenshots: numbered PNGs in one folder, each page checked for secrets first."""

    folder: Path
    secrets: Mapping[str, str] = field(repr=False)
    taken: list[Path] = field(default_factory=list)

    def shot(self, page: Page, name: str, *, html: bool = True, element: Locator | None = None) -> Path:
        """
        Save ``NN-name.png`` of the page (or of ``element``).

        :param html: also check the page's whole HTML (False only while the unsaved form holds
            what the user typed: its inputs' values are in the DOM, not on screen).
        """
        assert_absent(self.secrets, page.locator("body").inner_text(), f"the text of the page {name!r}")
        if html:
            assert_absent(self.secrets, page.content(), f"the HTML of the page {name!r}")
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        if element is not None:
            element.screenshot(path=path, animations="disabled", timeout=TIMEOUT_MS)
        else:
            page.screenshot(path=path, full_page=True, animations="disabled", timeout=TIMEOUT_MS)
        self.taken.append(path)
        return path


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the simple auth manager's login page (open), as a person does."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/", timeout=TIMEOUT_MS)
    expect(page.get_by_role("button", name="Admin")).to_be_visible(timeout=TIMEOUT_MS)


def open_connections(page: Page) -> None:
    """Admin -> Connections from the navigation bar."""
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible(timeout=TIMEOUT_MS)


def goto_connections(page: Page, base_url: str) -> None:
    """The connection list by its address (whatever the page showed before, a dialog say)."""
    page.goto(f"{base_url}/connections", timeout=TIMEOUT_MS)
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible(timeout=TIMEOUT_MS)


def open_add_form(page: Page, hook_name: str) -> Locator:
    """Add Connection, type ``hook_name``; return the dialog."""
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    combo = dialog.get_by_role("combobox", name="Connection Type")
    combo.fill(hook_name)
    page.get_by_role("option", name=hook_name, exact=True).click()
    expect(dialog.get_by_role("button", name="Extra Fields", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    return dialog


def open_section(dialog: Locator, title: str) -> None:
    """Open one of the form's accordion sections (the form keeps one open at a time)."""
    trigger = dialog.get_by_role("button", name=title, exact=True)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true", timeout=TIMEOUT_MS)


def form_labels(dialog: Locator) -> list[str]:
    """The text of every field label in the dialog, in order (required marks dropped)."""
    labels = dialog.locator('label[data-scope="field"][data-part="label"]')
    return [text.replace("*", "").strip() for text in labels.all_inner_texts()]


def extra_inputs(dialog: Locator) -> list[str]:
    """The extra fields the form renders, by name (the UI names their inputs ``element_<name>``)."""
    ids = dialog.locator('[id^="element_"]').evaluate_all("(nodes) => nodes.map((n) => n.id)")
    return [str(name).removeprefix("element_") for name in ids]


def helper_texts(dialog: Locator) -> dict[str, str]:
    """Each extra field's help text as shown, by field name."""
    texts: dict[str, str] = {}
    for name in extra_inputs(dialog):
        described_by = dialog.locator(f"#element_{name}").get_attribute("aria-describedby")
        texts[name] = dialog.locator(f'[id="{described_by}"]').inner_text() if described_by else ""
    return texts


def editor_text(page: Page, editor: Locator) -> str:
    """The whole text of a Monaco editor, through its own copy (it renders only visible lines)."""
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("ControlOrMeta+C")
    page.keyboard.press("ControlOrMeta+Home")  # the selection off again (screenshots)
    return str(page.evaluate("navigator.clipboard.readText()"))


def replace_editor_text(page: Page, editor: Locator, text: str) -> None:
    """Replace a Monaco editor's text as a paste would (no auto-closed brackets)."""
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def json_editor(dialog: Locator) -> Locator:
    """The form's Extra Fields JSON editor (open its section first)."""
    return dialog.get_by_role("region", name="Extra Fields JSON").locator(".monaco-editor")


def connection_test_result(page: Page, row: Locator) -> str:
    """Click the row's Test button; return the notification's text once it arrives."""
    row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=TEST_RESULT).first
    expect(toast).to_be_visible(timeout=TIMEOUT_MS)
    return toast.inner_text()


def extra_links(page: Page, base_url: str, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """The task instance's Extra Links as its Details tab shows them: name -> href."""
    page.goto(f"{base_url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/details", timeout=TIMEOUT_MS)
    heading = page.get_by_role("heading", name="Extra Links", exact=True)
    expect(heading).to_be_visible(timeout=TIMEOUT_MS)
    section = heading.locator("xpath=..")
    return {
        link.inner_text().strip(): str(link.get_attribute("href"))
        for link in section.get_by_role("link").all()
    }


def event_card(page: Page, base_url: str, asset_id: int, source_href: str, total: int) -> Locator:
    """Open the asset's page; return the event card whose source link is ``source_href``."""
    page.goto(f"{base_url}/assets/{asset_id}", timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name=f"{total} Asset Event", exact=False)).to_be_visible(
        timeout=TIMEOUT_MS
    )
    cards = page.get_by_test_id("card-list").locator(":scope > div")
    card = cards.filter(has=page.locator(f'a[href="{source_href}"]'))
    expect(card).to_have_count(1, timeout=TIMEOUT_MS)
    return card


def shown_extra(page: Page, card: Locator) -> Any:
    """
    The event's extra as the card's JSON view holds it (every fold opened, for the screenshot).
    """
    editor = card.locator(".monaco-editor")
    expect(editor).to_be_visible(timeout=TIMEOUT_MS)
    editor.click()
    page.keyboard.press("ControlOrMeta+K")  # Monaco's Unfold All chord
    page.keyboard.press("ControlOrMeta+J")
    expect(card.locator(".codicon-folding-collapsed")).to_have_count(0, timeout=TIMEOUT_MS)
    return json.loads(editor_text(page, editor))
