"""
Entra ID's directory, as far as a delegated (App+User) client sees it: users and every token issued.

Access and refresh tokens are opaque random strings mapped to the user they were issued to;
device codes wait here for their browser sign-in. The grants that issue them (the token
endpoint) are in :mod:`.grants`; :class:`Identity` answers the endpoints through it.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from partner_center_emulator import grants
from partner_center_emulator.entra_errors import OAuthError
from partner_center_emulator.grants import API_RESOURCE

ROLE_ADMIN = "Referral Admin"
ROLE_USER = "Referral User"


@dataclass
class User:
    """A user of the emulated tenant."""

    key: str
    username: str
    password: str
    role: str | None
    display_name: str
    object_id: str

    @property
    def email(self) -> str:
        """Users sign in with their e-mail address."""
        return self.username

    def public(self) -> dict[str, Any]:
        """What ``Emulator.users`` shows for this user."""
        return {
            "username": self.username,
            "password": self.password,
            "email": self.email,
            "role": self.role,
            "display_name": self.display_name,
            "object_id": self.object_id,
        }


@dataclass
class DeviceCode:
    """A pending device-code sign-in."""

    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    approved_by: str | None = None
    redeemed: bool = False


@dataclass
class _AccessToken:
    username: str
    expires_at: float
    generation: int


@dataclass
class Identity:
    """
    The tenant: one app registration, three users, and every token issued.

    :param tenant_id: the directory (tenant) id.
    :param client_id: the app registration's client id.
    :param client_secret: its secret.
    :param users: the users by key (``admin``, ``user``, ``norole``).
    """

    tenant_id: str
    client_id: str
    client_secret: str
    users: dict[str, User]
    token_ttl: int = 3600
    #: 0: access tokens are ``emu-at-`` + 43 random characters; else exactly this many characters
    #: (JWT-shaped when there is room; see :mod:`.token_values`).
    access_token_bytes: int = 0
    revoke_used_refresh_tokens: bool = False
    require_client_secret: bool = False
    device_code_interval: int = 5
    device_code_ttl: int = 900
    #: Conditional Access requires MFA: refresh tokens of sign-ins without it (issued by the
    #: admin API, the password grant) are refused with AADSTS50076; device-code sign-ins pass.
    require_mfa: bool = False
    #: The app has no consent in the tenant: every grant is refused with AADSTS65001.
    require_consent: bool = False
    #: A refresh token unused for this many days is refused with AADSTS700082 (Entra: 90).
    refresh_token_inactive_days: float = 90.0
    _access: dict[str, _AccessToken] = field(default_factory=dict)
    #: refresh token -> [username, revoked?, issued at (epoch seconds), signed in with MFA?]
    _refresh: dict[str, list[Any]] = field(default_factory=dict)
    _devices: dict[str, DeviceCode] = field(default_factory=dict)
    #: Every access and refresh token issued since start, in order (never cleared nor expired).
    _issued: dict[str, list[str]] = field(default_factory=lambda: {"access_tokens": [], "refresh_tokens": []})
    _generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def user_by_name(self, username: str) -> User | None:
        """Look a user up by sign-in name (case-insensitive, like Entra)."""
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        return None

    def issue_refresh_token(self, username: str, *, mfa: bool = False) -> str:
        """
        A new valid refresh token for ``username``.

        :param username: the user's sign-in name.
        :param mfa: whether the sign-in it stands for did multi-factor authentication.
        """
        user = self.user_by_name(username)
        if user is None:
            raise KeyError(
                f"No user {username!r}; the emulator has {[u.username for u in self.users.values()]}"
            )
        token = "emu-rt-" + secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[token] = [user.username, False, time.time(), mfa]
            self._issued["refresh_tokens"].append(token)
        return token

    def age_refresh_tokens(self, days: float) -> int:
        """
        Make every refresh token ``days`` older (as if nobody used it meanwhile); return how many.

        :param days: how many days to move their issue time back.
        """
        with self._lock:
            for entry in self._refresh.values():
                entry[2] -= days * 86_400
            return len(self._refresh)

    def refresh_tokens(self) -> dict[str, list[Any]]:
        """A copy of the refresh-token table (for the state dir)."""
        with self._lock:
            return {k: list(v) for k, v in self._refresh.items()}

    def restore_refresh_tokens(self, table: dict[str, list[Any]]) -> None:
        """Reload a table saved by :meth:`refresh_tokens` (older tables lack issue time and MFA)."""
        defaults = [None, False, time.time(), False]
        with self._lock:
            for key, value in table.items():
                self._refresh[key] = list(value) + defaults[len(value) :]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far becomes invalid."""
        with self._lock:
            self._generation += 1
            self._access.clear()

    def check_access_token(self, token: str) -> tuple[User | None, str]:
        """The user of a bearer token, or ``(None, why)``."""
        with self._lock:
            entry = self._access.get(token)
        if entry is None:
            return None, "The access token is invalid or was revoked."
        if entry.expires_at <= time.monotonic():
            return None, "The access token has expired."
        return self.user_by_name(entry.username), ""

    def issue_access_token(self, token: str, username: str, ttl: float) -> None:
        """
        Record ``token`` as an access token of ``username``.

        :param token: the new access token.
        :param username: the user's sign-in name.
        :param ttl: how long it is valid, seconds.
        """
        with self._lock:
            self._access[token] = _AccessToken(username, time.monotonic() + ttl, self._generation)
            self._issued["access_tokens"].append(token)

    def issued_tokens(self) -> dict[str, list[str]]:
        """Every access and refresh token issued since start (not those restored from a state dir)."""
        with self._lock:
            return {kind: list(tokens) for kind, tokens in self._issued.items()}

    def token_counts(self) -> dict[str, int]:
        """How many access and refresh tokens were issued since start."""
        with self._lock:
            return {kind: len(tokens) for kind, tokens in self._issued.items()}

    def check_mfa(self, mfa: bool) -> None:
        """Refuse a sign-in without MFA while Conditional Access requires it (AADSTS50076)."""
        if self.require_mfa and not mfa:
            raise OAuthError(
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a "
                f"new location, you must use multi-factor authentication to access '{API_RESOURCE}'.",
            )

    def redeem_refresh_token(self, token: str) -> tuple[User, bool]:
        """
        The user of a refresh token and whether its sign-in did MFA; revoke it when rotation is on.

        :param token: the refresh token.
        :raises OAuthError: unknown, revoked, expired by inactivity, or missing the MFA required.
        """
        with self._lock:
            entry = self._refresh.get(token)
            if entry is None:
                raise OAuthError(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            if entry[1]:
                raise OAuthError(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
                    "The user might have changed or reset their password.",
                )
            inactive = time.time() - entry[2]
            if inactive > self.refresh_token_inactive_days * 86_400:
                issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry[2]))
                raise OAuthError(
                    "invalid_grant",
                    700082,
                    f"The refresh token has expired due to inactivity. The token was issued on {issued} "
                    f"and was inactive for {int(self.refresh_token_inactive_days)}.00:00:00.",
                )
            self.check_mfa(bool(entry[3]))
            if self.revoke_used_refresh_tokens:
                entry[1] = True
            username, mfa = entry[0], bool(entry[3])
        user = self.user_by_name(username)
        assert user is not None
        return user, mfa

    # -- the endpoints (answered by the grants) -------------------------------------------------

    def token(self, form: dict[str, str], issuer_base: str) -> dict[str, Any]:
        """Answer one POST to ``/{tenant}/oauth2/v2.0/token`` (see :func:`.grants.token`)."""
        return grants.token(self, form, issuer_base)

    def start_device_flow(self, form: dict[str, str], verification_uri: str) -> dict[str, Any]:
        """Answer ``/{tenant}/oauth2/v2.0/devicecode`` (see :func:`.grants.start_device_flow`)."""
        return grants.start_device_flow(self, form, verification_uri)

    # -- device code --------------------------------------------------------------------------

    def new_device_code(self, client_id: str) -> DeviceCode:
        """A new pending device code, kept until it is approved and redeemed or expires."""
        code = DeviceCode(
            device_code="emu-dc-" + secrets.token_urlsafe(24),
            user_code="".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ23456789") for _ in range(9)),
            client_id=client_id,
            expires_at=time.monotonic() + self.device_code_ttl,
        )
        with self._lock:
            self._devices[code.device_code] = code
        return code

    def approve_device_code(self, user_code: str, username: str) -> None:
        """Complete a device-code sign-in as ``username`` (what the person would do in the browser)."""
        user = self.user_by_name(username)
        if user is None:
            raise KeyError(f"No user {username!r}")
        with self._lock:
            for code in self._devices.values():
                if code.user_code == user_code and not code.redeemed:
                    code.approved_by = user.username
                    return
        raise KeyError(f"No pending device code {user_code!r}")

    def redeem_device_code(self, device_code: str) -> User:
        """The user who approved ``device_code``; each code is redeemed once, before it expires."""
        with self._lock:
            code = self._devices.get(device_code)
            if code is None:
                raise OAuthError("invalid_grant", 70000, "The provided value for 'device_code' is not valid.")
            if code.redeemed or code.expires_at <= time.monotonic():
                raise OAuthError(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' has expired.",
                )
            if code.approved_by is None:
                raise OAuthError(
                    "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending."
                )
            code.redeemed = True
            username = code.approved_by
        user = self.user_by_name(username)
        assert user is not None
        return user


def make_identity(seed: int, rng_secret: Any = secrets) -> Identity:
    """The emulator's tenant: ids derived from ``seed``, secrets random."""
    import random

    rng = random.Random(f"identity-{seed}")

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def password() -> str:
        return str(rng_secret.token_urlsafe(12)) + "!9a"

    users = {
        "admin": User("admin", "ada.admin@contoso.com", password(), ROLE_ADMIN, "Ada Admin", guid()),
        "user": User("user", "r2d2@contoso.com", password(), ROLE_USER, "R2 D2", guid()),
        "norole": User("norole", "nora.norole@contoso.com", password(), None, "Nora Norole", guid()),
    }
    return Identity(
        tenant_id=guid(),
        client_id=guid(),
        client_secret="emu~" + str(rng_secret.token_urlsafe(24)),
        users=users,
    )
