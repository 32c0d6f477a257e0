"""
A seeded generator of realistic referrals (every field and enum of the Referrals API fact sheet).

Speed matters (200k referrals must load in seconds), so nested objects that never differ per
record (customer profiles, teams, requirements, consent, invite contexts) come from pools built
once and are shared between records. That is safe because the store never mutates a record in
place: an update replaces the record with a copy (see ``store.py``).
"""

from __future__ import annotations

import gc
import random
from typing import Any

from partner_center_emulator import vocabulary as words
from partner_center_emulator.clock import DAY_TICKS, TICKS_PER_SECOND, format_ticks

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
TYPES = ("Independent", "Shared")
QUALIFICATIONS = ("None", "Direct", "MarketingQualified", "SalesQualified")
DIRECTIONS = ("Incoming", "Outgoing")
SALES_STAGES = ("Qualify", "Develop", "Propose", "Close")
SIZES = (
    "1to9employees",
    "10to50employees",
    "51to250employees",
    "251to1000employees",
    "1001to5000employees",
    "5001to10000employees",
    "10001to20000employees",
    "Morethan20000employees",
)
EXPIRY_DAYS = 14
#: The contract's enum of inviteContext.assistanceRequestCode.
ASSISTANCE_CODES = (
    "Unknown",
    "GeneralOrOther",
    "CustomerTechnicalArchitecture",
    "ProofOfConceptOrDemo",
    "QuotesOrLicensing",
    "PostSalesCustomerSuccess",
    "WorkloadSpecificValueProposition",
)
#: Registration statuses: undocumented; named after the contract's statusHistory stamps.
REGISTRATION_STATUSES = ("ReviewPending", "ActionRequired", "Passed", "Failed", "Approved")
#: lastModifiedVia values: undocumented (a free string in the contract); the emulator's guesses.
MODIFIED_VIA_UI = "PartnerCenter"
MODIFIED_VIA_API = "API"

#: Every top-level field a referral has (``$select`` and ``$filter`` accept these).
FIELDS = frozenset(
    {
        "id", "engagementId", "name", "organizationId", "organizationName", "mpnId",
        "externalReferenceId", "createdDateTime", "updatedDateTime", "expirationDateTime",
        "acceptedDateTime", "closedDateTime", "status", "substatus", "statusReason", "type",
        "qualification", "direction", "referralSource", "callToAction", "salesStage",
        "customerProfile", "consent", "details", "team", "inviteContext", "target", "links",
        "eTag", "campaignId", "referralProgram", "trackingInfo", "registrations",
        "registrationStatus", "quality", "isSpam", "tags", "favorite", "lastModifiedVia",
    }
)  # fmt: skip
#: Paths whose values are date-times (literals must be unquoted date-times).
DATETIME_PATHS = frozenset(
    {
        ("createdDateTime",), ("updatedDateTime",), ("expirationDateTime",), ("acceptedDateTime",),
        ("closedDateTime",), ("details", "closingDateTime"),
    }
)  # fmt: skip

PARTNER_DOMAIN = "contoso.com"
#: The seed doc's seller: the emulator's Referral User, and a member of many teams.
SEED_SELLER = "r2d2@contoso.com"

#: Status/substatus pairs weighted New 40%, Active 40%, Closed 20% (before the 14-day rule).
_STATES = tuple(
    [("New", sub) for sub in SUBSTATUSES["New"] for _ in range(4)]
    + [("Active", sub) for sub in SUBSTATUSES["Active"] for _ in range(6)]
    + [("Closed", sub) for sub in SUBSTATUSES["Closed"]]
)


def new_guid(rng: random.Random) -> str:
    """A version-4 GUID drawn from ``rng`` (reproducible for a seed)."""
    # Same text as str(uuid.UUID(int=..., version=4)), without the object (generation is hot).
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


class Pools:
    """
    Shared building blocks drawn once per seed.

    :param rng: the seeded generator.
    :param organization_id: the partner organisation's id (the emulator tenant's organisation).
    """

    def __init__(self, rng: random.Random, organization_id: str) -> None:
        self.organization_id = organization_id
        self.sellers = [self._member(rng, PARTNER_DOMAIN) for _ in range(39)]
        self.sellers.append(
            {
                "firstName": "R2",
                "lastName": "D2",
                "phoneNumber": "+1 425 555 0100",
                "email": SEED_SELLER,
                "title": "Partner Seller",
                "contactPreference": {"locale": "en-US", "disableNotifications": False},
            }
        )
        self.teams = [self._team(rng) for _ in range(400)]
        self.customers = [self._customer(rng) for _ in range(600)]
        self.requirements = [self._requirements(rng) for _ in range(200)]
        self.consents = [
            {
                "consentToContact": a,
                "consentToToShareInfoWithOthers": b,
                "consentToShareReferralWithMicrosoftSellers": c,
            }
            for a in (True, False)
            for b in (True, False)
            for c in (True, False)
        ]
        self.invites = [self._invite(rng) for _ in range(60)]
        self.targets = [
            [{"id": new_guid(rng), "type": rng.choice(["Partner", "Microsoft", "Customer"])}]
            for _ in range(60)
        ]
        # A third of the bundles carry a deal registration (a co-sell referral registered with
        # Microsoft); the others none ("None" registration status, as before).
        self.registrations: list[dict[str, Any] | None] = [None, None] + [
            self._registration(rng) for _ in range(20)
        ]
        # Bundles of the small per-record choices: one draw per record instead of twenty.
        self.variants = [self._variant(rng) for _ in range(2000)]

    def _variant(self, rng: random.Random) -> dict[str, Any]:
        return {
            "type": rng.choice(TYPES),
            "qualification": rng.choice(QUALIFICATIONS),
            "referralSource": rng.choice(words.SOURCES),
            "callToAction": rng.choice(words.CALLS),
            "salesStage": rng.choice(SALES_STAGES),
            "statusReason": rng.choice(("", "Budget", "No response", "Won it")),
            "consent": rng.choice(self.consents),
            "notes": rng.choice(words.NOTES),
            "dealValue": rng.choice((0, 1000, 2500, 10000, 50000, 250000)),
            "currency": rng.choice(words.CURRENCIES),
            "customerRequestedContact": rng.random() < 0.6,
            "customerAction": rng.choice(("Contact", "Purchase", "Trial", None)),
            "incentiveLevel": rng.choice(("None", "Tier1", "Tier2")),
            "inviteContext": rng.choice(self.invites),
            "target": rng.choice(self.targets),
            "campaignId": rng.choice((None, "FY27-AZ-MIGRATE", "FY27-M365-COPILOT")),
            "referralProgram": rng.choice(("None", "CoSell", "MarketplaceLead")),
            "quality": rng.choice(("Unknown", "Low", "Medium", "High")),
            "tags": rng.choice(([], ["priority"], ["renewal", "azure"])),
            "favorite": rng.random() < 0.1,
            "microsoftMsxId": rng.choice((None, f"7-{rng.randint(10**9, 10**10 - 1)}")),
            "registration": rng.choice(self.registrations),
        }

    @staticmethod
    def _registration(rng: random.Random) -> dict[str, Any]:
        """A deal registration with every field of the contract (stamps fixed per pool entry)."""
        status = rng.choice(REGISTRATION_STATUSES)
        stamp = (
            f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.0000000Z"
        )
        solution = rng.choice(words.SOLUTIONS)
        history: dict[str, str | None] = {
            f"{s[0].lower()}{s[1:]}DateTime": None for s in REGISTRATION_STATUSES
        }
        history["reviewPendingDateTime"] = stamp
        history[f"{status[0].lower()}{status[1:]}DateTime"] = stamp
        return {
            "id": new_guid(rng),
            "registrationDateTime": stamp,
            "status": status,
            "statusReason": "" if status != "Failed" else "Missing customer consent",
            "contract": {
                "value": float(rng.choice((5000, 25000, 120000))),
                "currency": rng.choice(words.CURRENCIES),
                "startDateTime": stamp,
                "endDateTime": stamp.replace("2026", "2027", 1),
                "signDateTime": stamp,
                "term": rng.choice(("Finite", "Perpetual")),
            },
            "solutionDetails": [
                {
                    "id": solution[0],
                    "name": solution[1],
                    "value": float(rng.choice((1000, 5000, 20000))),
                    "isDeployedOnAzure": rng.random() < 0.8,
                    "primaryDeploymentOn": rng.choice(("Customer", "Partner")),
                    "pricingModel": rng.choice(("PayAsYouGo", "Other")),
                    "marketplaceTransactionDetails": {
                        "isMarketplaceTransacted": False,
                        "marketplaceTransactionDateTime": None,
                    },
                }
            ],
            "statusHistory": history,
        }

    @staticmethod
    def _member(rng: random.Random, domain: str) -> dict[str, Any]:
        first, last = rng.choice(words.FIRST), rng.choice(words.LAST)
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        return {
            "firstName": first,
            "lastName": last,
            "phoneNumber": f"+1 {rng.randint(200, 999)} 555 {rng.randint(0, 9999):04d}",
            "email": f"{local}{rng.randint(1, 99)}@{domain}",
            "title": rng.choice(words.TITLES),
            "contactPreference": {
                "locale": rng.choice(words.LOCALES),
                "disableNotifications": rng.random() < 0.2,
            },
        }

    def _team(self, rng: random.Random) -> list[dict[str, Any]]:
        size = rng.choice((1, 1, 2, 2, 3))
        team = rng.sample(self.sellers, size)
        # The seed doc's seller is on about one team in six, so sample 3 is never vacuous.
        if rng.random() < 0.15 and self.sellers[-1] not in team:
            team[0] = self.sellers[-1]
        return team

    def _customer(self, rng: random.Random) -> dict[str, Any]:
        name = f"{rng.choice(words.COMPANY_ROOTS)} {rng.choice(words.COMPANY_SUFFIX)}"
        domain = f"{rng.choice(words.COMPANY_ROOTS).split()[0].lower().replace(chr(39), '')}.example"
        country, state, city, postal, region = rng.choice(words.PLACES)
        return {
            "name": name,
            "size": rng.choice(SIZES),
            "isMatchingComplete": rng.random() < 0.7,
            "address": {
                "addressLine1": f"{rng.randint(1, 999)} {rng.choice(words.STREETS)} St",
                "addressLine2": rng.choice(["", "", f"Suite {rng.randint(100, 999)}"]),
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": country,
                "region": region,
            },
            "team": [self._member(rng, domain) for _ in range(rng.choice((0, 1, 1, 2)))],
            "ids": [{"profileType": "AzureAD", "id": new_guid(rng)}],
        }

    @staticmethod
    def _requirements(rng: random.Random) -> dict[str, Any]:
        solution = rng.choice(words.SOLUTIONS)
        return {
            "industries": [{"id": i} for i in rng.sample(words.INDUSTRIES, rng.randint(1, 2))],
            "products": [{"id": p} for p in rng.sample(words.PRODUCTS, rng.randint(1, 2))],
            "services": [{"id": s} for s in rng.sample(words.SERVICES, rng.randint(0, 2))],
            "solutions": [{"id": solution[0], "name": solution[1]}],
            "offers": rng.choice([[], [{"id": f"OFFER-{solution[0][4:]}", "name": f"{solution[1]} offer"}]]),
            "salesPlays": [],
            # The contract: an object holding an "attributes" list of {id, type}.
            "additionalRequirements": {
                "attributes": rng.choice(
                    [
                        [],
                        [{"id": "AzureSpecialization", "type": "Specialization"}],
                        [{"id": "Gold", "type": "Tier"}],
                    ]
                )
            },
        }

    def _invite(self, rng: random.Random) -> dict[str, Any]:
        from_msft = rng.random() < 0.5
        return {
            "notes": rng.choice(words.NOTES),
            "assistanceRequestCode": rng.choice(ASSISTANCE_CODES),
            "invitedMpnId": str(rng.randint(1_000_000, 9_999_999)),
            "invitedBy": {
                "organizationId": "msft" if from_msft else new_guid(rng),
                "organizationName": "Microsoft"
                if from_msft
                else rng.choice(words.COMPANY_ROOTS) + " Partners",
            },
        }


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
        referral: Referral = {
            "id": referral_id,
            "engagementId": engagement_id,
            "name": f"{customer['name']} - {requirements['solutions'][0]['name']}",
            "organizationId": pools.organization_id,
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
            "eTag": new_etag(rng),
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
        if overrides:
            referral.update(overrides)
        return referral

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
