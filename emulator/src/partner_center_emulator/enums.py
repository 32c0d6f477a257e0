"""
A referral's enums, status rules and field names (the fact sheet's and the connector contract's).

The generator draws from them, the store checks writes against them, and the query parser
accepts the fields and date-time paths listed here.
"""

from __future__ import annotations

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
#: Enum fields a write is checked against (an update may keep a value outside them, not set one).
CHECKED_ENUMS = {
    "status": tuple(SUBSTATUSES),
    "type": TYPES,
    "qualification": QUALIFICATIONS,
    "salesStage": SALES_STAGES,
}
