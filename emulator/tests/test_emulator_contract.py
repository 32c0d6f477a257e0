"""Every referral served matches the project's V3 Referral schema; PATCH and POST follow the contract."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from partner_center_emulator.contract import PATCHABLE_PATHS, referral_schema

REFERRALS = "/v1.0/engagements/referrals"
ALLOWED = ", ".join(sorted(PATCHABLE_PATHS))
MEMBER = {
    "firstName": "Søren",
    "lastName": "D'Angelo",
    "phoneNumber": "+45 5555 0102",
    "email": "soren.dangelo@contoso.com",
    "title": "Solution Architect",
    "contactPreference": {"locale": "da-DK", "disableNotifications": True},
}


def _invalid(served: list[dict]) -> list[tuple[str, str]]:
    validator = Draft202012Validator(referral_schema())
    return [(r.get("id", "?"), e.message) for r in served for e in validator.iter_errors(r)]


def _error(code: str, description: str) -> dict:
    return {"code": code, "description": description, "data": [], "source": "PartnerCenterEmulator"}


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(referral_schema())


def test_every_served_referral_matches_the_schema(emulator_factory, make_api) -> None:
    emu = emulator_factory(referrals=20_000, seed=11, page_size=1000)
    api = make_api(emu)
    served = [record for page in api.all_pages() for record in page["value"]]
    assert len(served) == 20_000
    assert _invalid(served) == []
    one = api.get(f"{REFERRALS}/{served[7]['id']}").json()
    created = api.request(
        "POST",
        REFERRALS,
        json={
            "name": "Schema check",
            "type": "Shared",
            "customerProfile": {"name": "Fabrikam", "address": {"country": "DK"}},
            "consent": {"consentToContact": True},
            "details": {"dealValue": 99.5, "currency": "EUR"},
        },
    ).json()
    target = next(r for r in served if r["status"] == "New")
    patched = api.request(
        "PATCH",
        f"{REFERRALS}/{target['id']}",
        json=[
            {"op": "replace", "path": "/status", "value": "Active"},
            {"op": "replace", "path": "/substatus", "value": "Accepted"},
            {"op": "add", "path": "/team/-", "value": MEMBER},
            {"op": "replace", "path": "/details/dealValue", "value": 1234.5},
            {"op": "replace", "path": "/details/closingDateTime", "value": "2027-01-31T00:00:00Z"},
        ],
        headers={"Prefer": "return=representation"},
    ).json()
    assert _invalid([one, created, patched, *emu.referrals()[-1:]]) == []
    # What the contract has and the generator fills (the list of once-missing fields).
    assert {r["lastModifiedVia"] for r in served} == {"PartnerCenter"}
    assert {type(r["favorite"]) for r in served} == {bool}
    assert any(r["trackingInfo"]["microsoftMsxId"] for r in served)
    assert any(r["details"]["requirements"]["offers"] for r in served)
    assert any(r["registrations"] for r in served)
    assert all(r["registrationStatus"] == (r["registrations"][0]["status"] if r["registrations"] else "None")
               for r in served)  # fmt: skip


@pytest.mark.parametrize(
    ("op", "error"),
    [
        *[
            (
                {"op": "replace", "path": path, "value": "x"},
                _error(
                    "BadRequest",
                    f"JSON Patch path {path} cannot be changed; a PATCH may change only {ALLOWED}.",
                ),
            )
            for path in ("/name", "/type", "/qualification", "/mpnId", "/expirationDateTime")
        ],
        *[
            (
                {"op": "replace", "path": f"/{field}", "value": "x"},
                _error("BadRequest", f"'{field}' is read-only and cannot be changed."),
            )
            for field in ("quality", "isSpam", "registrationStatus", "acceptedDateTime", "closedDateTime")
        ],
        (
            {"op": "add", "path": "/tags/-", "value": "hot"},
            _error("BadRequest", "'tags' is read-only and cannot be changed."),
        ),
        (
            {"op": "replace", "path": "/details/dealValue", "value": "not a number"},
            _error(
                "InvalidValue",
                "The value of /details/dealValue is invalid: 'not a number' is not of type 'number'.",
            ),
        ),
        (
            {"op": "replace", "path": "/details/closingDateTime", "value": "not a date"},
            _error(
                "InvalidValue",
                "The value of /details/closingDateTime is invalid: "
                "'not a date' is not valid under any of the given schemas.",
            ),
        ),
        (
            {"op": "replace", "path": "/details/currency", "value": "NOTACURRENCY"},
            _error(
                "InvalidValue",
                "The value of /details/currency is invalid: 'NOTACURRENCY' does not match '^[A-Z]{3}$'.",
            ),
        ),
        (
            {"op": "add", "path": "/team/-", "value": {"email": 42}},
            _error("InvalidValue", "The value of /team/0/email is invalid: 42 is not of type 'string'."),
        ),
    ],
    ids=lambda value: value["path"] if isinstance(value, dict) and "path" in value else None,
)
def test_patch_refuses_what_the_contract_refuses(emu, api, op: dict, error: dict) -> None:
    record = next(r for r in emu.referrals() if r["status"] == "New" and not r["team"])
    response = api.request("PATCH", f"{REFERRALS}/{record['id']}", json=[op])
    assert response.status_code == 400
    assert response.json() == error
    assert next(r for r in emu.referrals() if r["id"] == record["id"]) == record


def test_patch_accepts_every_path_the_contract_lists(emu, api) -> None:
    record = next(r for r in emu.referrals() if r["status"] == "New")
    values = {
        "/campaignId": "FY27-NEW", "/consent/consentToShareReferralWithMicrosoftSellers": True,
        "/customerProfile/team": [MEMBER], "/customerProfile/team/-": MEMBER,
        "/details/closingDateTime": "2027-03-01T00:00:00Z", "/details/currency": "DKK",
        "/details/dealValue": 5000, "/details/notes": "Follow up", "/details/requirements/solutions": [],
        "/details/requirements/solutions/-": {"id": "SOL-Sentinel", "name": "Microsoft Sentinel"},
        "/externalReferenceId": "CRM-1", "/referralProgram": "CoSell", "/salesStage": "Develop",
        "/status": "New", "/substatus": "Received", "/statusReason": "Checking", "/team": [MEMBER],
        "/team/-": MEMBER,
    }  # fmt: skip
    assert set(values) == PATCHABLE_PATHS
    ops = [
        {"op": "add" if path.endswith("/-") else "replace", "path": path, "value": v}
        for path, v in values.items()
    ]
    response = api.request(
        "PATCH", f"{REFERRALS}/{record['id']}", json=ops, headers={"Prefer": "return=representation"}
    )
    assert response.status_code == 200, response.text
    now = response.json()
    assert (now["customerProfile"]["team"], now["team"]) == ([MEMBER, MEMBER], [MEMBER, MEMBER])
    assert now["details"]["requirements"]["solutions"] == [
        {"id": "SOL-Sentinel", "name": "Microsoft Sentinel"}
    ]
    assert (now["salesStage"], now["substatus"], now["details"]["dealValue"]) == ("Develop", "Received", 5000)
    assert _invalid([now]) == []


def test_post_ignores_read_only_fields_and_put_is_not_modelled(emu, api) -> None:
    body = {
        "type": "Independent",
        "customerProfile": {"name": "Northwind", "address": {"country": "GB"}},
        "consent": {"consentToContact": False},
        "details": {"dealValue": 10, "currency": "GBP"},
        "tags": ["vip"],
        "quality": "High",
        "isSpam": True,
        "direction": "Incoming",
    }
    created = api.request("POST", REFERRALS, json=body).json()
    assert (created["tags"], created["quality"], created["isSpam"], created["direction"]) == (
        [], "Unknown", False, "Outgoing")  # fmt: skip
    put = api.request("PUT", f"{REFERRALS}/{created['id']}", json=created)
    assert put.status_code == 405
    assert put.json() == _error(
        "MethodNotAllowed", f"No such endpoint: PUT /v1.0/engagements/referrals/{created['id']}"
    )
