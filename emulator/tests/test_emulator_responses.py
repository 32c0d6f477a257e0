"""JSON responses: orjson's bytes are exactly the compact UTF-8 ``json.dumps`` the emulator used to send."""

from __future__ import annotations

import json

from partner_center_emulator.clock import parse_to_ticks
from partner_center_emulator.data import Generator
from partner_center_emulator.responses import json_response


def test_a_page_of_generated_referrals_is_the_same_bytes_as_compact_json_dumps() -> None:
    records = Generator(3, "https://x:1", "org").generate(500, parse_to_ticks("2026-11-20T12:00:00Z"), 30)
    body = {
        "@odata.context": "https://x:1/v1.0/$metadata#Referrals",
        "@odata.count": len(records),
        "value": records,
        # What a created referral may hold: non-ASCII text, escapes, big and fractional numbers.
        "extra": {"name": 'Société Générale \u2028 "quoted" \\ \t', "deal": 1234567.25, "n": 2**53},
    }
    response = json_response(body)
    assert response.get_data() == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert response.content_type == "application/json; charset=utf-8"
