"""
The one place ``requests`` sessions are made, for the API and for the authority, and the MSAL
application that uses the authority's.

Every session sends the provider's ``User-Agent``, uses the connection's proxies, and passes the
connection's ``verify`` and ``timeout`` on every request: ``requests`` lets the
``REQUESTS_CA_BUNDLE`` environment variable override a session-level ``verify``, so a CA bundle
set only on the session would silently be ignored wherever that variable is set.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from airflow_provider_partner import __version__
from airflow_provider_partner.errors import AuthFailure, PartnerCenterAuthError, trim_body
from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.token_failures import LOGIN_COMMAND, unreachable

if TYPE_CHECKING:
    import msal

__all__ = ["USER_AGENT", "build_authority_session", "build_msal_app", "is_microsoft_authority", "new_session"]

USER_AGENT = f"airflow-provider-partner/{__version__}"

#: ``answer(url) -> response | None``: a response made locally instead of sending the request.
LocalAnswer = Callable[[str], requests.Response | None]


class _SettingsSession(requests.Session):
    """
    A session that applies the connection's ``verify`` and default ``timeout`` per request.

    It also reads the environment's proxy variables once per origin instead of once per request.
    """

    def __init__(self, settings: PartnerCenterSettings, answer: LocalAnswer | None) -> None:
        super().__init__()
        self._settings = settings
        self._answer = answer
        self._environ_proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._environ_lock = threading.Lock()

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' own annotation differs between its releases (and its stubs)
        """
        Merge the request's settings with the environment's and the session's, as ``requests`` does.

        ``requests`` looks the proxy variables up for every request, walking all of
        ``os.environ`` twice: 160 µs a request with 100 variables (a Kubernetes pod has more),
        a tenth of the CPU a 100-referral page costs. They depend on the origin only (and
        ``NO_PROXY``), and a session lives within one task, so each origin is looked up once.
        """
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        with self._environ_lock:
            found = self._environ_proxies.get(key)
            if found is None:
                found = self._environ_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        merged = dict(proxies or {})
        if proxies is not None:  # requests adds the environment's only to a given mapping
            for scheme, proxy in found.items():
                merged.setdefault(scheme, proxy)
        if verify is True or verify is None:
            # requests' rule: these variables replace a default (True) verify, never a given path.
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        # The request's value wins over the session's; for proxies, key by key, a None removing it.
        return {
            "proxies": {k: v for k, v in {**self.proxies, **merged}.items() if v is not None},
            "stream": self.stream if stream is None else stream,
            "verify": self.verify if verify is None else verify,
            "cert": self.cert if cert is None else cert,
        }

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if self._answer is not None:
            local = self._answer(url.decode() if isinstance(url, bytes) else url)
            if local is not None:
                return local
        kwargs["verify"] = self._settings.verify
        kwargs.setdefault("timeout", self._settings.timeout)
        return super().request(method, url, *args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self._settings.conn_id!r})"


def new_session(
    settings: PartnerCenterSettings,
    *,
    headers: Mapping[str, str] | None = None,
    retry: Retry | None = None,
    answer: LocalAnswer | None = None,
    adapter: HTTPAdapter | None = None,
) -> requests.Session:
    """
    Return a session for one connection: user agent, proxies, per-request ``verify``/``timeout``.

    :param settings: the connection settings.
    :param headers: headers added to every request besides ``User-Agent``.
    :param retry: urllib3 retries for https requests (none by default: the API client retries
        itself, with request ids and logging).
    :param answer: called with each URL first; a response it returns is used without sending.
    :param adapter: the adapter for https (and http) URLs, e.g. one that a watchdog can abort.
    """
    session = _SettingsSession(settings, answer)
    session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})
    session.proxies.update(settings.proxies)
    if adapter is None and retry is not None:
        adapter = HTTPAdapter(max_retries=retry)
    if adapter is not None:
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


def is_microsoft_authority(authority_host: str) -> bool:
    """
    Whether ``authority_host`` is one of Microsoft's own Entra ID hosts (MSAL's well-known list).

    :param authority_host: the authority host URL.
    """
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

    return (urlsplit(authority_host).hostname or "") in WELL_KNOWN_AUTHORITY_HOSTS


def _userrealm_not_found(authority_hostname: str) -> LocalAnswer:
    def answer(url: str) -> requests.Response | None:
        parts = urlsplit(url)
        if parts.hostname != authority_hostname or not parts.path.startswith("/common/userrealm/"):
            return None
        response = requests.Response()
        response.status_code = 404
        response.url = url
        response._content = b"{}"
        response.headers["Content-Type"] = "application/json"
        return response

    return answer


def build_authority_session(settings: PartnerCenterSettings) -> requests.Session:
    """
    Return the ``requests`` session MSAL uses to talk to the authority.

    Besides what :func:`new_session` gives every session, it retries transient failures a few
    times, and answers MSAL's user-realm probe locally for authorities that are not Microsoft's:
    MSAL sends that probe to ``https://<host>/common/userrealm/...`` without the authority's port,
    and a 404 makes it fall back to the plain password grant.

    :param settings: the connection settings.
    """
    retry = Retry(
        total=3,
        connect=3,
        read=0,  # a lost token response may already have rotated the refresh token
        status=2,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=0.5,
        backoff_jitter=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    answer = None
    if not is_microsoft_authority(settings.authority_host):
        answer = _userrealm_not_found(urlsplit(settings.authority_host).hostname or "")
    return new_session(settings, retry=retry, answer=answer)


class _WithholdTokenBodies(logging.Filter):
    """
    Keep the body out of MSAL's "Token response is not in json format: <body>" error line.

    A token answer cut off by a proxy still holds the new access and refresh tokens, which the
    masker does not know yet: the line keeps its words, the body is replaced.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Token response is not in json format"):
            record.msg = "Token response is not in json format (body withheld: it may hold tokens)"
            record.args = ()
        return True


_WITHHOLD = _WithholdTokenBodies()


def _withhold_token_bodies() -> None:
    # The logger MSAL's OAuth2 client writes that line to; adding the same filter twice is a no-op.
    logging.getLogger("msal.oauth2cli.oauth2").addFilter(_WITHHOLD)


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

    _withhold_token_bodies()
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
        raise unreachable(settings, err) from None
