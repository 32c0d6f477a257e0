"""GET by id, PATCH (JSON Patch, If-Match, transitions), POST, headers, arrivals and expiry."""

from __future__ import annotations

import uuid

from partner_center_emulator.clock import DAY_TICKS, format_ticks, parse_to_ticks

REFERRALS = "/v1.0/engagements/referrals"
SELLER = {
    "firstName": "Zoë",
    "lastName": "O'Brien",
    "phoneNumber": "+45 5555 0101",
    "email": "zoe.obrien@contoso.com",
    "title": "Partner Seller",
    "contactPreference": {"locale": "da-DK", "disableNotifications": False},
}


def _current(emu, referral_id: str) -> dict:
    return next(r for r in emu.referrals() if r["id"] == referral_id)


def test_get_by_id_and_404(emu, api) -> None:
    record = emu.referrals()[42]
    response = api.get(f"{REFERRALS}/{record['id']}")
    context = f"{emu.info['api_url']}/v1.0/$metadata#Referrals/$entity"
    assert response.json() == {"@odata.context": context, **record}
    assert response.headers["ETag"] == record["eTag"]
    selected = api.get(f"{REFERRALS}/{record['id']}", params={"$select": "id,status,eTag"})
    assert selected.json() == {
        "@odata.context": context, "id": record["id"], "status": record["status"], "eTag": record["eTag"]
    }  # fmt: skip
    assert selected.headers["ETag"] == record["eTag"]
    unknown = api.get(f"{REFERRALS}/{record['id']}", params={"$select": "id,colour"})
    assert (unknown.status_code, unknown.json()["description"]) == (
        400, "$select names unknown properties: colour.")  # fmt: skip
    missing = api.get(f"{REFERRALS}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "NotFound",
        "description": "Referral 00000000-0000-0000-0000-000000000000 was not found.",
        "data": [],
        "source": "PartnerCenterEmulator",
    }


def test_correlation_headers_are_echoed_or_made(emu, api) -> None:
    sent = api.get(
        REFERRALS, params={"$top": "1"}, headers={"MS-CorrelationId": "corr-1", "MS-RequestId": "req-1"}
    )
    assert (sent.headers["MS-CorrelationId"], sent.headers["MS-RequestId"], sent.headers["Request-ID"]) == (
        "corr-1", "req-1", "req-1")  # fmt: skip
    made = api.list(top="1")
    assert uuid.UUID(made.headers["MS-CorrelationId"]).version == 4
    assert uuid.UUID(made.headers["MS-RequestId"]).version == 4
    assert made.headers["Request-ID"] == made.headers["MS-RequestId"]
    assert api.get("/nowhere").headers["MS-RequestId"]


def test_patch_accept_then_conflicts(emu, api) -> None:
    record = next(r for r in emu.referrals() if r["status"] == "New" and r["direction"] == "Incoming")
    ops = [{"op": "replace", "path": "/status", "value": "Active"},
           {"op": "replace", "path": "/substatus", "value": "Accepted"}]  # fmt: skip
    response = api.request(
        "PATCH", f"{REFERRALS}/{record['id']}", json=ops, headers={"If-Match": record["eTag"]}
    )
    assert response.status_code == 204
    assert response.content == b""
    now = _current(emu, record["id"])
    assert response.headers["ETag"] == now["eTag"] != record["eTag"]
    assert (now["status"], now["substatus"]) == ("Active", "Accepted")
    assert now["updatedDateTime"] > record["updatedDateTime"]
    assert now["acceptedDateTime"] == now["updatedDateTime"]
    assert (record["lastModifiedVia"], now["lastModifiedVia"]) == ("PartnerCenter", "API")
    changed = ("status", "substatus", "updatedDateTime", "eTag", "acceptedDateTime", "lastModifiedVia")
    assert {k: v for k, v in now.items() if k not in changed} == {
        k: v for k, v in record.items() if k not in changed}  # fmt: skip

    reason = [{"op": "replace", "path": "/statusReason", "value": "x"}]
    stale = api.request(
        "PATCH", f"{REFERRALS}/{record['id']}", json=reason, headers={"If-Match": record["eTag"]}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "PreconditionFailed"
    assert _current(emu, record["id"]) == now

    weak = api.request(
        "PATCH", f"{REFERRALS}/{record['id']}",
        json=[{"op": "add", "path": "/details/notes", "value": "Call O'Brien — Tuesday"},
              {"op": "add", "path": "/team/-", "value": SELLER}],
        headers={"If-Match": f"W/{now['eTag']}", "Prefer": "return=representation"},
    )  # fmt: skip
    assert weak.status_code == 200, weak.text
    context = f"{emu.info['api_url']}/v1.0/$metadata#Referrals/$entity"
    assert weak.json() == {"@odata.context": context, **_current(emu, record["id"])}
    assert weak.headers["ETag"] == _current(emu, record["id"])["eTag"]
    assert weak.json()["details"]["notes"] == "Call O'Brien — Tuesday"
    assert weak.json()["team"] == [*record["team"], SELLER]
    # The shared generator pools were not touched by the copy-on-write update.
    assert SELLER not in record["team"]
    assert _current(emu, emu.referrals()[0]["id"]) == emu.referrals()[0]


def test_patch_rules(emu, api) -> None:
    records = emu.referrals()
    closed = next(r for r in records if r["status"] == "Closed")
    active = next(r for r in records if r["status"] == "Active")

    def patch(record, *ops):
        return api.request("PATCH", f"{REFERRALS}/{record['id']}", json=list(ops))

    back = patch(closed, {"op": "replace", "path": "/status", "value": "Active"})
    assert back.status_code == 400
    assert back.json() == {
        "code": "InvalidStatusTransition",
        "description": (
            "A referral cannot move from status Closed to Active; from Closed it can move to Closed."
        ),
        "data": [],
        "source": "PartnerCenterEmulator",
    }
    sub = patch(active, {"op": "replace", "path": "/status", "value": "Closed"},
                {"op": "replace", "path": "/substatus", "value": "Accepted"})  # fmt: skip
    assert sub.status_code == 400
    assert sub.json()["description"] == (
        "substatus 'Accepted' is not valid with status Closed; use one of Won, Lost, Declined, Expired, None."
    )
    for ops, message in [
        (
            [{"op": "remove", "path": "/status"}],
            "JSON Patch op 'remove' is not supported; use replace or add.",
        ),
        ([{"op": "replace", "path": "/direction", "value": "Outgoing"}], "'direction' is read-only"),
        (
            [{"op": "replace", "path": "/nothing", "value": 1}],
            "JSON Patch path /nothing cannot be changed; a PATCH may change only /campaignId, ",
        ),
        (
            [{"op": "replace", "path": "/status", "value": "Done"}],
            "status 'Done' is not one of New, Active, Closed.",
        ),
        ({"op": "replace"}, "The body must be a JSON Patch array of operations."),
    ]:
        response = patch(active, *ops) if isinstance(ops, list) else api.request(
            "PATCH", f"{REFERRALS}/{active['id']}", json=ops)  # fmt: skip
        assert response.status_code == 400, ops
        assert message in response.json()["description"]
    assert _current(emu, active["id"]) == active
    won = patch(active, {"op": "replace", "path": "/status", "value": "Closed"},
                {"op": "replace", "path": "/substatus", "value": "Won"})  # fmt: skip
    assert won.status_code == 204
    assert _current(emu, active["id"])["closedDateTime"] == _current(emu, active["id"])["updatedDateTime"]
    assert api.request("PATCH", f"{REFERRALS}/nope", json=[]).status_code == 404


def test_post_creates_an_outgoing_referral(emu, api) -> None:
    body = {
        "name": "Zoë's pipeline deal",
        "type": "Shared",
        "customerProfile": {"name": "Café Zoë ApS", "address": {"country": "DK"}},
        "consent": {"consentToContact": True},
        "details": {"dealValue": 1200, "currency": "DKK"},
        "customField": {"kept": True},
    }
    response = api.request("POST", REFERRALS, json=body)
    assert response.status_code == 200
    created = response.json()
    assert created.pop("@odata.context") == f"{emu.info['api_url']}/v1.0/$metadata#Referrals/$entity"
    assert response.headers["ETag"] == created["eTag"]
    assert "Location" not in response.headers
    assert (created["direction"], created["status"], created["substatus"]) == ("Outgoing", "New", "Pending")
    assert created["createdDateTime"] == created["updatedDateTime"]
    assert created["customField"] == {"kept": True}
    assert emu.referrals()[-1] == created
    fetched = api.get(f"{REFERRALS}/{created['id']}").json()
    assert fetched == {"@odata.context": f"{emu.info['api_url']}/v1.0/$metadata#Referrals/$entity", **created}
    # Every field a generated referral has (the created one adds only the client's customField).
    assert set(created) == set(emu.referrals()[0]) | {"customField"}
    missing = api.request("POST", REFERRALS, json={"type": "Shared", "details": {}})
    assert missing.status_code == 400
    assert missing.json()["description"] == "Missing required field(s): customerProfile, consent, details."
    assert api.request("POST", REFERRALS, data="{").status_code == 400
    assert emu.stats()["requests"]["create"] == 3


def test_release_incoming_and_live_arrivals(emu, api) -> None:
    made = emu.release_incoming(3, type="Shared")
    assert [(r["direction"], r["status"], r["substatus"], r["type"]) for r in made] == [
        ("Incoming", "New", "Pending", "Shared")] * 3  # fmt: skip
    stamps = [r["createdDateTime"] for r in made]
    assert stamps == sorted(set(stamps))
    assert all(r["updatedDateTime"] == r["createdDateTime"] for r in made)
    assert all(
        parse_to_ticks(r["expirationDateTime"]) - parse_to_ticks(r["createdDateTime"]) == 14 * DAY_TICKS
        for r in made
    )
    newest = api.list(orderby="createdDateTime desc", top="3").json()["value"]
    assert newest == list(reversed(made))

    emu.configure(arrivals_per_second=200)
    assert emu.wait_for_referrals(2003 + 5, timeout=10)
    emu.configure(arrivals_per_second=0)
    arrived = emu.referrals()[2003:]
    assert all(
        (r["direction"], r["status"], r["substatus"]) == ("Incoming", "New", "Pending") for r in arrived
    )
    assert arrived[0]["createdDateTime"] > made[-1]["createdDateTime"]


def test_fourteen_day_expiry_applies_to_arrivals(emu, api) -> None:
    past = format_ticks(parse_to_ticks(emu.referrals()[-1]["createdDateTime"]) - DAY_TICKS)
    (stale,) = emu.release_incoming(1, expirationDateTime=past)
    (fresh,) = emu.release_incoming(1)
    api.list(top="1")
    assert (_current(emu, stale["id"])["status"], _current(emu, stale["id"])["substatus"]) == (
        "Closed",
        "Expired",
    )
    assert _current(emu, fresh["id"])["status"] == "New"
