"""
A seeded generator of realistic referrals (every field and enum of the Referrals API fact sheet).

Speed matters (200k referrals must load in seconds): nested objects that never differ per record
come from :class:`~.pools.Pools`, drawn once and shared between records (the store never mutates
a record in place). The enums and field names are :mod:`.enums`'.
"""

from __future__ import annotations

import gc
import random
from typing import Any

from partner_center_emulator.clock import DAY_TICKS, TICKS_PER_SECOND, format_ticks
from partner_center_emulator.enums import (
    ASSISTANCE_CODES,
    DATETIME_PATHS,
    DIRECTIONS,
    EXPIRY_DAYS,
    FIELDS,
    MODIFIED_VIA_API,
    MODIFIED_VIA_UI,
    QUALIFICATIONS,
    REGISTRATION_STATUSES,
    SALES_STAGES,
    SIZES,
    SUBSTATUSES,
    TRANSITIONS,
    TYPES,
)
from partner_center_emulator.pools import PARTNER_DOMAIN, SEED_SELLER, Pools, new_guid

Referral = dict[str, Any]

#: Status/substatus pairs weighted New 40%, Active 40%, Closed 20% (before the 14-day rule).
_STATES = tuple(
    [("New", sub) for sub in SUBSTATUSES["New"] for _ in range(4)]
    + [("Active", sub) for sub in SUBSTATUSES["Active"] for _ in range(6)]
    + [("Closed", sub) for sub in SUBSTATUSES["Closed"]]
)


#: What one referral drew before its record is written out (see :meth:`Generator.make`): variant,
#: direction, status, substatus, then the created, updated, expiration, accepted and closed ticks,
#: referral id, engagement id, customer, requirements, team, registration. A plain tuple: a
#: named one cost 10% of the generation time.
_Draw = tuple[Any, ...]


def referral_links(api_url: str, referral_id: str, engagement_id: str) -> dict[str, Any]:
    """The ``links`` object of a referral served by ``api_url``."""
    base = f"{api_url}/v1.0/engagements/referrals"
    return {
        "relatedReferrals": {"uri": f"{base}?$filter=engagementId eq '{engagement_id}'", "method": "GET"},
        "self": {"uri": f"{base}/{referral_id}", "method": "GET"},
    }


def new_etag(rng: random.Random) -> str:
    """An opaque entity tag."""
    return f'"{rng.getrandbits(64):016x}"'


class Generator:
    """
    Makes referrals for one emulator: the initial data set and live arrivals.

    :param seed: the seed (same seed, same data for the same ``now``).
    :param api_url: the emulator's API base, for the ``links`` of each referral.
    :param organization_id: the partner organisation's id.
    """

    def __init__(self, seed: int, api_url: str, organization_id: str) -> None:
        self.rng = random.Random(seed)
        self.api_url = api_url
        self.pools = Pools(self.rng, organization_id)
        #: The partner organisation's MPN id (every referral of this partner carries it).
        self.mpn_id = "4812345"
        self._engagements: list[str] = []

    def generate(self, count: int, now: int, period_days: float) -> list[Referral]:
        """``count`` referrals created over ``period_days`` before ``now``, oldest first, stamps distinct."""
        rng = self.rng
        period = max(int(period_days * DAY_TICKS), count + 1)
        start = now - period
        draw = rng.random
        created = sorted(start + int(draw() * period) for _ in range(count))
        for i in range(1, count):
            if created[i] <= created[i - 1]:
                created[i] = created[i - 1] + 1
        # Hundreds of thousands of new dicts would trigger many full cyclic-GC passes over the
        # growing list (none of it is garbage): pause the collector while building.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return [self.make(c, now) for c in created]
        finally:
            if was_enabled:
                gc.enable()

    def make(self, created: int, now: int, **overrides: Any) -> Referral:
        """One referral created at ``created``, in the state it would be in at ``now``."""
        referral = self._record(self._draw(created, now))
        if overrides:
            referral.update(overrides)
        return referral

    def _draw(self, created: int, now: int) -> _Draw:
        # The order of the draws is the data: same seed, same draws, same referrals.
        rng = self.rng
        draw = rng.random
        pools = self.pools
        variant = pools.variants[int(draw() * len(pools.variants))]
        direction = "Incoming" if draw() < 0.65 else "Outgoing"
        status, substatus = _STATES[int(draw() * len(_STATES))]
        updated = created if draw() < 0.3 else created + int(draw() * (now - created))
        accepted = closed = expiration = None
        if status == "New" and direction == "Incoming":
            expiration = created + EXPIRY_DAYS * DAY_TICKS
            if expiration <= now:
                # Nobody answered within 14 days: the service archived it.
                status, substatus = "Closed", "Expired"
                updated = closed = expiration
        elif status == "Active" or substatus in ("Won", "Lost"):
            accepted = created + (updated - created) // 3
        if status == "Closed" and closed is None:
            closed = updated
        referral_id = new_guid(rng)
        engagements = self._engagements
        if engagements and draw() < 0.2:
            engagement_id = engagements[-1 - int(draw() * min(50, len(engagements)))]
        else:
            engagement_id = new_guid(rng)
            engagements.append(engagement_id)
        customer = pools.customers[int(draw() * len(pools.customers))]
        requirements = pools.requirements[int(draw() * len(pools.requirements))]
        team = [] if (status == "New" and draw() < 0.2) else pools.teams[int(draw() * len(pools.teams))]
        # Only shared (co-sell) referrals that got past New are registered with Microsoft.
        registration = variant["registration"] if variant["type"] == "Shared" and status != "New" else None
        return (
            variant, direction, status, substatus, created, updated, expiration, accepted, closed,
            referral_id, engagement_id, customer, requirements, team, registration,
        )  # fmt: skip

    def _record(self, d: _Draw) -> Referral:
        # Values are drawn in key order (a dict display evaluates left to right): keep it.
        (variant, direction, status, substatus, created, updated, expiration, accepted, closed,
         referral_id, engagement_id, customer, requirements, team, registration) = d  # fmt: skip
        draw = self.rng.random
        return {
            "id": referral_id,
            "engagementId": engagement_id,
            "name": f"{customer['name']} - {requirements['solutions'][0]['name']}",
            "organizationId": self.pools.organization_id,
            "organizationName": "Contoso Ltd",
            "mpnId": self.mpn_id,
            "externalReferenceId": f"CRM-{100000 + int(draw() * 900000)}",
            "createdDateTime": format_ticks(created),
            "updatedDateTime": format_ticks(updated),
            "expirationDateTime": format_ticks(expiration) if expiration else None,
            "acceptedDateTime": format_ticks(accepted) if accepted else None,
            "closedDateTime": format_ticks(closed) if closed else None,
            "status": status,
            "substatus": substatus,
            "statusReason": variant["statusReason"] if status == "Closed" else "",
            "type": variant["type"],
            "qualification": variant["qualification"],
            "direction": direction,
            "referralSource": variant["referralSource"],
            "callToAction": variant["callToAction"],
            "salesStage": variant["salesStage"],
            "customerProfile": customer,
            "consent": variant["consent"],
            "details": {
                "notes": variant["notes"],
                "dealValue": variant["dealValue"] + int(draw() * 1000),
                "currency": variant["currency"],
                "closingDateTime": format_ticks(created + (14 + int(draw() * 166)) * DAY_TICKS),
                "customerRequestedContact": variant["customerRequestedContact"],
                "customerAction": variant["customerAction"],
                "incentiveLevel": variant["incentiveLevel"],
                "requirements": requirements,
            },
            "team": team,
            "inviteContext": variant["inviteContext"] if direction == "Incoming" else None,
            "target": variant["target"],
            "links": referral_links(self.api_url, referral_id, engagement_id),
            "eTag": new_etag(self.rng),
            "campaignId": variant["campaignId"],
            "referralProgram": variant["referralProgram"],
            "trackingInfo": {"microsoftMsxId": variant["microsoftMsxId"]},
            "registrations": [registration] if registration else [],
            "registrationStatus": registration["status"] if registration else "None",
            "quality": variant["quality"],
            "isSpam": False,
            "tags": variant["tags"],
            "favorite": variant["favorite"],
            "lastModifiedVia": MODIFIED_VIA_UI,
        }

    def incoming(self, created: int, **overrides: Any) -> Referral:
        """A new Incoming/New/Pending referral created at ``created`` (a live arrival)."""
        base = {
            "direction": "Incoming",
            "status": "New",
            "substatus": "Pending",
            "createdDateTime": format_ticks(created),
            "updatedDateTime": format_ticks(created),
            "expirationDateTime": format_ticks(created + EXPIRY_DAYS * DAY_TICKS),
            "acceptedDateTime": None,
            "closedDateTime": None,
            "statusReason": "",
            "inviteContext": self.rng.choice(self.pools.invites),
        }
        base.update(overrides)
        return self.make(created, created, **base)


# Imported from here before the enums and pools moved out: kept importable.
__all__ = [
    "ASSISTANCE_CODES",
    "DATETIME_PATHS",
    "DAY_TICKS",
    "DIRECTIONS",
    "EXPIRY_DAYS",
    "FIELDS",
    "MODIFIED_VIA_API",
    "MODIFIED_VIA_UI",
    "PARTNER_DOMAIN",
    "QUALIFICATIONS",
    "REGISTRATION_STATUSES",
    "SALES_STAGES",
    "SEED_SELLER",
    "SIZES",
    "SUBSTATUSES",
    "TICKS_PER_SECOND",
    "TRANSITIONS",
    "TYPES",
    "Generator",
    "Pools",
    "Referral",
    "new_etag",
    "new_guid",
    "referral_links",
]
