"""
Delegated (App+User) access tokens for Partner Center, acquired with MSAL only.

One refresh at a time, everywhere the credential is shared:

- **within a process**, every hook on the same credential (the threads of parallel slices, the
  triggers of one triggerer, hooks made one after the other) shares one :class:`_Credential`
  and its lock: one refresh, whose access token all of them then use. A refresh blocks, so it
  must never run on an event loop: triggers call the hook through ``asyncio.to_thread``, and a
  call from a running loop is refused;
- **across processes and machines**, the refresh runs inside the credential store's lease
  (:func:`~airflow_provider_partner.hooks.stores.store_lease`). Inside it the store is read
  again first, and a valid access token another process saved there is used instead of
  refreshing. Where the lease is weak or absent, a refresh token refused after a lost race is
  not reported: the provider waits (bounded, jittered) for the winner's save and continues from
  it.

Order of attempts when a token is really needed: a usable access token in the cache (ours, with
our own expiry margin: MSAL's fixed five minutes would refresh a 30-second token every time);
the newest refresh token in the cache; the connection's bootstrap ``refresh_token``; (legacy)
the password grant. The cache is saved after every change, because refresh tokens rotate.

Token health: the saved cache carries a small metadata block (``AirflowProviderPartner``) with
when its refresh token was issued; :attr:`TokenProvider.refresh_token_age` reads it, and a
warning is logged when it nears the 90-day inactivity limit.

``msal`` is imported lazily, and the hook imports this module only on first use: DAG files import
the hook at parse time.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_partner import __version__
from airflow_provider_partner.hooks.connection import PartnerCenterSettings, mask_secrets
from airflow_provider_partner.hooks.errors import (
    AuthFailure,
    PartnerCenterAuthError,
    PartnerCenterConfigError,
    trim_body,
)
from airflow_provider_partner.hooks.session import build_authority_session, is_microsoft_authority
from airflow_provider_partner.hooks.stores import LeaseGuarantee, TextStore, store_lease

if TYPE_CHECKING:
    import msal

__all__ = ["LOGIN_COMMAND", "CredentialSource", "TokenProvider", "build_msal_app"]

log = logging.getLogger(__name__)

LOGIN_COMMAND = "partner-center-login"
#: Renew this long before the access token's expiry (at most half its lifetime), so a page
#: request never races it.
EXPIRY_SKEW_SECONDS = 120
#: Entra ID lets a refresh token die after this many days unused.
REFRESH_TOKEN_INACTIVE_DAYS = 90
#: Warn from this age on: the keep-alive (``partner-center-login --refresh``) is overdue.
REFRESH_TOKEN_WARN_DAYS = 75
#: How long to wait for another holder of the store's lease before refreshing without it.
LEASE_WAIT_SECONDS = 60.0
#: How long a refused refresh token waits for another task's newer cache when the lease was not
#: exclusive (a lost race: the winner may not have saved yet).
RACE_WAIT_SECONDS = 10.0
#: The top-level key of the provider's metadata in the stored cache (MSAL keeps unknown keys).
METADATA_KEY = "AirflowProviderPartner"

_AADSTS = re.compile(r"AADSTS(\d+)")


class CredentialSource(str, enum.Enum):
    """Which credential a token request used; its value is how messages name it."""

    # The values are descriptions of credentials, not credentials (hence the S105 waivers).

    CACHED_ACCOUNT = "the cached refresh token"
    CACHED_REFRESH_TOKEN = "the refresh token in the token cache"  # noqa: S105
    CONNECTION_REFRESH_TOKEN = "the connection's refresh_token"  # noqa: S105
    PASSWORD = "the password grant (username/user_password)"  # noqa: S105


def build_msal_app(
    settings: PartnerCenterSettings,
    cache: msal.SerializableTokenCache | None = None,
    *,
    public: bool | None = None,
) -> msal.ClientApplication:
    """
    Build the MSAL application: confidential when a client secret is configured, else public.

    :param settings: connection settings.
    :param cache: the token cache to bind.
    :param public: force a public client (the device-code flow needs one).
    """
    import msal

    kwargs: dict[str, Any] = {
        "authority": settings.authority,
        "token_cache": cache,
        "http_client": build_authority_session(settings),
        "app_name": "airflow-provider-partner",
        "app_version": __version__,
    }
    if not is_microsoft_authority(settings.authority_host):
        # Sovereign or test authorities: never ask login.microsoftonline.com to validate them.
        kwargs["instance_discovery"] = False
    try:
        if public or (public is None and not settings.client_secret):
            return msal.PublicClientApplication(settings.client_id, **kwargs)
        return msal.ConfidentialClientApplication(
            settings.client_id, client_credential=settings.client_secret, **kwargs
        )
    except ValueError as err:
        # Raised for an authority whose OpenID configuration cannot be read: most often a
        # tenant that does not exist (the authority answers AADSTS90002).
        raise PartnerCenterAuthError(
            f"Cannot use authority {settings.authority} for connection {settings.conn_id!r}: "
            f"{trim_body(str(err), 300)}. The tenant {settings.tenant_id!r} does not exist at "
            f"{settings.authority_host} (AADSTS90002), or the authority host is wrong: fix extra "
            f"tenant_id (your directory id) with `{LOGIN_COMMAND} --conn-id {settings.conn_id} "
            "--tenant-id <directory id>`, which signs in and prints the corrected connection.",
            kind=AuthFailure.WRONG_TENANT,
            error="invalid_tenant",
            aadsts=90002,
        ) from None
    except Exception as err:  # noqa: BLE001 - re-raised with the authority named
        # requests' connection errors and the like: name the authority and the likely fix.
        raise _unreachable(settings, err) from None


def _unreachable(settings: PartnerCenterSettings, err: Exception) -> PartnerCenterAuthError:
    cause = f"{type(err).__name__}: {trim_body(str(err), 300)}"
    return PartnerCenterAuthError(
        f"Cannot reach the authority {settings.authority} ({cause}). "
        "Check extras authority_host, tenant_id, proxies and ca_bundle.",
        kind=AuthFailure.AUTHORITY_UNREACHABLE,
        error="authority_unreachable",
    )


def _describe(result: dict[str, Any]) -> str:
    description = str(result.get("error_description") or "").strip().splitlines()
    first = description[0] if description else "no description"
    return f"{result.get('error')}: {first[:300]}"


def _aadsts(result: dict[str, Any]) -> int | None:
    codes = result.get("error_codes")
    if isinstance(codes, list) and codes and str(codes[0]).isdigit():
        return int(codes[0])
    match = _AADSTS.search(str(result.get("error_description") or ""))
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class _Grant:
    """An access token and how long it may still be used."""

    token: str
    usable_for: float
    username: str | None = None


def _fingerprint(settings: PartnerCenterSettings, store: TextStore | None) -> str:
    # Hooks share a credential only when everything that shapes its tokens is the same; the
    # secrets take part only as a digest, and the key never leaves the process.
    parts = (
        settings.conn_id,
        settings.client_id,
        settings.client_secret or "",
        settings.authority,
        " ".join(settings.scopes),
        settings.refresh_token or "",
        settings.username or "",
        settings.user_password or "",
        store.location if store is not None else "",
    )
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


_REGISTRY: dict[str, _Credential] = {}
_REGISTRY_LOCK = threading.Lock()


class TokenProvider:
    """
    Acquire and renew access tokens for one connection, persisting the rotating cache.

    Providers made with :meth:`shared` (what the hook does) share one credential per process;
    one made directly has its own (as a separate process would).

    :param settings: connection settings.
    :param store: where the token cache is kept between runs (``None``: memory only).
    """

    def __init__(
        self,
        settings: PartnerCenterSettings,
        store: TextStore | None,
        *,
        _credential: _Credential | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        #: Token requests this provider sent to the authority (grants, not cache hits).
        self.token_requests = 0
        self._credential = _credential or _Credential(settings, store)

    @classmethod
    def shared(cls, settings: PartnerCenterSettings, store: TextStore | None) -> TokenProvider:
        """
        A provider on this process's one credential for these settings and store.

        :param settings: connection settings.
        :param store: the credential store (``None``: memory only).
        """
        key = _fingerprint(settings, store)
        with _REGISTRY_LOCK:
            credential = _REGISTRY.get(key)
            if credential is None:
                credential = _REGISTRY[key] = _Credential(settings, store)
        return cls(settings, store, _credential=credential)

    def __repr__(self) -> str:
        return f"TokenProvider(conn_id={self.settings.conn_id!r}, store={self.store!r})"

    @property
    def username(self) -> str | None:
        """The signed-in user, once a token was had."""
        return self._credential.username

    @property
    def refresh_token_age(self) -> timedelta | None:
        """Age of the stored refresh token (``None``: unknown, e.g. no store or never loaded)."""
        issued = self._credential.refresh_token_issued_at
        return None if issued is None else timedelta(seconds=max(0.0, time.time() - issued))

    def stored_refresh_token_age(self) -> timedelta | None:
        """Read the credential store now and return its refresh token's age (``None``: unknown)."""
        self._credential.reload()
        return self.refresh_token_age

    @property
    def last_lease(self) -> LeaseGuarantee | None:
        """The guarantee of the store's lease at the last refresh (``None``: none yet)."""
        return self._credential.last_lease

    def get_token(self, *, force_refresh: bool = False, rejected: str | None = None) -> str:
        """
        Return a valid access token, acquiring one only when needed.

        :param force_refresh: ignore the current token (the API answered 401 with it).
        :param rejected: the token the API refused; when another thread or process has already
            replaced it, its replacement is returned instead of refreshing again.
        """
        _refuse_event_loop()
        token, sent = self._credential.get(force_refresh=force_refresh, rejected=rejected)
        self.token_requests += sent
        return token

    def refresh(self) -> str:
        """Redeem the stored refresh token now (the keep-alive), whatever the access token's state."""
        _refuse_event_loop()
        token, sent = self._credential.get(force_refresh=True, rejected=None, renew=True)
        self.token_requests += sent
        return token


def _refuse_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    # A refresh blocks on the network and on other processes' leases: on the triggerer's loop
    # it would stall every trigger. Triggers call the hook through asyncio.to_thread.
    raise RuntimeError(
        "PartnerCenterHook tokens were requested on a running event loop; call the hook through "
        "asyncio.to_thread (as the provider's triggers do)."
    )


class _Credential:
    """One process's state of one credential: the lock, the current token, the MSAL cache."""

    def __init__(self, settings: PartnerCenterSettings, store: TextStore | None) -> None:
        self.settings = settings
        self.store = store
        self.username: str | None = None
        self.refresh_token_issued_at: float | None = None
        self.last_lease: LeaseGuarantee | None = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._loaded_state: str | None = None
        self._app: msal.ClientApplication | None = None
        self._cache: msal.SerializableTokenCache | None = None
        self._sent = 0
        self._warned_for: float | None = None

    # -- the entry point -----------------------------------------------------------------------
    def get(self, *, force_refresh: bool, rejected: str | None, renew: bool = False) -> tuple[str, int]:
        with self._lock:
            self._sent = 0
            fresh = self._token is not None and time.monotonic() < self._expires_at
            replaced = rejected is not None and rejected != self._token
            if fresh and not renew and (not force_refresh or replaced):
                assert self._token is not None
                return self._token, 0
            # Reuse a cached access token unless the caller refused every one (force without a
            # rejected token) or wants the refresh token redeemed (renew).
            reuse = not renew and (rejected is not None or not force_refresh)
            if self.store is None:
                if self._app is None:
                    self._load(None)
                grant = self._obtain(reuse=reuse, rejected=rejected, guarantee=LeaseGuarantee.NONE)
            else:
                with store_lease(self.store, LEASE_WAIT_SECONDS) as guarantee:
                    self.last_lease = guarantee
                    # Inside the critical section: whatever another process saved is newer.
                    self._load(self.store.load())
                    grant = self._obtain(reuse=reuse, rejected=rejected, guarantee=guarantee)
                    self._persist()
            self._adopt(grant)
            return grant.token, self._sent

    def reload(self) -> None:
        """Read the store again (no lease: only to look, never to refresh)."""
        if self.store is not None:
            with self._lock:
                self._load(self.store.load())

    def _adopt(self, grant: _Grant) -> None:
        mask_secrets(grant.token)
        self._token = grant.token
        self._expires_at = time.monotonic() + grant.usable_for
        self.username = grant.username or self.username

    # -- the cache -----------------------------------------------------------------------------
    def _load(self, state: str | None) -> None:
        import msal

        if self._cache is not None and state == self._loaded_state:
            return  # unchanged
        # One cache object for the credential's life, refilled in place: MSAL binds the cache's
        # methods when it builds its client, so a new object would not be seen by the app.
        cache = self._cache or msal.SerializableTokenCache()
        metadata: dict[str, Any] = {}
        try:
            cache.deserialize(state)
            if state:
                metadata = json.loads(state).get(METADATA_KEY) or {}
        except (ValueError, AttributeError):
            raise PartnerCenterAuthError(
                f"The token cache at {self.store.location if self.store else '?'} is not valid JSON; "
                f"run `{LOGIN_COMMAND} --conn-id {self.settings.conn_id}` to write a fresh one.",
                kind=AuthFailure.CACHE_UNREADABLE,
            ) from None
        self._cache = cache
        self._note_age(cache, metadata)
        self._loaded_state = state
        # Its secrets are registered one by one (_mask_cached_secrets): registering the
        # multi-kilobyte JSON itself would make the masker recompile a huge regex per rotation.
        self._mask_cached_secrets()
        if self._app is None:
            self._app = build_msal_app(self.settings, cache)

    def _note_age(self, cache: msal.SerializableTokenCache, metadata: dict[str, Any]) -> None:
        issued = metadata.get("refresh_token_issued_at")
        if issued is None:
            stamps = [int(str(e.get("last_modification_time") or 0)) for e in self._refresh_entries(cache)]
            issued = max(stamps, default=0) or None
        self.refresh_token_issued_at = float(issued) if issued is not None else None
        if self.refresh_token_issued_at is None or self.store is None:
            return
        days = (time.time() - self.refresh_token_issued_at) / 86_400
        if days >= REFRESH_TOKEN_WARN_DAYS and self._warned_for != self.refresh_token_issued_at:
            self._warned_for = self.refresh_token_issued_at  # once per token, not per reload
            log.warning(
                "The refresh token in %s (connection %r) was last renewed %.0f days ago; Entra ID "
                "lets it die after %d days unused. Keep it alive with `%s --conn-id %s --refresh` "
                "(or the partner_center_token_keepalive DAG) on a schedule shorter than that.",
                self.store.location,
                self.settings.conn_id,
                days,
                REFRESH_TOKEN_INACTIVE_DAYS,
                LOGIN_COMMAND,
                self.settings.conn_id,
            )

    def _mask_cached_secrets(self) -> None:
        assert self._cache is not None
        secrets: list[str | None] = []
        for kind in (self._cache.CredentialType.REFRESH_TOKEN, self._cache.CredentialType.ACCESS_TOKEN):
            secrets.extend(entry.get("secret") for entry in self._cache.search(kind))
        mask_secrets(*secrets)

    def _persist(self) -> None:
        assert self._cache is not None
        assert self.store is not None
        if not self._cache.has_state_changed:
            return
        self._mask_cached_secrets()
        state = json.loads(self._cache.serialize())
        entries = self._refresh_entries(self._cache)
        issued = max((int(str(e.get("last_modification_time") or 0)) for e in entries), default=0)
        state[METADATA_KEY] = {
            "refresh_token_issued_at": issued or int(time.time()),
            "saved_at": int(time.time()),
        }
        text = json.dumps(state, indent=1)
        try:
            self.store.save(text)
        except PartnerCenterConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - re-raised with the store named
            # The new refresh token exists only in memory now; say so loudly: with revoking
            # rotation the next run cannot authenticate unless this is fixed.
            raise PartnerCenterAuthError(
                f"Token acquired, but the rotated token cache could not be saved to {self.store.location} "
                f"({type(err).__name__}: {err}). Fix access to that store; if the next run then fails with "
                f"invalid_grant, run `{LOGIN_COMMAND} --conn-id {self.settings.conn_id}`.",
                kind=AuthFailure.CACHE_NOT_SAVED,
            ) from None
        self._loaded_state = text
        self.refresh_token_issued_at = float(state[METADATA_KEY]["refresh_token_issued_at"])
        log.info("Saved the rotated token cache to %s", self.store.location)

    def _refresh_entries(self, cache: msal.SerializableTokenCache) -> list[dict[str, Any]]:
        entries = [
            e
            for e in cache.search(cache.CredentialType.REFRESH_TOKEN)
            if e.get("client_id") == self.settings.client_id or not e.get("client_id")
        ]
        entries.sort(key=lambda e: int(str(e.get("last_modification_time") or 0)), reverse=True)
        return entries

    def _cached_access_token(self, rejected: str | None) -> _Grant | None:
        """The cached access token with the most time left, if it may still be used."""
        assert self._cache is not None
        wanted = set(self.settings.scopes)
        now = time.time()
        best: _Grant | None = None
        for entry in self._cache.search(self._cache.CredentialType.ACCESS_TOKEN):
            secret = entry.get("secret")
            if not secret or secret == rejected or entry.get("client_id") != self.settings.client_id:
                continue
            if not wanted <= set(str(entry.get("target") or "").split()):
                continue
            expires_on = float(entry.get("expires_on") or 0)
            lifetime = expires_on - float(entry.get("cached_at") or expires_on)
            usable_for = expires_on - now - min(EXPIRY_SKEW_SECONDS, lifetime / 2)
            if usable_for > 0 and (best is None or usable_for > best.usable_for):
                best = _Grant(str(secret), usable_for, self._cached_username(entry))
        return best

    def _cached_username(self, entry: dict[str, Any]) -> str | None:
        assert self._cache is not None
        for account in self._cache.search(self._cache.CredentialType.ACCOUNT):
            if account.get("home_account_id") == entry.get("home_account_id"):
                return str(account.get("username") or "") or None
        return None

    # -- acquisition -----------------------------------------------------------------------------
    def _obtain(self, *, reuse: bool, rejected: str | None, guarantee: LeaseGuarantee) -> _Grant:
        """Reuse a cached token, else refresh; converge after a lost race instead of failing."""
        # Under an exclusive lease every cooperating writer has saved before we read: a refused
        # token is dead, not a lost race. Otherwise the winner may still be saving: wait for it.
        deadline = time.monotonic() + (0.0 if guarantee is LeaseGuarantee.EXCLUSIVE else RACE_WAIT_SECONDS)
        attempt = 0
        while True:
            cached = self._cached_access_token(rejected) if reuse else None
            if cached is not None:
                return cached
            used = self._loaded_state
            try:
                return self._grant(self._acquire())
            except PartnerCenterAuthError as err:
                if err.kind is not AuthFailure.REFRESH_TOKEN_REJECTED or self.store is None:
                    raise
                newer = self._wait_for_newer(used, deadline, attempt)
                if newer is None:
                    raise
                log.warning(
                    "Refresh token refused after another task rotated it; continuing from the newer "
                    "cache in %s",
                    self.store.location,
                )
                self._load(newer)
                reuse, attempt = True, attempt + 1

    def _wait_for_newer(self, used: str | None, deadline: float, attempt: int) -> str | None:
        import random

        assert self.store is not None
        while True:
            state = self.store.load()
            if state and state != used:
                return state
            if time.monotonic() >= deadline:
                return None
            # Jittered and growing, bounded by the deadline: the winner's save is milliseconds away.
            time.sleep(min(random.uniform(0.01, 0.05) * 2 ** min(attempt, 4), 0.5))
            attempt += 1

    def _grant(self, result: dict[str, Any]) -> _Grant:
        token = str(result["access_token"])
        expires_in = float(result.get("expires_in") or 300)
        claims = result.get("id_token_claims") or {}
        usable_for = expires_in - min(EXPIRY_SKEW_SECONDS, expires_in / 2)
        return _Grant(token, usable_for, claims.get("preferred_username"))

    def _acquire(self) -> dict[str, Any]:
        try:
            return self._acquire_by_grants()
        except requests.RequestException as err:
            raise _unreachable(self.settings, err) from None

    def _acquire_by_grants(self) -> dict[str, Any]:
        assert self._app is not None
        assert self._cache is not None
        scopes = list(self.settings.scopes)
        failures: list[tuple[CredentialSource, dict[str, Any]]] = []
        candidates = [
            (CredentialSource.CACHED_REFRESH_TOKEN, str(e["secret"]))
            for e in self._refresh_entries(self._cache)[:1]
            if e.get("secret")
        ]
        if self.settings.refresh_token:
            candidates.append((CredentialSource.CONNECTION_REFRESH_TOKEN, self.settings.refresh_token))
        tried: set[str] = set()
        for source, refresh_token in candidates:
            if refresh_token in tried:
                continue
            tried.add(refresh_token)
            self._sent += 1
            result = self._app.acquire_token_by_refresh_token(refresh_token, scopes=scopes)
            if "access_token" in result:
                return dict(result)
            failures.append((source, result))
            if _failure_kind(source, result) is not AuthFailure.REFRESH_TOKEN_REJECTED:
                break  # MFA, consent, tenant: another refresh token gets the same answer

        if self.settings.username and self.settings.user_password:
            self._sent += 1
            result = self._app.acquire_token_by_username_password(
                self.settings.username, self.settings.user_password, scopes=scopes
            )
            if "access_token" in result:
                log.warning(
                    "Connection %r used the legacy password grant; it fails once MFA is enforced. "
                    "Run `%s` and switch to a credential store.",
                    self.settings.conn_id,
                    LOGIN_COMMAND,
                )
                return dict(result)
            failures.append((CredentialSource.PASSWORD, result))
        raise self._failure(failures)

    def _failure(self, failures: list[tuple[CredentialSource, dict[str, Any]]]) -> PartnerCenterAuthError:
        conn_id = self.settings.conn_id
        if not failures:
            where = f" (credential store {self.store.location} is empty)" if self.store else ""
            return PartnerCenterAuthError(
                f"Connection {conn_id!r} has no usable credential{where}: run "
                f"`{LOGIN_COMMAND} --conn-id {conn_id}` to sign in with a device code, or set extra "
                "refresh_token.",
                kind=AuthFailure.NO_CREDENTIAL,
                error="no_credential",
            )
        # The most telling failure: the first that is not a plain "refused" (MFA, consent, ...).
        source, last = next(
            ((s, r) for s, r in failures if _failure_kind(s, r) is not AuthFailure.REFRESH_TOKEN_REJECTED),
            failures[-1],
        )
        error = str(last.get("error") or "unknown_error")
        kind = _failure_kind(source, last)
        code = _aadsts(last)
        tried = "; ".join(f"{src.value} -> {_describe(res)}" for src, res in failures)
        headline = _HEADLINES.get(kind, "The authority refused the sign-in")
        return PartnerCenterAuthError(
            f"Could not acquire a Partner Center token for connection {conn_id!r} from "
            f"{self.settings.authority}: {headline} (AADSTS{code if code else '?'}). "
            f"{_advice(kind, self.settings)} Attempts: {tried}",
            kind=kind,
            error=error,
            correlation_id=last.get("correlation_id"),
            aadsts=code,
        )


#: Entra ID codes by failure kind (the rest of invalid_grant is "revoked or invalid").
_CODES = {
    AuthFailure.REFRESH_TOKEN_EXPIRED: frozenset({700082, 70008}),
    AuthFailure.MFA_REQUIRED: frozenset({50076, 50079, 50158}),
    AuthFailure.CONSENT_REQUIRED: frozenset({65001}),
    AuthFailure.WRONG_TENANT: frozenset({90002, 700016, 90072}),
}

_HEADLINES = {
    AuthFailure.REFRESH_TOKEN_REJECTED: "the refresh token was revoked or is invalid",
    AuthFailure.REFRESH_TOKEN_EXPIRED: (
        f"the refresh token expired after {REFRESH_TOKEN_INACTIVE_DAYS} days unused"
    ),
    AuthFailure.MFA_REQUIRED: "the sign-in requires multi-factor authentication",
    AuthFailure.CONSENT_REQUIRED: "the app has no consent for the Partner Center API in this tenant",
    AuthFailure.WRONG_TENANT: "the tenant or the app registration in it was not found",
    AuthFailure.PASSWORD_REJECTED: "the password grant was refused",
    AuthFailure.CLIENT_REJECTED: "the application id or client secret was refused",
}


def _failure_kind(source: CredentialSource, result: dict[str, Any]) -> AuthFailure:
    error = str(result.get("error") or "")
    code = _aadsts(result)
    for kind, codes in _CODES.items():
        if code in codes:
            return kind
    if error == "invalid_grant":
        if source is CredentialSource.PASSWORD:
            return AuthFailure.PASSWORD_REJECTED
        return AuthFailure.REFRESH_TOKEN_REJECTED
    if error in {"invalid_client", "unauthorized_client"}:
        return AuthFailure.CLIENT_REJECTED
    return AuthFailure.OTHER


def _advice(kind: AuthFailure, settings: PartnerCenterSettings) -> str:
    conn_id = settings.conn_id
    login = f"`{LOGIN_COMMAND} --conn-id {conn_id}`"
    advice = {
        AuthFailure.PASSWORD_REJECTED: (
            "The user's password was refused or the sign-in needs MFA (enforced for Partner "
            f"Center App+User calls): run {login} and use the credential store instead."
        ),
        AuthFailure.REFRESH_TOKEN_REJECTED: (
            "Its user's password was reset, a sign-in policy or an administrator revoked it, and no "
            f"other task saved a newer one: run {login} to sign in again."
        ),
        AuthFailure.REFRESH_TOKEN_EXPIRED: (
            f"No task used it for {REFRESH_TOKEN_INACTIVE_DAYS} days: run {login} to sign in again, "
            f"then keep it alive with `{LOGIN_COMMAND} --conn-id {conn_id} --refresh` (or the "
            "partner_center_token_keepalive DAG) scheduled weekly."
        ),
        AuthFailure.MFA_REQUIRED: (
            "A Conditional Access policy now requires MFA this stored sign-in did not do: run "
            f"{login} (the device-code sign-in completes MFA in the browser)."
        ),
        AuthFailure.CONSENT_REQUIRED: (
            "A tenant administrator has to grant it once: `az ad app permission admin-consent "
            f"--id {settings.client_id}` (or Enterprise applications > Permissions > Grant admin "
            f"consent), then run {login}."
        ),
        AuthFailure.WRONG_TENANT: (
            f"Extra tenant_id {settings.tenant_id!r} or the application id {settings.client_id} "
            f"(login) is wrong: check with `az ad app show --id {settings.client_id}` in your "
            f"directory, then `{LOGIN_COMMAND} --conn-id {conn_id} --tenant-id <directory id>`."
        ),
        AuthFailure.CLIENT_REJECTED: (
            "The application id (login) or client secret (password) was refused: check them in "
            f"connection {conn_id!r} and that the app registration allows this flow."
        ),
    }
    return advice.get(kind, f"Check the connection's tenant_id/authority_host, or run {login}.")
