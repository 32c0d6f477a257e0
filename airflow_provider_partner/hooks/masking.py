"""
Register secrets with Airflow's secrets masker without letting it grow for a process's life.

Airflow's masker keeps every secret it was ever given as one pattern and recompiles one regular
expression of all of them on each new secret. A static secret (a client secret, the connection's
bootstrap refresh token) is registered once, which is what :func:`mask_secrets` does. A rotating
one is not: access tokens are renewed every hour, and with rotation every refresh token is new.
In a process that lives for weeks (the triggerer, ``airflow standalone``, a notebook) each
rotation added a pattern, so registering the 400th JWT-sized token took a second with the GIL
held, and the ``re`` module's cache of those ever larger expressions grew the process by a
gigabyte.

:func:`mask_rotating` keeps the newest :data:`KEEP_GENERATIONS` secrets of each family (one
credential's access tokens, its refresh tokens) masked and takes the older ones out of the
masker again: an access token that old has expired, and a refresh token that old was redeemed
and replaced in the cache, so nothing holds it that could log it. A pattern the masker had before
this module added it (the connection's bootstrap refresh token) is never taken out.

Where the masker runs decides what else is told. In a task, the secret is also sent to the
task's supervisor, as :func:`airflow.sdk.log.mask_secret` does: that supervisor lives for one
task and starts the next one with an empty masker. In the triggerer it is not: its supervisor
lives as long as the triggerer and has no way to forget a secret, so every rotation would add a
pattern there for good. Trigger log lines are masked by that supervisor, so a rotating token in
a trigger is kept out of logs at the source: neither this provider nor ``requests``, ``urllib3``
or ``msal`` (which redacts tokens from its debug events) writes one, and ``make soak`` scans every
log line of a triggerer that lived through thousands of rotations, at DEBUG, for every token the
emulator issued.
"""

from __future__ import annotations

import gc
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "KEEP_GENERATIONS",
    "mask_rotating",
    "mask_rotating_families",
    "mask_secrets",
    "masked_pattern_count",
]

#: How many secrets of one family stay masked: the current one and the one before it. An access
#: token is renewed at half its lifetime, so the one before the previous had expired when the
#: current one was issued; a refresh token two rotations old was redeemed and replaced. Each
#: kept token costs a compile that every later registration pays (about 1 ms per 1.5 KB JWT).
KEEP_GENERATIONS = 2
#: Airflow's masker skips shorter values (``SecretsMasker.min_length_to_mask``).
_MIN_LENGTH = 5

_lock = threading.Lock()
#: family -> the secrets this module added to the masker, oldest first.
_families: dict[str, OrderedDict[str, None]] = {}


def mask_secrets(*values: str | None) -> None:
    """
    Register static secrets with Airflow's secrets masker (task logs and the supervisor's).

    For values that live as long as the connection: each distinct value is one pattern for the
    process's life.

    :param values: secrets; empty values are skipped.
    """
    from airflow.sdk.log import mask_secret

    for value in values:
        if value:
            mask_secret(value)


def mask_rotating(family: str, *secrets: str | None) -> None:
    """
    Mask the newest secrets of a rotating family; forget the ones :data:`KEEP_GENERATIONS` older.

    :param family: what rotates, e.g. ``"<conn_id> access token"``: the generations are counted
        per family.
    :param secrets: the family's current secrets; empty and too short values are skipped.
    """
    mask_rotating_families({family: secrets})


def mask_rotating_families(families: Mapping[str, Iterable[str | None]]) -> None:
    """
    :func:`mask_rotating` for several families at once, with one compile of the masker at most.

    A rotation renews an access token and a refresh token together: registered apart, each
    would recompile the masker's expression of every secret (about 1 ms per 1.5 KB JWT).

    :param families: each family's current secrets.
    """
    masker = _masker()
    added: list[str] = []
    retired: list[str] = []
    with _lock:
        for family, secrets in families.items():
            current = [secret for secret in secrets if secret and len(secret) >= _MIN_LENGTH]
            if current:
                new, old = _rotate(masker, _families.setdefault(family, OrderedDict()), current)
                added += new
                retired += old
        if added or retired:
            _update_masker(masker, added, retired)
    comms = _task_supervisor() if added else None
    if comms is not None:
        _tell_supervisor(comms, added)


def _rotate(masker: Any, held: OrderedDict[str, None], current: list[str]) -> tuple[list[str], list[str]]:
    """``(added, retired)`` of one family: the current secrets newest, the oldest beyond the limit."""
    for secret in current:
        if secret in held:
            held.move_to_end(secret)
    # A secret whose pattern the masker had before (a static one, told to the supervisor when it
    # was registered) is left alone: not ours to add, compile again or take out.
    added = [
        secret
        for secret in dict.fromkeys(current)
        if secret not in held and _owns_new_pattern(masker, secret)
    ]
    for secret in added:
        held[secret] = None
    retired: list[str] = []
    # The current secrets were moved to the end: however many there are, none is dropped.
    while len(held) > max(KEEP_GENERATIONS, len(current)):
        retired.append(held.popitem(last=False)[0])
    return added, retired


def masked_pattern_count() -> int:
    """How many patterns the process's secrets masker holds (for the soak's figures)."""
    return len(_masker().patterns)


def _masker() -> Any:
    from airflow_provider_partner.compat import secrets_masker

    return secrets_masker()


def _patterns_of(masker: Any, secret: str) -> set[str]:
    """The patterns the masker makes of a secret: itself and its configured adaptations."""
    adaptations = getattr(masker, "_adaptations", None)
    values = list(adaptations(secret)) if adaptations is not None else [secret]
    return {re.escape(value) for value in values if value and len(value) >= _MIN_LENGTH}


def _owns_new_pattern(masker: Any, secret: str) -> bool:
    """Whether none of the secret's patterns was in the masker before (then it is ours to drop)."""
    return not (_patterns_of(masker, secret) & masker.patterns)


def _update_masker(masker: Any, added: list[str], retired: list[str]) -> None:
    """Drop the retired patterns, add the new ones, and compile the expression once."""
    for secret in retired:
        masker.patterns.difference_update(_patterns_of(masker, secret))
    for secret in added:
        # What SecretsMasker.add_mask(secret) adds (no name: always masked; its skip list holds
        # only words such as "airflow", never a token), without its compile per secret.
        masker.patterns.update(_patterns_of(masker, secret))
    # The parse makes a few objects per character (tens of thousands for a few JWTs), short-lived
    # and free of cycles: with the collector on they set off full collections of the whole heap
    # (100 ms in a process that has imported Airflow) in the middle of a registration.
    collecting = gc.isenabled()
    gc.disable()
    try:
        masker.replacer = re.compile("|".join(masker.patterns)) if masker.patterns else None
    finally:
        if collecting:
            gc.enable()
    # Every compile lands in the re module's cache (up to 512 expressions, each as long as all
    # the secrets of its day): empty it, or the retired expressions stay in memory until evicted.
    re.purge()


def _task_supervisor() -> Any:
    """The comms to this process's supervisor when it is a task's (which starts each task afresh)."""
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return None if comms is None or type(comms).__name__ == "TriggerCommsDecoder" else comms


def _tell_supervisor(comms: Any, secrets: list[str]) -> None:
    from contextlib import suppress

    from airflow.sdk.execution_time.comms import MaskSecret

    with suppress(Exception):
        for secret in secrets:
            comms.send(MaskSecret(value=secret, name=None))
