"""
What the end-of-session secrets scan looks for, and where (``tests/test_zz_no_secrets_in_logs.py``).

The emulator's secrets are random per instance, so they are recognised by their shape: access
tokens ``emu-at-...``, refresh tokens ``emu-rt-...``, device codes ``emu-dc-...``, client
secrets ``emu~...`` and user passwords ``<16 chars>!9a``.

In a plain session the last test module scans everything captured before it. Under pytest-xdist
(``make unit`` runs two workers) no test runs after all the others, so ``conftest.py`` scans at
the end of the session instead: each worker scans its own Airflow task logs before it removes
them and hands the findings to the controller, which receives every test's captured sections
too, and fails the session if anything was found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

SECRET_SHAPES = {
    "access token": re.compile(r"emu-at-[A-Za-z0-9_-]{20,}"),
    "refresh token": re.compile(r"emu-rt-[A-Za-z0-9_-]{20,}"),
    "device code": re.compile(r"emu-dc-[A-Za-z0-9_-]{20,}"),
    "client secret": re.compile(r"emu~[A-Za-z0-9_-]{20,}"),
    "user password": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16}!9a"),
}

#: The key a pytest-xdist worker hands its log findings to the controller under.
WORKER_OUTPUT_KEY = "partner_secret_leaks_in_logs"


def found(text: str) -> list[str]:
    """The kinds of secret whose shape appears in ``text``."""
    return [kind for kind, shape in SECRET_SHAPES.items() if shape.search(text)]


def leaks_in_sections(sections: Iterable[tuple[str, str]]) -> list[str]:
    """
    ``"<where>: [kinds]"`` for each captured ``(where, text)`` section holding a secret.

    A section is counted once: pytest repeats a test's earlier sections in its teardown report.
    """
    unique = dict.fromkeys(sections)
    return [f"{where}: {kinds}" for where, text in unique if (kinds := found(text))]


def leaks_in_files(log_dir: Path) -> list[str]:
    """``"<path>: [kinds]"`` for each file under ``log_dir`` (Airflow's task logs) holding a secret."""
    if not log_dir.exists():
        return []
    files = sorted(path for path in log_dir.rglob("*") if path.is_file())
    return [f"{path}: {kinds}" for path in files if (kinds := found(path.read_text(errors="replace")))]


def verdict(leaks: list[str]) -> str:
    """The failure message: how many places, and the first 20 of them."""
    return f"secrets found in {len(leaks)} captured section(s)/file(s): {leaks[:20]}"
