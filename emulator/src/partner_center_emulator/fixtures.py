"""
Pytest fixtures that run the emulator in-process (a ``pytest11`` plugin: loaded wherever installed).

- ``emulator_factory(**kwargs)``: starts an :class:`Emulator`; every one is stopped at teardown.
- ``partner_center_emulator``: ``Emulator(referrals=2000, seed=7)`` with ``REQUESTS_CA_BUNDLE``
  pointing at its CA and ``AIRFLOW_CONN_PARTNER_CENTER_DEFAULT`` set to its connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Any]]:
    """Start emulators with any constructor arguments; all are stopped when the test ends."""
    from partner_center_emulator import Emulator

    started: list[Emulator] = []

    def factory(**kwargs: Any) -> Emulator:
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def partner_center_emulator(emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A 2000-referral emulator (seed 7), trusted by requests and wired as the default connection."""
    emulator = emulator_factory(referrals=2000, seed=7)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.info["ca_bundle"])
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", emulator.info["airflow_conn"])
    return emulator
