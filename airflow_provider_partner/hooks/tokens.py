"""
Delegated (App+User) access tokens for Partner Center, acquired with MSAL only.

Order of attempts, first success wins:

1. silent, from the MSAL token cache (a still-valid access token costs no request at all; an
   expired one is refreshed with the cached refresh token);
2. a refresh token: the newest one in the cache store when the cache has no account for a silent
   lookup, else the bootstrap ``refresh_token`` of the connection;
3. (legacy) the password grant, when ``username``/``user_password`` are configured.

The cache is persisted to its store after every change, because refresh tokens rotate.
``msal`` is imported lazily, and the hook imports this module only on first use: DAG files import
the hook at parse time.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
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
from airflow_provider_partner.hooks.stores import TextStore

if TYPE_CHECKING:
    import msal

__all__ = ["LOGIN_COMMAND", "CredentialSource", "TokenProvider", "build_msal_app"]

log = logging.getLogger(__name__)

LOGIN_COMMAND = "partner-center-login"
#: Renew this long before the access token's expiry, so a page request never races it.
EXPIRY_SKEW_SECONDS = 120


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
        # Raised for an authority whose OpenID configuration cannot be read.
        raise PartnerCenterConfigError(
            f"Cannot use authority {settings.authority} for connection {settings.conn_id!r}: {err}. "
            "Check extras authority_host and tenant_id (and ca_bundle for a private CA)."
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


class TokenProvider:
    """
    Acquire and renew access tokens for one connection, persisting the rotating cache.

    :param settings: connection settings.
    :param store: where the token cache is kept between runs (``None``: memory only).
    """

    def __init__(self, settings: PartnerCenterSettings, store: TextStore | None) -> None:
        self.settings = settings
        self.store = store
        #: Token requests this provider sent to the authority (grants, not cache hits).
        self.token_requests = 0
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._loaded_state: str | None = None
        self._app: msal.ClientApplication | None = None
        self._cache: msal.SerializableTokenCache | None = None
        self.username: str | None = None

    def __repr__(self) -> str:
        return f"TokenProvider(conn_id={self.settings.conn_id!r}, store={self.store!r})"

    # -- cache ---------------------------------------------------------------------------------
    def _load_cache(self) -> None:
        import msal

        cache = msal.SerializableTokenCache()
        state = self.store.load() if self.store else None
        if state:
            # Its secrets are registered one by one below (_mask_cached_secrets): registering the
            # multi-kilobyte JSON itself would make the masker recompile a huge regex per rotation.
            try:
                cache.deserialize(state)
            except ValueError:
                raise PartnerCenterAuthError(
                    f"The token cache at {self.store.location if self.store else '?'} is not valid JSON; "
                    f"run `{LOGIN_COMMAND} --conn-id {self.settings.conn_id}` to write a fresh one.",
                    kind=AuthFailure.CACHE_UNREADABLE,
                ) from None
        self._loaded_state = state
        self._cache = cache
        self._mask_cached_secrets()
        self._app = build_msal_app(self.settings, cache)

    def _mask_cached_secrets(self) -> None:
        assert self._cache is not None
        secrets: list[str | None] = []
        for kind in (self._cache.CredentialType.REFRESH_TOKEN, self._cache.CredentialType.ACCESS_TOKEN):
            secrets.extend(entry.get("secret") for entry in self._cache.search(kind))
        mask_secrets(*secrets)

    def _persist(self) -> None:
        assert self._cache is not None
        if not self._cache.has_state_changed:
            return
        self._mask_cached_secrets()
        state = self._cache.serialize()
        if self.store is None:
            return
        try:
            self.store.save(state)
        except Exception as err:  # noqa: BLE001 - re-raised with the store named
            # The new refresh token exists only in memory now; say so loudly: with revoking
            # rotation the next run cannot authenticate unless this is fixed.
            raise PartnerCenterAuthError(
                f"Token acquired, but the rotated token cache could not be saved to {self.store.location} "
                f"({type(err).__name__}: {err}). Fix access to that store; if the next run then fails with "
                f"invalid_grant, run `{LOGIN_COMMAND} --conn-id {self.settings.conn_id}`.",
                kind=AuthFailure.CACHE_NOT_SAVED,
            ) from None
        self._loaded_state = state
        log.info("Saved the rotated token cache to %s", self.store.location)

    def _cached_refresh_tokens(self) -> list[str]:
        assert self._cache is not None
        entries = [
            e
            for e in self._cache.search(self._cache.CredentialType.REFRESH_TOKEN)
            if e.get("client_id") == self.settings.client_id or not e.get("client_id")
        ]
        entries.sort(key=lambda e: int(str(e.get("last_modification_time") or 0)), reverse=True)
        return [str(e["secret"]) for e in entries if e.get("secret")]

    # -- acquisition -----------------------------------------------------------------------------
    def get_token(self, *, force_refresh: bool = False, rejected: str | None = None) -> str:
        """
        Return a valid access token, acquiring one only when needed.

        :param force_refresh: ignore the current token (the API answered 401 with it).
        :param rejected: the token the API refused; when another thread has already replaced
            it, its replacement is returned instead of refreshing again.
        """
        with self._lock:
            fresh = self._token is not None and time.monotonic() < self._expires_at
            if fresh and (not force_refresh or (rejected is not None and rejected != self._token)):
                assert self._token is not None
                return self._token
            if self._app is None:
                self._load_cache()
            try:
                result = self._acquire(force_refresh)
            except PartnerCenterAuthError as err:
                if err.kind not in _GRANT_REFUSED or self.store is None or not self._reload_if_newer():
                    raise
                # Another run rotated the refresh token since we loaded the cache: its new
                # cache is in the store now, try once more from there.
                log.warning(
                    "Refresh token rejected; another task updated %s meanwhile, retrying from it once",
                    self.store.location,
                )
                result = self._acquire(force_refresh)
            self._persist()
            token = str(result["access_token"])
            mask_secrets(token)
            expires_in = float(result.get("expires_in") or 300)
            self._token = token
            self._expires_at = time.monotonic() + max(expires_in - EXPIRY_SKEW_SECONDS, expires_in / 2)
            claims = result.get("id_token_claims") or {}
            self.username = claims.get("preferred_username") or self.username
            return token

    def _reload_if_newer(self) -> bool:
        assert self.store is not None
        state = self.store.load()
        if not state or state == self._loaded_state:
            return False
        self._load_cache()
        return True

    def _acquire(self, force_refresh: bool) -> dict[str, Any]:
        try:
            return self._acquire_by_grants(force_refresh)
        except requests.RequestException as err:
            raise _unreachable(self.settings, err) from None

    def _acquire_by_grants(self, force_refresh: bool) -> dict[str, Any]:
        assert self._app is not None
        scopes = list(self.settings.scopes)
        failures: list[tuple[CredentialSource, dict[str, Any]]] = []

        accounts = self._app.get_accounts(username=self.settings.username) or self._app.get_accounts()
        if accounts:
            result = self._app.acquire_token_silent_with_error(
                scopes, account=accounts[0], force_refresh=force_refresh
            )
            if result and "access_token" in result:
                if result.get("token_source") != "cache":
                    self.token_requests += 1
                return dict(result)
            if result:
                self.token_requests += 1
                failures.append((CredentialSource.CACHED_ACCOUNT, result))

        candidates: list[tuple[CredentialSource, str]] = []
        if not accounts:
            candidates += [
                (CredentialSource.CACHED_REFRESH_TOKEN, rt) for rt in self._cached_refresh_tokens()[:1]
            ]
        if self.settings.refresh_token:
            candidates.append((CredentialSource.CONNECTION_REFRESH_TOKEN, self.settings.refresh_token))
        tried: set[str] = set()
        for source, refresh_token in candidates:
            if refresh_token in tried:
                continue
            tried.add(refresh_token)
            self.token_requests += 1
            result = self._app.acquire_token_by_refresh_token(refresh_token, scopes=scopes)
            if "access_token" in result:
                return dict(result)
            failures.append((source, result))

        if self.settings.username and self.settings.user_password:
            self.token_requests += 1
            result = self._app.acquire_token_by_username_password(
                self.settings.username, self.settings.user_password, scopes=scopes
            )
            if "access_token" in result:
                log.warning(
                    "Connection %r used the legacy password grant; it fails once MFA is enforced. "
                    "Run `%s` and switch to a token cache.",
                    self.settings.conn_id,
                    LOGIN_COMMAND,
                )
                return dict(result)
            failures.append((CredentialSource.PASSWORD, result))
        raise self._failure(failures)

    def _failure(self, failures: list[tuple[CredentialSource, dict[str, Any]]]) -> PartnerCenterAuthError:
        conn_id = self.settings.conn_id
        login = f"`{LOGIN_COMMAND} --conn-id {conn_id}`"
        if not failures:
            where = f" (token cache {self.store.location} is empty)" if self.store else ""
            return PartnerCenterAuthError(
                f"Connection {conn_id!r} has no usable credential{where}: run {login} to sign in with "
                "a device code, or set extra refresh_token.",
                kind=AuthFailure.NO_CREDENTIAL,
                error="no_credential",
            )
        source, last = failures[-1]
        error = str(last.get("error") or "unknown_error")
        kind = _failure_kind(source, error)
        tried = "; ".join(f"{src.value} -> {_describe(res)}" for src, res in failures)
        return PartnerCenterAuthError(
            f"Could not acquire a Partner Center token for connection {conn_id!r} from "
            f"{self.settings.authority}. {_advice(kind, conn_id, login)} Attempts: {tried}",
            kind=kind,
            error=error,
            correlation_id=last.get("correlation_id"),
        )


#: Refusals after which a fresher cache in the store (another task's rotation) may still work.
_GRANT_REFUSED = frozenset({AuthFailure.REFRESH_TOKEN_REJECTED, AuthFailure.PASSWORD_REJECTED})


def _failure_kind(source: CredentialSource, error: str) -> AuthFailure:
    if error == "invalid_grant":
        if source is CredentialSource.PASSWORD:
            return AuthFailure.PASSWORD_REJECTED
        return AuthFailure.REFRESH_TOKEN_REJECTED
    if error in {"invalid_client", "unauthorized_client"}:
        return AuthFailure.CLIENT_REJECTED
    return AuthFailure.OTHER


def _advice(kind: AuthFailure, conn_id: str, login: str) -> str:
    if kind is AuthFailure.PASSWORD_REJECTED:
        return (
            "The user's password was refused or the sign-in needs MFA (enforced for Partner "
            f"Center App+User calls): run {login} and use the token cache instead."
        )
    if kind is AuthFailure.REFRESH_TOKEN_REJECTED:
        return (
            "The refresh token expired (90 days unused), was revoked, or was already rotated "
            f"by another task using the same credentials: run {login} to sign in again."
        )
    if kind is AuthFailure.CLIENT_REJECTED:
        return (
            "The application id (login) or client secret (password) was refused: check them in "
            f"connection {conn_id!r} and that the app registration allows this flow."
        )
    return f"Check the connection's tenant_id/authority_host, or run {login}."
