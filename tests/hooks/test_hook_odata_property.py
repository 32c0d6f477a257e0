"""Property: any string built into a filter with the odata module matches exactly itself, end to end.

The value travels odata.eq -> the hook's query string -> https -> the emulator's OData parser and
evaluator. The expected set is computed in plain Python from the emulator's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partner_center_emulator import Emulator

from airflow_provider_partner import odata
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

# Near-misses make "exact" mean something: a prefix, a case change, a doubled quote, whitespace.
_NEIGHBOURS = ("", " ", "'", "''", "a", "A")


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[Emulator, PartnerCenterHook]]:
    emulator = Emulator(referrals=10, seed=3).start()
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "AIRFLOW_CONN_PARTNER_CENTER_PROPERTY")}
    os.environ["REQUESTS_CA_BUNDLE"] = emulator.info["ca_bundle"]
    os.environ["AIRFLOW_CONN_PARTNER_CENTER_PROPERTY"] = emulator.info["airflow_conn"]
    try:
        yield emulator, PartnerCenterHook("partner_center_property")
    finally:
        emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=40))
def test_any_string_value_matches_exactly_the_referrals_with_that_value(
    hook: tuple[Emulator, PartnerCenterHook], value: str
) -> None:
    emulator, client = hook
    made = [emulator.release_incoming(1, name=value + tail)[0]["id"] for tail in _NEIGHBOURS]
    if value.swapcase() != value:
        made.append(emulator.release_incoming(1, name=value.swapcase())[0]["id"])

    found = [r["id"] for r in client.iter_referrals(filter=odata.eq("name", value), select=["id", "name"])]

    expected = [r["id"] for r in emulator.referrals() if r["name"] == value]
    assert sorted(found) == sorted(expected)
    assert made[0] in found
