"""
The exceptions for the API's error statuses: one :class:`~.errors.PartnerCenterHTTPError`
subclass per status that needs its own advice, with redacted URLs and scrubbed bodies.
"""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_partner.errors import (
    PartnerCenterHTTPError,
    PartnerCenterNotFoundError,
    PartnerCenterPermissionError,
    PartnerCenterPreconditionFailed,
    PartnerCenterUnauthorizedError,
    trim_body,
)
from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.urls import redact_url

__all__ = ["RETRY_STATUSES", "error_for"]

#: Statuses that say "try again" (reads; writes retry only 429 and 503).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _secrets(response: requests.Response, settings: PartnerCenterSettings) -> list[str | None]:
    sent = str(response.request.headers.get("Authorization", "")) if response.request else ""
    return [
        sent.removeprefix("Bearer ") or None,
        settings.client_secret,
        settings.refresh_token,
        settings.user_password,
    ]


def error_for(
    response: requests.Response,
    method: str,
    request_id: str,
    correlation_id: str,
    settings: PartnerCenterSettings,
) -> PartnerCenterHTTPError:
    """
    The exception for an error status of ``response`` (after retries), URL redacted, body scrubbed.

    ``request_id``/``correlation_id`` are the ids sent; ``settings`` gives the secrets to scrub.
    """
    status = response.status_code
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "url": redact_url(response.url or ""),
        "request_id": request_id,
        "correlation_id": correlation_id,
        "server_request_id": response.headers.get("Request-ID") or response.headers.get("MS-RequestId"),
        # A body that echoes the request would carry the token: scrubbed before it is quoted.
        "body": trim_body(response.content, secrets=_secrets(response, settings)),
    }
    if status == 401:
        # request() refreshes once on a 401, so a 401 here is always the refreshed token's.
        challenge = response.headers.get("WWW-Authenticate", "")
        return PartnerCenterUnauthorizedError(
            f"The API rejected a freshly refreshed access token (HTTP 401 {trim_body(challenge, 200)}). "
            "The app registration may lack the Partner Center user_impersonation permission, or "
            f"connection {settings.conn_id!r} has the wrong scope.",
            **kwargs,
        )
    if status == 403:
        return PartnerCenterPermissionError(
            "Forbidden: the signed-in user lacks the Partner Center Referral Admin or Referral User "
            "role (or Global Admin). Assign the role in Partner Center (Account settings > User "
            "management) and run the task again.",
            **kwargs,
        )
    if status == 404:
        return PartnerCenterNotFoundError(
            "Not found: the referral id or the API path does not exist.", **kwargs
        )
    if status == 412:
        return PartnerCenterPreconditionFailed(
            "Precondition failed: the referral changed since its eTag was read. Read it again and "
            "re-apply the update.",
            **kwargs,
        )
    if status in RETRY_STATUSES:
        return PartnerCenterHTTPError(
            "The API kept answering with a transient error after all retries; try again later or "
            "raise extras max_retries/max_retry_time.",
            **kwargs,
        )
    if 400 <= status < 500:
        return PartnerCenterHTTPError(
            "The API refused the request; the response body says which part was invalid.", **kwargs
        )
    return PartnerCenterHTTPError(f"Unexpected HTTP status {status}.", **kwargs)
