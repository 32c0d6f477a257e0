"""
What the published contract says a referral is, and what a PATCH may change.

``referral.schema.json`` beside this module is this project's JSON Schema of the V3 Referral,
written from the facts of Microsoft's connector contract (types, enums, read-only fields). The
store checks every created and patched referral against it, and the tests check every referral
the emulator serves.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

#: The paths the contract's ``UpdateReferralDetails`` lists: a PATCH may touch these only.
PATCHABLE_PATHS = frozenset(
    {
        "/campaignId", "/consent/consentToShareReferralWithMicrosoftSellers", "/customerProfile/team",
        "/customerProfile/team/-", "/details/closingDateTime", "/details/currency", "/details/dealValue",
        "/details/notes", "/details/requirements/solutions", "/details/requirements/solutions/-",
        "/externalReferenceId", "/referralProgram", "/salesStage", "/status", "/substatus",
        "/statusReason", "/team", "/team/-",
    }
)  # fmt: skip
#: Fields the contract marks read-only (``readOnly: true``), and those the server owns.
READ_ONLY_FIELDS = frozenset(
    {
        "registrations", "registrationStatus", "quality", "isSpam", "tags", "acceptedDateTime",
        "closedDateTime", "direction", "id", "createdDateTime", "updatedDateTime", "eTag",
        "organizationId", "links", "lastModifiedVia", "@odata.context",
    }
)  # fmt: skip


@cache
def referral_schema() -> dict[str, Any]:
    """The JSON Schema of a referral (loaded once)."""
    text = resources.files("partner_center_emulator").joinpath("referral.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(referral_schema())


def referral_problem(document: dict[str, Any]) -> str | None:
    """
    The first way ``document`` breaks the schema, as a sentence naming the field; ``None`` if valid.

    :param document: a referral.
    """
    error = next(iter(sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = "/" + "/".join(str(part) for part in error.absolute_path)
    return f"The value of {where} is invalid: {error.message}."
