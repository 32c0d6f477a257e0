"""
The building blocks referrals share, drawn once per seed: sellers, teams, customers,
requirements, consents, invite contexts, targets and bundles of the per-record choices.

Nested objects that never differ per record come from these pools and are shared between records
(safe because the store never mutates a record in place; see ``store.py``). The enums below
are the ones the pools draw from.
"""

from __future__ import annotations

import random
from typing import Any

from partner_center_emulator import vocabulary as words

TYPES = ("Independent", "Shared")
QUALIFICATIONS = ("None", "Direct", "MarketingQualified", "SalesQualified")
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

PARTNER_DOMAIN = "contoso.com"
#: The seed doc's seller: the emulator's Referral User, and a member of many teams.
SEED_SELLER = "r2d2@contoso.com"


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
            "offers": [],
            "salesPlays": [],
            "additionalRequirements": rng.choice([None, "Prefers a partner with an Azure specialization"]),
        }

    def _invite(self, rng: random.Random) -> dict[str, Any]:
        from_msft = rng.random() < 0.5
        return {
            "notes": rng.choice(words.NOTES),
            "assistanceRequestCode": rng.choice([None, "AR-" + str(rng.randint(1000, 9999))]),
            "invitedMpnId": str(rng.randint(1_000_000, 9_999_999)),
            "invitedBy": {
                "organizationId": "msft" if from_msft else new_guid(rng),
                "organizationName": "Microsoft"
                if from_msft
                else rng.choice(words.COMPANY_ROOTS) + " Partners",
            },
        }
