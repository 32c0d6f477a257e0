"""
One process's state of one credential: its lock, its current access token, its MSAL cache.

:class:`Credential` is what the token providers (:mod:`.tokens`) on one credential share. Asked
for a token, it returns its own while it is fresh; else, inside the credential store's lease
(:func:`~airflow_provider_partner.hooks.stores.store_lease`), it reads the store again, reuses a
valid access token another process saved there, or redeems the newest refresh token (then the
connection's bootstrap ``refresh_token`` and, legacy, the password grant), and saves the rotated
cache with its metadata block (when its refresh token was issued). A refresh token refused after
a lost race (the lease weak or absent) waits, bounded and jittered, for the winner's save and
continues from it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_partner.errors import (
    AuthFailure,
    PartnerCenterAuthError,
    PartnerCenterConfigError,
)
from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.masking import mask_rotating, mask_rotating_families
from airflow_provider_partner.hooks.session import build_msal_app
from airflow_provider_partner.hooks.token_failures import (
    LOGIN_COMMAND,
    REFRESH_TOKEN_INACTIVE_DAYS,
    CredentialSource,
    acquisition_failure,
    failure_kind,
    unreachable,
    unreadable_answer,
)
from airflow_provider_partner.stores import LeaseGuarantee, TextStore, store_lease

if TYPE_CHECKING:
    import msal

__all__ = ["LEASE_WAIT_SECONDS", "METADATA_KEY", "Credential", "Grant"]

log = logging.getLogger(__name__)

#: Renew this long before the access token's expiry (at most half its lifetime), so a page
#: request never races it.
EXPIRY_SKEW_SECONDS = 120
#: Warn from this age on: the keep-alive (``partner-center-login --refresh``) is overdue.
REFRESH_TOKEN_WARN_DAYS = 75
#: How long to wait for another holder of the store's lease before refreshing without it.
LEASE_WAIT_SECONDS = 60.0
#: How long a refused refresh token waits for another task's newer cache when the lease was not
#: exclusive (a lost race: the winner may not have saved yet).
RACE_WAIT_SECONDS = 10.0
#: The top-level key of the provider's metadata in the stored cache (MSAL keeps unknown keys).
METADATA_KEY = "AirflowProviderPartner"


@dataclass(frozen=True)
class Grant:
    """An access token and how long it may still be used."""

    token: str
    usable_for: float
    username: str | None = None


class Credential:
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

    def _adopt(self, grant: Grant) -> None:
        mask_rotating(f"{self.settings.conn_id} access token", grant.token)
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
        # Rotating: only the newest generations stay registered (see hooks/masking.py), and a
        # rotation's access and refresh tokens cost one compile of the masker together.
        conn_id = self.settings.conn_id
        kinds = self._cache.CredentialType
        mask_rotating_families(
            {
                f"{conn_id} refresh token": [
                    e.get("secret") for e in self._cache.search(kinds.REFRESH_TOKEN)
                ],
                f"{conn_id} access token": [e.get("secret") for e in self._cache.search(kinds.ACCESS_TOKEN)],
            }
        )

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

    def _cached_access_token(self, rejected: str | None) -> Grant | None:
        """The cached access token with the most time left, if it may still be used."""
        assert self._cache is not None
        wanted = set(self.settings.scopes)
        now = time.time()
        best: Grant | None = None
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
                best = Grant(str(secret), usable_for, self._cached_username(entry))
        return best

    def _cached_username(self, entry: dict[str, Any]) -> str | None:
        assert self._cache is not None
        for account in self._cache.search(self._cache.CredentialType.ACCOUNT):
            if account.get("home_account_id") == entry.get("home_account_id"):
                return str(account.get("username") or "") or None
        return None

    # -- acquisition -----------------------------------------------------------------------------
    def _obtain(self, *, reuse: bool, rejected: str | None, guarantee: LeaseGuarantee) -> Grant:
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

    def _grant(self, result: dict[str, Any]) -> Grant:
        token = str(result["access_token"])
        expires_in = float(result.get("expires_in") or 300)
        claims = result.get("id_token_claims") or {}
        usable_for = expires_in - min(EXPIRY_SKEW_SECONDS, expires_in / 2)
        return Grant(token, usable_for, claims.get("preferred_username"))

    def _acquire(self) -> dict[str, Any]:
        try:
            return self._acquire_by_grants()
        except requests.RequestException as err:
            raise unreachable(self.settings, err) from None
        except (ValueError, RecursionError) as err:
            # MSAL parses the token answer with json.loads and lets both escape.
            raise unreadable_answer(self.settings, err) from None

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
            if failure_kind(source, result) is not AuthFailure.REFRESH_TOKEN_REJECTED:
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
        raise acquisition_failure(self.settings, self.store, failures)
