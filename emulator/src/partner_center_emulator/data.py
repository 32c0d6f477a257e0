"""
A seeded generator of realistic referrals (every field and enum of the Referrals API fact sheet).

Speed matters (200k referrals must load in seconds), so nested objects that never differ per
record (customer profiles, teams, requirements, consent, invite contexts) come from pools built
once (``pools.py``) and are shared between records. That is safe because the store never
mutates a record in place: an update replaces the record with a copy (see ``store.py``).
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from typing import Any

from partner_center_emulator.clock import DAY_TICKS, TICKS_PER_SECOND, format_ticks
from partner_center_emulator.pools import Pools, new_guid

Referral = dict[str, Any]

#: status -> the substatus values allowed with it.
SUBSTATUSES: dict[str, tuple[str, ...]] = {
    "New": ("Pending", "Received", "None"),
    "Active": ("Accepted", "None"),
    "Closed": ("Won", "Lost", "Declined", "Expired", "None"),
}
#: status -> the statuses an update may move it to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "New": frozenset({"New", "Active", "Closed"}),
    "Active": frozenset({"Active", "Closed"}),
    "Closed": frozenset({"Closed"}),
}
DIRECTIONS = ("Incoming", "Outgoing")
EXPIRY_DAYS = 14

#: Every top-level field a referral has (``$select`` and ``$filter`` accept these).
FIELDS = frozenset(
    {
        "id", "engagementId", "name", "organizationId", "organizationName", "mpnId",
        "externalReferenceId", "createdDateTime", "updatedDateTime", "expirationDateTime",
        "acceptedDateTime", "closedDateTime", "status", "substatus", "statusReason", "type",
        "qualification", "direction", "referralSource", "callToAction", "salesStage",
        "customerProfile", "consent", "details", "team", "inviteContext", "target", "links",
        "eTag", "campaignId", "referralProgram", "trackingInfo", "registrations",
        "registrationStatus", "quality", "isSpam", "tags",
    }
)  # fmt: skip
#: Paths whose values are date-times (literals must be unquoted date-times).
DATETIME_PATHS = frozenset(
    {
        ("createdDateTime",), ("updatedDateTime",), ("expirationDateTime",), ("acceptedDateTime",),
        ("closedDateTime",), ("details", "closingDateTime"),
    }
)  # fmt: skip


#: Status/substatus pairs weighted New 40%, Active 40%, Closed 20% (before the 14-day rule).
_STATES = tuple(
    [("New", sub) for sub in SUBSTATUSES["New"] for _ in range(4)]
    + [("Active", sub) for sub in SUBSTATUSES["Active"] for _ in range(6)]
    + [("Closed", sub) for sub in SUBSTATUSES["Closed"]]
)


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


def _lifecycle(
    created: int, now: int, direction: str, draw: Callable[[], float]
) -> tuple[str, str, int, int | None, int | None, int | None]:
    """``(status, substatus, updated, accepted, closed, expiration)`` of a referral at ``now``."""
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
    return status, substatus, updated, accepted, closed, expiration


def _details(
    variant: dict[str, Any], created: int, requirements: dict[str, Any], draw: Callable[[], float]
) -> dict[str, Any]:
    """The ``details`` object of a referral (draws its deal value, then its closing date)."""
    return {
        "notes": variant["notes"],
        "dealValue": variant["dealValue"] + int(draw() * 1000),
        "currency": variant["currency"],
        "closingDateTime": format_ticks(created + (14 + int(draw() * 166)) * DAY_TICKS),
        "customerRequestedContact": variant["customerRequestedContact"],
        "customerAction": variant["customerAction"],
        "incentiveLevel": variant["incentiveLevel"],
        "requirements": requirements,
    }


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
        rng = self.rng
        draw = rng.random
        pools = self.pools
        variant = pools.variants[int(draw() * len(pools.variants))]
        direction = "Incoming" if draw() < 0.65 else "Outgoing"
        status, substatus, updated, accepted, closed, expiration = _lifecycle(created, now, direction, draw)
        referral_id = new_guid(rng)
        engagement_id = self._engagement_id()
        customer = pools.customers[int(draw() * len(pools.customers))]
        requirements = pools.requirements[int(draw() * len(pools.requirements))]
        team = [] if (status == "New" and draw() < 0.2) else pools.teams[int(draw() * len(pools.teams))]
        referral: Referral = {
            "id": referral_id,
            "engagementId": engagement_id,
            "name": f"{customer['name']} - {requirements['solutions'][0]['name']}",
            "organizationId": pools.organization_id,
            "organizationName": "Contoso Ltd",
            "mpnId": "4812345",
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
            "details": _details(variant, created, requirements, draw),
            "team": team,
            "inviteContext": variant["inviteContext"] if direction == "Incoming" else None,
            "target": variant["target"],
            "links": referral_links(self.api_url, referral_id, engagement_id),
            "eTag": new_etag(rng),
            "campaignId": variant["campaignId"],
            "referralProgram": variant["referralProgram"],
            "trackingInfo": None,
            "registrations": [],
            "registrationStatus": "None",
            "quality": variant["quality"],
            "isSpam": False,
            "tags": variant["tags"],
        }
        if overrides:
            referral.update(overrides)
        return referral

    def _engagement_id(self) -> str:
        # One referral in five joins a recent engagement; the others start their own.
        rng = self.rng
        engagements = self._engagements
        if engagements and rng.random() < 0.2:
            return engagements[-1 - int(rng.random() * min(50, len(engagements)))]
        engagement_id = new_guid(rng)
        engagements.append(engagement_id)
        return engagement_id

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


__all__ = [
    "DATETIME_PATHS",
    "DAY_TICKS",
    "FIELDS",
    "SUBSTATUSES",
    "TICKS_PER_SECOND",
    "TRANSITIONS",
    "Generator",
    "new_etag",
    "new_guid",
]
