"""
What ``POST /v1.0/engagements/referrals`` creates: the checks of its body, and the new record.

``type``, ``customerProfile``, ``consent`` and ``details`` are required (the fact sheet); the
record gets every field a generated referral has, the body's values except the read-only ones.
"""

from __future__ import annotations

import copy
from typing import Any

from partner_center_emulator.contract import READ_ONLY_FIELDS
from partner_center_emulator.data import Generator, new_etag, new_guid, referral_links
from partner_center_emulator.enums import CHECKED_ENUMS, MODIFIED_VIA_API, SUBSTATUSES
from partner_center_emulator.writes import StoreError

REQUIRED_ON_CREATE = ("type", "customerProfile", "consent", "details")

Referral = dict[str, Any]


def check_new(body: Any) -> tuple[str, str]:
    """
    The status and substatus of a referral to create from ``body`` (``New``/its first by default).

    :raises StoreError: 400 naming the missing or invalid fields.
    """
    if not isinstance(body, dict):
        raise StoreError(400, "BadRequest", "The body must be a JSON object (a referral).")
    missing = [f for f in REQUIRED_ON_CREATE if body.get(f) in (None, "", {}, [])]
    if missing:
        raise StoreError(400, "BadRequest", f"Missing required field(s): {', '.join(missing)}.")
    status = body.get("status", "New")
    if status not in SUBSTATUSES:
        raise StoreError(400, "BadRequest", f"status {status!r} is not one of {', '.join(SUBSTATUSES)}.")
    substatus = body.get("substatus", SUBSTATUSES[status][0])
    if substatus not in SUBSTATUSES[status]:
        raise StoreError(
            400, "InvalidSubstatus", f"substatus {substatus!r} is not valid with status {status}."
        )
    if body["type"] not in CHECKED_ENUMS["type"]:
        raise StoreError(400, "BadRequest", f"type {body['type']!r} is not one of Independent, Shared.")
    return status, substatus


def outgoing_record(
    body: dict[str, Any], generator: Generator, stamp: str, state: tuple[str, str]
) -> Referral:
    """
    A new outgoing referral from a checked POST body, created at ``stamp``.

    :param body: the request body (see :func:`check_new`); not modified.
    :param generator: draws the id, engagement id and eTag; knows the partner's ids and API base.
    :param stamp: the creation time, formatted.
    :param state: the status and substatus :func:`check_new` returned.
    """
    status, substatus = state
    rng = generator.rng
    referral_id = new_guid(rng)
    engagement_id = body.get("engagementId") or new_guid(rng)
    given = {k: v for k, v in copy.deepcopy(body).items() if k not in READ_ONLY_FIELDS}
    return {
        # Every field a generated referral has, with the neutral value of a new one.
        "engagementId": engagement_id,
        "name": body.get("name", ""),
        "mpnId": generator.mpn_id,
        "externalReferenceId": None,
        "qualification": "None",
        "statusReason": "",
        "referralSource": "Partner",
        "callToAction": None,
        "salesStage": "Qualify",
        "team": [],
        "target": [],
        "inviteContext": None,
        "campaignId": None,
        "referralProgram": "None",
        "trackingInfo": {"microsoftMsxId": None},
        "favorite": False,
        "expirationDateTime": None,
        **given,
        # Read-only (contract) or server-owned: never taken from the body.
        "acceptedDateTime": stamp if status == "Active" else None,
        "closedDateTime": stamp if status == "Closed" else None,
        "registrations": [],
        "registrationStatus": "None",
        "quality": "Unknown",
        "isSpam": False,
        "tags": [],
        "lastModifiedVia": MODIFIED_VIA_API,
        "id": referral_id,
        "organizationId": generator.pools.organization_id,
        "organizationName": "Contoso Ltd",
        "direction": "Outgoing",
        "status": status,
        "substatus": substatus,
        "createdDateTime": stamp,
        "updatedDateTime": stamp,
        "links": referral_links(generator.api_url, referral_id, engagement_id),
        "eTag": new_etag(rng),
    }
