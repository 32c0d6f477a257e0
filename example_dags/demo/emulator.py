"""
The Partner Center emulator for the demo: its process and its admin API.

:func:`emulator_process` runs the emulator's CLI (``python -m partner_center_emulator``) in a
process group of its own, reads the JSON line it prints once it serves (its API and admin URLs,
admin token, CA bundle and example Airflow connection) and always stops the group, SIGKILL after
a grace. :class:`Emulator` is the client of the running emulator's admin API
(``/_emulator/<action>``), which the scenario uses to release referrals and the summary to read
the emulator's own data.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from example_dags.demo.deployment import DemoError, stop_group

REFERRALS = 20_000
SEED = 2026
STARTUP_TIMEOUT = 120.0


def _stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop ``proc``'s process group: SIGTERM, SIGKILL after ``grace`` s."""
    stop_group(proc, grace)


@contextmanager
def emulator_process(state_dir: Path, referrals: int = REFERRALS) -> Iterator[dict[str, Any]]:
    """Run the emulator CLI in its own process group; yield its info line; always stop it."""
    command = [
        sys.executable,
        "-m",
        "partner_center_emulator",
        "--port",
        "0",
        "--referrals",
        str(referrals),
        "--seed",
        str(SEED),
        "--state-dir",
        str(state_dir),
    ]
    # The command is this interpreter and fixed arguments; its own session lets us kill the group.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)  # noqa: S603
    try:
        info = _read_info_line(proc)
        info["pid"] = proc.pid
        yield info
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _read_info_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_TIMEOUT):
            raise DemoError(f"the emulator printed nothing within {STARTUP_TIMEOUT:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise DemoError(f"the emulator exited with code {proc.wait()} before it was ready")
    info: dict[str, Any] = json.loads(line)
    return info


class Emulator:
    """The running emulator's admin API (plain HTTPS with its admin token)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def admin(self, action: str, body: Any = None) -> Any:
        """GET ``/_emulator/<action>``, or POST it when there is a body."""
        response = requests.request(
            "POST" if body is not None else "GET",
            f"{self.info['admin_url']}/{action}",
            json=body,
            headers={"Authorization": f"Bearer {self.info['admin_token']}"},
            verify=self.info["ca_bundle"],
            timeout=60,
        )
        response.raise_for_status()
        return response.json()
