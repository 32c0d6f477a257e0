"""Token sizes, short lifetimes and rotation for a soak, and the record of every token issued."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests

from partner_center_emulator.token_values import (
    MIN_ACCESS_TOKEN_BYTES,
    jwt_minimum,
    new_access_token,
)

SCOPE = "https://api.partner.microsoft.com/.default"
URL_SAFE = re.compile(r"emu-at-[A-Za-z0-9_.-]+\Z")
CLAIMS = {"aud": "https://api.partner.microsoft.com", "iat": 1, "exp": 3, "upn": "ada.admin@contoso.com"}


def _grant(emu, refresh_token: str) -> requests.Response:
    info = emu.info
    return requests.post(
        info["authority"] + "/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": info["client_id"],
              "refresh_token": refresh_token, "scope": SCOPE},
        verify=info["ca_bundle"], timeout=10,
    )  # fmt: skip


def _list(emu, access_token: str) -> requests.Response:
    return requests.get(
        emu.info["referrals_url"], params={"$top": "1"}, headers={"Authorization": f"Bearer {access_token}"},
        verify=emu.info["ca_bundle"], timeout=10,
    )  # fmt: skip


def _part(encoded: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def test_every_size_is_exact_url_safe_and_jwt_shaped_when_there_is_room() -> None:
    smallest_jwt = jwt_minimum(CLAIMS)
    assert MIN_ACCESS_TOKEN_BYTES == 50 < smallest_jwt < 500
    for size in range(MIN_ACCESS_TOKEN_BYTES, 2600):
        token = new_access_token(size, CLAIMS)
        assert len(token) == size
        assert URL_SAFE.match(token)
        parts = token[len("emu-at-") :].split(".")
        if size < smallest_jwt:
            assert len(parts) == 1
            continue
        header, payload, signature = parts
        assert header.startswith("eyJ")
        assert _part(header)["typ"] == "JWT"
        assert {k: v for k, v in _part(payload).items() if k != "emu_pad"} == CLAIMS
        # At least 256 random bits; an RS256 signature's length once the size allows it.
        assert len(signature) >= (342 if size >= smallest_jwt + 400 else 43)
    # The default: today's short opaque token.
    assert len(new_access_token()) == 50
    assert "." not in new_access_token(0, CLAIMS)


def test_tokens_are_unique_at_the_smallest_and_a_jwt_size() -> None:
    for size in (MIN_ACCESS_TOKEN_BYTES, 1500):
        tokens = {new_access_token(size, CLAIMS) for _ in range(2000)}
        assert len(tokens) == 2000
        # The random part differs, not only somewhere: no two share their last 43 characters.
        assert len({t[-43:] for t in tokens}) == 2000


def test_sized_access_tokens_through_the_token_endpoint(emulator_factory) -> None:
    emu = emulator_factory(referrals=5, access_token_bytes=1500)
    refresh = emu.info["refresh_token"]
    seen = set()
    for _ in range(5):
        body = _grant(emu, refresh).json()
        token, refresh = body["access_token"], body["refresh_token"]
        assert len(token) == 1500
        assert URL_SAFE.match(token)
        header, payload, _ = token[len("emu-at-") :].split(".")
        claims = _part(payload)
        assert (_part(header)["alg"], claims["upn"], claims["tid"]) == ("RS256", emu.info["username"],
                                                                       emu.info["tenant_id"])  # fmt: skip
        assert claims["exp"] - claims["iat"] == body["expires_in"] == 3600
        assert _list(emu, token).status_code == 200
        seen.add(token)
    assert len(seen) == 5
    # Changed while running: tokens issued from then on have the new size.
    emu.configure(access_token_bytes=64)
    assert len(_grant(emu, refresh).json()["access_token"]) == 64
    emu.configure(access_token_bytes=0)
    assert len(_grant(emu, emu.info["refresh_token"]).json()["access_token"]) == 50


def test_access_token_bytes_below_the_minimum_is_refused(emulator_factory) -> None:
    with pytest.raises(ValueError, match=r"access_token_bytes must be 0 .* or at least 50, got 49"):
        emulator_factory(referrals=1, access_token_bytes=49)
    emu = emulator_factory(referrals=1)
    with pytest.raises(ValueError, match="at least 50"):
        emu.configure(access_token_bytes=10)
    response = requests.post(
        emu.info["admin_url"] + "/configure", json={"access_token_bytes": -1},
        headers={"Authorization": f"Bearer {emu.admin_token}"}, verify=emu.info["ca_bundle"], timeout=10,
    )  # fmt: skip
    assert response.status_code == 400
    assert "access_token_bytes" in response.json()["error"]


def test_two_second_tokens_and_enforced_rotation(emulator_factory) -> None:
    emu = emulator_factory(referrals=5, token_ttl=2, revoke_used_refresh_tokens=True, access_token_bytes=1500)
    first = emu.info["refresh_token"]
    response = _grant(emu, first)
    granted = time.monotonic()
    body = response.json()
    assert (body["expires_in"], body["ext_expires_in"]) == (2, 2)
    assert _list(emu, body["access_token"]).status_code == 200
    time.sleep(max(0.0, granted + 2.05 - time.monotonic()))
    expired = _list(emu, body["access_token"])
    assert expired.status_code == 401
    assert 'error_description="The access token has expired."' in expired.headers["WWW-Authenticate"]
    # The rotated refresh token works once; the used one is revoked (AADSTS50173).
    again = _grant(emu, body["refresh_token"])
    assert again.status_code == 200
    assert _list(emu, again.json()["access_token"]).status_code == 200
    for used in (first, body["refresh_token"]):
        refused = _grant(emu, used)
        assert (refused.status_code, refused.json()["error"], refused.json()["error_codes"]) == (
            400, "invalid_grant", [50173])  # fmt: skip


def test_issued_tokens_and_counts(emu) -> None:
    # The bootstrap refresh token of ``info`` is the first one issued.
    assert emu.token_counts() == {"access_tokens": 0, "refresh_tokens": 1}
    assert emu.issued_tokens() == {"access_tokens": [], "refresh_tokens": [emu.info["refresh_token"]]}
    access, refresh = [], [emu.info["refresh_token"]]
    for _ in range(3):
        body = _grant(emu, refresh[-1]).json()
        access.append(body["access_token"])
        refresh.append(body["refresh_token"])
    refresh.append(emu.issue_refresh_token(emu.users["user"]["username"]))
    assert _grant(emu, "not-a-token").status_code == 400  # a refused grant issues nothing
    # Neither resetting the stats nor expiring the access tokens forgets what was issued.
    emu.reset_stats()
    emu.expire_access_tokens()
    assert emu.token_counts() == {"access_tokens": 3, "refresh_tokens": 5}
    assert emu.issued_tokens() == {"access_tokens": access, "refresh_tokens": refresh}

    def admin(action: str) -> dict:
        response = requests.get(
            f"{emu.info['admin_url']}/{action}", headers={"Authorization": f"Bearer {emu.admin_token}"},
            verify=emu.info["ca_bundle"], timeout=10,
        )  # fmt: skip
        assert response.status_code == 200
        return response.json()

    assert admin("token_counts") == {"access_tokens": 3, "refresh_tokens": 5}
    assert admin("issued_tokens") == {"access_tokens": access, "refresh_tokens": refresh}
    unauthorized = requests.get(
        f"{emu.info['admin_url']}/issued_tokens", verify=emu.info["ca_bundle"], timeout=10
    )
    assert unauthorized.status_code == 401
