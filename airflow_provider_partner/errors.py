"""
Exceptions raised by the Partner Center hook.

Every message names what went wrong and what to do about it, and carries the ids Microsoft
support asks for (``MS-RequestId``, ``MS-CorrelationId``, the server's ``Request-ID``).
No message ever contains a secret: only trimmed response bodies, URLs without credentials and
the names (never the values) of settings.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any

from airflow.sdk.exceptions import AirflowException

__all__ = [
    "AuthFailure",
    "PartnerCenterAuthError",
    "PartnerCenterCancelledError",
    "PartnerCenterConfigError",
    "PartnerCenterConnectionError",
    "PartnerCenterError",
    "PartnerCenterHTTPError",
    "PartnerCenterNextLinkError",
    "PartnerCenterNotFoundError",
    "PartnerCenterPermissionError",
    "PartnerCenterPreconditionFailed",
    "PartnerCenterResponseError",
    "PartnerCenterResultTooLargeError",
    "PartnerCenterStoreShadowedError",
    "PartnerCenterTLSError",
    "PartnerCenterUnauthorizedError",
    "is_transient",
    "scrub",
    "trim_body",
]

#: How much of a response body goes into an error message.
BODY_LIMIT = 500


_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """
    ``text`` with every given secret, and anything shaped like a bearer token, replaced by ``***``.

    A server or proxy that echoes the request (its ``Authorization`` header, a token in a form)
    would otherwise put the token into the error message, and from there into trigger events,
    XCom and failure callbacks.

    :param text: a response body or message.
    :param secrets: values to remove (the access token, the connection's secrets); empty ones skipped.
    """
    for secret in sorted({value for value in secrets if value}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1 ***", text)


def trim_body(text: str | bytes | None, limit: int = BODY_LIMIT, secrets: Iterable[str | None] = ()) -> str:
    """
    Shorten a response body for an error message: secrets scrubbed, whitespace collapsed, at most
    ``limit`` chars.

    :param text: the body (bytes are decoded leniently).
    :param limit: maximum length kept.
    :param secrets: values never to show (see :func:`scrub`).
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(scrub(text, secrets).split())
    if len(flat) > limit:
        return f"{flat[:limit]}... ({len(flat) - limit} more chars)"
    return flat


class PartnerCenterError(AirflowException):
    """Base class of every error raised by the Partner Center hook."""


class PartnerCenterConfigError(PartnerCenterError, ValueError):
    """The Airflow connection (or an argument) is invalid; the message names the field and the fix."""


class PartnerCenterStoreShadowedError(PartnerCenterConfigError):
    """
    A ``variable://`` store's key is also served by a secrets backend, which Airflow reads first.

    Airflow's ``Variable.get`` asks the secrets backends (an ``AIRFLOW_VAR_<KEY>`` environment
    variable, ``[secrets] backend``) before the metadata database, but ``Variable.set`` writes to
    the database: what the provider saves there (a rotated token cache, a watermark) would never be
    read back. The message names the key, where the shadowing value comes from and the fix.

    :param message: what is shadowed, by what, and how to fix it.
    :param key: the Variable key.
    :param sources: where the shadowing value comes from, as the message words them.
    """

    def __init__(self, message: str, *, key: str, sources: tuple[str, ...]) -> None:
        super().__init__(message)
        self.key = key
        self.sources = sources


class AuthFailure(str, enum.Enum):
    """Why no usable access token could be had: what :attr:`PartnerCenterAuthError.kind` holds."""

    #: No refresh token in the cache or the connection, and no password grant configured.
    NO_CREDENTIAL = "no_credential"
    #: The authority refused the refresh token as revoked or invalid (AADSTS50173, 9002313, ...),
    #: and no other task saved a newer one meanwhile (a lost race is retried, never reported).
    REFRESH_TOKEN_REJECTED = "refresh_token_rejected"  # noqa: S105 - a failure kind, not a secret
    #: The refresh token expired after 90 days unused (AADSTS700082, AADSTS70008).
    REFRESH_TOKEN_EXPIRED = "refresh_token_expired"  # noqa: S105 - a failure kind, not a secret
    #: The sign-in needs multi-factor authentication the stored token lacks (AADSTS50076, 50079).
    MFA_REQUIRED = "mfa_required"
    #: Nobody consented to the app's Partner Center permission in this tenant (AADSTS65001).
    CONSENT_REQUIRED = "consent_required"
    #: The tenant does not exist, or the app is not registered in it (AADSTS90002, AADSTS700016).
    WRONG_TENANT = "wrong_tenant"
    #: The authority refused the legacy password grant (wrong password, or MFA required).
    PASSWORD_REJECTED = "password_rejected"  # noqa: S105 - a failure kind, not a secret
    #: The authority refused the application id or client secret.
    CLIENT_REJECTED = "client_rejected"
    #: The authority could not be reached (network, proxy, TLS).
    AUTHORITY_UNREACHABLE = "authority_unreachable"
    #: The stored token cache is not valid JSON.
    CACHE_UNREADABLE = "cache_unreadable"
    #: A token was acquired but the rotated cache could not be written back to its store.
    CACHE_NOT_SAVED = "cache_not_saved"
    #: The API answered 401 to a freshly refreshed access token.
    TOKEN_REJECTED_BY_API = "token_rejected_by_api"  # noqa: S105 - a failure kind, not a secret
    #: Any other answer of the authority (see the OAuth error code in ``error``).
    OTHER = "other"


class PartnerCenterAuthError(PartnerCenterError):
    """
    No access token could be acquired (expired or revoked refresh token, bad client secret, ...).

    :param message: what failed and how to fix it.
    :param kind: which failure this is; branch on it rather than on the message.
    :param error: the OAuth ``error`` code returned by the authority (e.g. ``invalid_grant``).
    :param correlation_id: the authority's ``correlation_id``, when it returned one.
    :param aadsts: the Entra ID error code (the number of ``AADSTS50076``), when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: AuthFailure = AuthFailure.OTHER,
        error: str | None = None,
        correlation_id: str | None = None,
        aadsts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.error = error
        self.correlation_id = correlation_id
        self.aadsts = aadsts


class PartnerCenterConnectionError(PartnerCenterError):
    """The API could not be reached (connection refused or reset, timeouts) after every retry."""


class PartnerCenterHTTPError(PartnerCenterError):
    """
    The API answered with an error status (after retries, where retrying made sense).

    :param message: the headline (what happened and what to do).
    :param status: HTTP status code.
    :param method: HTTP method of the request.
    :param url: the URL requested.
    :param request_id: the ``MS-RequestId`` this client sent (same across retries).
    :param correlation_id: the ``MS-CorrelationId`` this client sent.
    :param server_request_id: the ``Request-ID`` header the server returned, if any.
    :param body: the response body, trimmed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        request_id: str | None = None,
        correlation_id: str | None = None,
        server_request_id: str | None = None,
        body: str = "",
    ) -> None:
        details = [f"HTTP {status} on {method} {url}"]
        details.append(f"MS-RequestId={request_id}")
        details.append(f"MS-CorrelationId={correlation_id}")
        if server_request_id:
            details.append(f"Request-ID={server_request_id}")
        text = f"{message} [{'; '.join(details)}]"
        if body:
            text += f" Response body: {body}"
        # First: in PartnerCenterUnauthorizedError the next base (the auth error) resets its own
        # attributes, and correlation_id must end up as the one this client sent.
        super().__init__(text)
        self.status = status
        self.method = method
        self.url = url
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.server_request_id = server_request_id
        self.body = body


class PartnerCenterUnauthorizedError(PartnerCenterHTTPError, PartnerCenterAuthError):
    """
    HTTP 401 on a freshly refreshed access token: the API does not accept this app's tokens.

    An HTTP error (status, method, url, request ids, body) and an auth error (``kind`` is
    :attr:`AuthFailure.TOKEN_REJECTED_BY_API`), so ``except PartnerCenterAuthError`` catches it.
    Takes the arguments of :class:`PartnerCenterHTTPError`.
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.kind = AuthFailure.TOKEN_REJECTED_BY_API
        self.error = "http_401"


class PartnerCenterPermissionError(PartnerCenterHTTPError):
    """HTTP 403: the signed-in user lacks a Partner Center referrals role."""


class PartnerCenterNotFoundError(PartnerCenterHTTPError):
    """HTTP 404: the referral (or the endpoint) does not exist."""


class PartnerCenterPreconditionFailed(PartnerCenterHTTPError):  # noqa: N818 - name fixed by the contract
    """HTTP 412: the ``If-Match`` eTag no longer matches (someone else changed the referral)."""


class PartnerCenterTLSError(PartnerCenterError):
    """
    TLS verification of the API failed (private CA, TLS-inspecting proxy); never retried.

    :param message: what failed and how to fix it.
    :param method: HTTP method of the request.
    :param url: the URL requested.
    :param request_id: the ``MS-RequestId`` this client sent.
    """

    def __init__(self, message: str, *, method: str, url: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.request_id = request_id


class PartnerCenterResponseError(PartnerCenterError):
    """A response could not be used (HTML instead of JSON, truncated JSON, no ``value`` list, ...)."""


class PartnerCenterNextLinkError(PartnerCenterError):
    """An ``@odata.nextLink`` points to another host, or repeats (a paging loop)."""


class PartnerCenterCancelledError(PartnerCenterError):
    """The work was stopped before the end because the task is being killed; nothing was written."""


class PartnerCenterResultTooLargeError(PartnerCenterError):
    """More referrals matched than the chosen output can hold (XCom); the message says what to change."""


def is_transient(error: BaseException) -> bool:
    """
    Whether waiting and trying again later can help (network trouble, throttling, server errors).

    Configuration, sign-in (401 included), permission, TLS and malformed-response errors are not
    transient: retrying them only hides the message a person has to act on.
    """
    if isinstance(error, PartnerCenterConnectionError):
        return True
    return isinstance(error, PartnerCenterHTTPError) and (error.status == 429 or error.status >= 500)
