"""
The generator's pools: building blocks drawn once per seed and shared between referrals.

Speed matters (200k referrals must load in seconds), so nested objects that never differ per
record (customer profiles, teams, requirements, consent, invite contexts) come from pools built
once and are shared between records. That is safe because the store never mutates a record in
place: an update replaces the record with a copy (see ``store.py``).
"""

from __future__ import annotations

import random
from typing import Any

from partner_center_emulator import vocabulary as words
from partner_center_emulator.enums import (
    ASSISTANCE_CODES,
    QUALIFICATIONS,
    REGISTRATION_STATUSES,
    SALES_STAGES,
    SIZES,
    TYPES,
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
