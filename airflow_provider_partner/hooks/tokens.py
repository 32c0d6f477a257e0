"""
Delegated (App+User) access tokens for Partner Center, acquired with MSAL only.

One refresh at a time, everywhere the credential is shared:

- **within a process**, every hook on the same credential (the threads of parallel slices, the
  triggers of one triggerer, hooks made one after the other) shares one
  :class:`~.credential.Credential` and its lock: one refresh, whose access token all of them
  then use. A refresh blocks, so it must never run on an event loop: triggers call the hook
  through ``asyncio.to_thread``, and a call from a running loop is refused;
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

This module holds the shared :class:`TokenProvider` and the process's registry of credentials;
the per-credential cache, lease and acquisition are in :mod:`.credential`, the classification of
failures and their advice in :mod:`.token_failures`, the MSAL application in :mod:`.session`.
``msal`` is imported lazily, and the hook imports this module only on first use: DAG files import
the hook at parse time.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from datetime import timedelta

from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.credential import Credential
from airflow_provider_partner.hooks.token_failures import REFRESH_TOKEN_INACTIVE_DAYS
from airflow_provider_partner.stores import LeaseGuarantee, TextStore

# REFRESH_TOKEN_INACTIVE_DAYS: the hook's token health reads it from here.
__all__ = ["REFRESH_TOKEN_INACTIVE_DAYS", "TokenProvider"]


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


_REGISTRY: dict[str, Credential] = {}
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
        _credential: Credential | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        #: Token requests this provider sent to the authority (grants, not cache hits).
        self.token_requests = 0
        self._credential = _credential or Credential(settings, store)

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
                credential = _REGISTRY[key] = Credential(settings, store)
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
