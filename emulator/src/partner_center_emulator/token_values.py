"""
The values of the access tokens the emulated Entra ID issues, and the base64url/JWT helpers.

By default an access token is short and opaque (``emu-at-`` and 43 random characters).
Entra ID's real ones are JWTs of about 1.5 KB, and what a client does with a token (Airflow's
secrets masker compiles every one into its pattern) costs by the character: the
``access_token_bytes`` setting makes every access token exactly that many characters long, still
starting with ``emu-at-`` (how a scan recognises the emulator's tokens) and, from
:func:`jwt_minimum` characters on, shaped like a JWT (``emu-at-eyJ...header.payload.signature``).
Every token holds at least 256 random bits, so tokens stay unique and unguessable.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

#: How every access token starts.
ACCESS_PREFIX = "emu-at-"
#: Random characters of the default token (``secrets.token_urlsafe(32)``: 256 bits).
_RANDOM_CHARS = 43
#: The shortest ``access_token_bytes``: the default token's length (prefix and 256 random bits).
MIN_ACCESS_TOKEN_BYTES = len(ACCESS_PREFIX) + _RANDOM_CHARS
#: The signature length of an RS256 JWT (2048-bit key) such as Entra's: what a sized token's
#: signature is given when there is room, the rest going into the payload.
_RS256_SIGNATURE = 342
_HEADER = {"typ": "JWT", "alg": "RS256", "x5t": "emulator-key-1", "kid": "emulator-key-1"}


def b64url(raw: bytes) -> str:
    """Base64url without padding (as JWTs encode their parts)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json_part(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A well-formed JWT with ``alg: none`` and no signature (msal reads the id token's claims)."""
    header = {"typ": "JWT", "alg": "none"}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def check_access_token_bytes(size: int) -> int:
    """
    Refuse an ``access_token_bytes`` that cannot hold the prefix and 256 random bits.

    :param size: 0 (the default short token) or the length every access token gets.
    :raises ValueError: naming the smallest size allowed.
    """
    if size != 0 and size < MIN_ACCESS_TOKEN_BYTES:
        raise ValueError(
            f"access_token_bytes must be 0 (the default token) or at least {MIN_ACCESS_TOKEN_BYTES}, "
            f"got {size}"
        )
    return size


def _random_chars(count: int) -> str:
    # token_urlsafe(n) gives ceil(4n/3) URL-safe characters, each 6 random bits: cut to count.
    return secrets.token_urlsafe(count)[:count]


def jwt_minimum(claims: dict[str, Any]) -> int:
    """The shortest size at which a token with these claims is shaped like a JWT."""
    return len(ACCESS_PREFIX) + len(_json_part(_HEADER)) + len(_json_part(claims)) + 2 + _RANDOM_CHARS


def new_access_token(size: int = 0, claims: dict[str, Any] | None = None) -> str:
    """
    A new access token: ``emu-at-`` and random characters, or exactly ``size`` characters.

    :param size: 0 for the default (50 characters, opaque); else the exact length. Below
        :func:`jwt_minimum` the token is opaque; from it on it is ``emu-at-`` + a JWT whose
        payload holds ``claims`` (padded so the signature keeps an RS256 signature's length)
        and whose signature is random.
    :param claims: the JWT payload (an access token's claims).
    """
    if size == 0:
        return ACCESS_PREFIX + secrets.token_urlsafe(32)
    check_access_token_bytes(size)
    if claims is None or size < jwt_minimum(claims):
        return ACCESS_PREFIX + _random_chars(size - len(ACCESS_PREFIX))
    header = _json_part(_HEADER)
    payload = _json_part(claims)
    room = size - len(ACCESS_PREFIX) - len(header) - len(payload) - 2
    extra = room - _RS256_SIGNATURE
    # Each character of a padding claim's value adds 4/3 of a character to the payload; the
    # claim's own 13 characters (,"emu_pad":"") are taken off, so the payload grows by less than
    # ``extra`` and the signature keeps at least an RS256 signature's length.
    pad = extra * 3 // 4 - 14
    if pad > 0:
        payload = _json_part({**claims, "emu_pad": "A" * pad})
        room = size - len(ACCESS_PREFIX) - len(header) - len(payload) - 2
    return f"{ACCESS_PREFIX}{header}.{payload}.{_random_chars(room)}"
