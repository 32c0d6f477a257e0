"""
Writes to a referral: the refused-write error, JSON Patch (``replace``/``add``), the schema check,
``If-Match`` and the status rules of an update.

The store's ``update`` and ``create`` use them; the rules are the contract's
(``contract.PATCHABLE_PATHS``, ``READ_ONLY_FIELDS``, the referral JSON Schema) and the fact
sheet's (status transitions, substatus per status).
"""

from __future__ import annotations

from typing import Any

from partner_center_emulator.contract import PATCHABLE_PATHS, READ_ONLY_FIELDS, referral_problem
from partner_center_emulator.enums import CHECKED_ENUMS, SUBSTATUSES, TRANSITIONS

__all__ = ["StoreError", "apply_operation", "check_schema", "check_update", "etag_matches"]

Referral = dict[str, Any]


class StoreError(Exception):
    """A refused write: ``status`` is the HTTP status, ``code``/``message`` go in the error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _pointer(path: str) -> list[str]:
    if not path.startswith("/") or path == "/":
        raise StoreError(
            400, "BadRequest", f"JSON Patch path {path!r} must be a JSON Pointer such as /status."
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_operation(document: Referral, op: dict[str, Any]) -> None:
    """
    Apply one JSON Patch operation to ``document`` in place.

    :raises StoreError: 400 naming what is wrong with the operation.
    """
    kind, path = op.get("op"), op.get("path")
    if kind not in ("replace", "add"):
        raise StoreError(400, "BadRequest", f"JSON Patch op {kind!r} is not supported; use replace or add.")
    if not isinstance(path, str):
        raise StoreError(400, "BadRequest", "Every JSON Patch operation needs a string 'path'.")
    if "value" not in op:
        raise StoreError(400, "BadRequest", f"JSON Patch {kind} of {path} needs a 'value'.")
    parts = _pointer(path)
    if parts[0] in READ_ONLY_FIELDS:
        raise StoreError(400, "BadRequest", f"'{parts[0]}' is read-only and cannot be changed.")
    if path not in PATCHABLE_PATHS:
        raise StoreError(
            400,
            "BadRequest",
            f"JSON Patch path {path} cannot be changed; a PATCH may change only "
            f"{', '.join(sorted(PATCHABLE_PATHS))}.",
        )
    target: Any = document
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.get(part)
        if not isinstance(target, (dict, list)):
            raise StoreError(400, "BadRequest", f"JSON Patch path {path} does not exist in the referral.")
    last = parts[-1]
    if isinstance(target, list):
        if last == "-" and kind == "add":
            target.append(op["value"])
            return
        index = int(last) if last.isdigit() else -1
        if not 0 <= index < len(target) + (kind == "add"):
            raise StoreError(400, "BadRequest", f"JSON Patch path {path}: index out of range.")
        if kind == "add":
            target.insert(index, op["value"])
        else:
            target[index] = op["value"]
        return
    if kind == "replace" and last not in target:
        raise StoreError(400, "BadRequest", f"JSON Patch replace: {path} does not exist; use add.")
    target[last] = op["value"]


def check_schema(record: Referral) -> None:
    """
    Refuse a referral the contract's JSON Schema rejects.

    :raises StoreError: 400 ``InvalidValue`` naming the problem.
    """
    problem = referral_problem(record)
    if problem is not None:
        raise StoreError(400, "InvalidValue", problem)


def check_update(current: Referral, updated: Referral) -> None:
    """
    Refuse an update that sets an unknown enum value, an illegal status move or a wrong substatus.

    :raises StoreError: 400 naming the field and the values allowed.
    """
    for field, allowed in CHECKED_ENUMS.items():
        if updated.get(field) != current.get(field) and updated.get(field) not in allowed:
            raise StoreError(
                400, "BadRequest", f"{field} {updated.get(field)!r} is not one of {', '.join(allowed)}."
            )
    old, new = current["status"], updated["status"]
    if new not in TRANSITIONS[old]:
        raise StoreError(
            400,
            "InvalidStatusTransition",
            f"A referral cannot move from status {old} to {new}; from {old} it can move to "
            f"{', '.join(sorted(TRANSITIONS[old]))}.",
        )
    if updated["substatus"] not in SUBSTATUSES[new]:
        raise StoreError(
            400,
            "InvalidSubstatus",
            f"substatus {updated['substatus']!r} is not valid with status {new}; "
            f"use one of {', '.join(SUBSTATUSES[new])}.",
        )


def etag_matches(if_match: str | None, etag: str) -> bool:
    """Whether an ``If-Match`` header allows a write to a record with ``etag`` (none and ``*`` do)."""
    if if_match is None or if_match.strip() == "*":
        return True
    return _bare_etag(if_match) == _bare_etag(etag)


def _bare_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')
