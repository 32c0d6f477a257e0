"""Rotating secrets stay masked while Airflow's masker stays the same size (hooks/masking.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_partner.compat import secrets_masker
from airflow_provider_partner.hooks import masking
from airflow_provider_partner.hooks.masking import KEEP_GENERATIONS, mask_rotating, masked_pattern_count


def _token() -> str:
    # The size of an Entra ID access token (a JWT of about 1.5 KB).
    return "eyJ" + secrets.token_urlsafe(1125)


@pytest.fixture
def family(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"test {request.node.name}"
    yield name
    # Leave the masker as found: take this test's secrets out again.
    held = masking._families.pop(name, {})
    masker = secrets_masker()
    for secret in held:
        masker.patterns.difference_update(masking._patterns_of(masker, secret))


def test_a_thousand_rotations_leave_the_masker_its_size(family: str) -> None:
    before = masked_pattern_count()
    tokens = [_token() for _ in range(1000)]
    for token in tokens:
        mask_rotating(family, token)
    assert masked_pattern_count() == before + KEEP_GENERATIONS
    text = " | ".join(tokens[-KEEP_GENERATIONS:])
    assert secrets_masker().redact(text) == " | ".join(["***"] * KEEP_GENERATIONS)
    # The older ones were taken out: nothing holds them any more.
    assert secrets_masker().redact(tokens[-KEEP_GENERATIONS - 1]) == tokens[-KEEP_GENERATIONS - 1]


def test_the_current_secrets_of_a_family_stay_however_often_they_are_registered(family: str) -> None:
    current = _token()
    mask_rotating(family, current)
    for _ in range(10):
        mask_rotating(family, _token(), current)  # e.g. the cache's refresh token and a new one
    assert secrets_masker().redact(current) == "***"


def test_a_pattern_the_masker_had_before_is_never_taken_out(family: str) -> None:
    from airflow_provider_partner.hooks.connection import mask_secrets

    bootstrap = "bootstrap-refresh-token-" + secrets.token_urlsafe(16)
    mask_secrets(bootstrap)  # the connection's static refresh token
    mask_rotating(family, bootstrap)
    for _ in range(KEEP_GENERATIONS * 3):
        mask_rotating(family, _token())
    assert secrets_masker().redact(bootstrap) == "***"
    # Nor compiled again each time it is seen among the current secrets.
    replacer = secrets_masker().replacer
    mask_rotating(family, bootstrap)
    assert secrets_masker().replacer is replacer


def test_families_count_their_generations_apart(family: str) -> None:
    other = family + " (other connection)"
    try:
        kept = _token()
        mask_rotating(other, kept)
        for _ in range(KEEP_GENERATIONS * 3):
            mask_rotating(family, _token())
        assert secrets_masker().redact(kept) == "***"
    finally:
        for secret in masking._families.pop(other, {}):
            secrets_masker().patterns.difference_update(masking._patterns_of(secrets_masker(), secret))


def test_every_current_secret_stays_however_many_there_are(family: str) -> None:
    # A cache with more accounts than generations kept: all of its refresh tokens are current.
    current = [_token() for _ in range(KEEP_GENERATIONS + 3)]
    mask_rotating(family, *current)
    mask_rotating(family, *current)
    assert secrets_masker().redact(" ".join(current)) == " ".join(["***"] * len(current))


def test_short_and_empty_values_are_skipped(family: str) -> None:
    before = masked_pattern_count()
    mask_rotating(family, None, "", "abc")
    assert masked_pattern_count() == before


class _Comms:
    """Records what would reach a supervisor."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


class TriggerCommsDecoder(_Comms):
    """Named as the triggerer's comms are (airflow.jobs.triggerer_job_runner)."""


@pytest.mark.parametrize(("comms_class", "told"), [(_Comms, True), (TriggerCommsDecoder, False)])
def test_only_a_task_supervisor_is_told(
    family: str, monkeypatch: pytest.MonkeyPatch, comms_class: type[_Comms], told: bool
) -> None:
    from airflow.sdk.execution_time import task_runner

    comms = comms_class()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    token = _token()
    mask_rotating(family, token)
    assert [message.value for message in comms.sent] == ([token] if told else [])
    # Masked in this process either way.
    assert secrets_masker().redact(token) == "***"


def test_the_triggerer_comms_class_has_the_name_it_is_recognised_by() -> None:
    from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder as Real

    assert Real.__name__ == TriggerCommsDecoder.__name__
