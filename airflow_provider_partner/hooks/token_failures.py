"""
Why a token request failed, and what to do about it.

Every refusal of the authority is classified into an :class:`~.errors.AuthFailure` kind, first by
its AADSTS code (expired, MFA, consent, tenant), then by its OAuth error; each kind has a headline
and advice that names the connection's own values and the command that fixes it. The messages
say which credential was tried (:class:`CredentialSource`) and what the authority answered.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_partner.errors import AuthFailure, PartnerCenterAuthError, trim_body

if TYPE_CHECKING:
    from airflow_provider_partner.hooks.connection import PartnerCenterSettings
    from airflow_provider_partner.stores import TextStore

__all__ = [
    "LOGIN_COMMAND",
    "REFRESH_TOKEN_INACTIVE_DAYS",
    "CredentialSource",
    "acquisition_failure",
    "advice",
    "failure_kind",
    "unreachable",
]

LOGIN_COMMAND = "partner-center-login"
#: Entra ID lets a refresh token die after this many days unused.
REFRESH_TOKEN_INACTIVE_DAYS = 90

_AADSTS = re.compile(r"AADSTS(\d+)")


class CredentialSource(str, enum.Enum):
    """Which credential a token request used; its value is how messages name it."""

    # The values are descriptions of credentials, not credentials (hence the S105 waivers).

    CACHED_ACCOUNT = "the cached refresh token"
    CACHED_REFRESH_TOKEN = "the refresh token in the token cache"  # noqa: S105
    CONNECTION_REFRESH_TOKEN = "the connection's refresh_token"  # noqa: S105
    PASSWORD = "the password grant (username/user_password)"  # noqa: S105


def unreachable(settings: PartnerCenterSettings, err: Exception) -> PartnerCenterAuthError:
    """
    The error for an authority that could not be reached, naming it and the extras to check.

    :param settings: connection settings.
    :param err: what ``requests`` (or MSAL) raised.
    """
    cause = f"{type(err).__name__}: {trim_body(str(err), 300)}"
    return PartnerCenterAuthError(
        f"Cannot reach the authority {settings.authority} ({cause}). "
        "Check extras authority_host, tenant_id, proxies and ca_bundle.",
        kind=AuthFailure.AUTHORITY_UNREACHABLE,
        error="authority_unreachable",
    )


def unreadable_answer(settings: PartnerCenterSettings, err: Exception) -> PartnerCenterAuthError:
    """
    The error for a token answer that is not JSON (cut off, or nested past any decoder's depth).

    :param settings: connection settings.
    :param err: what MSAL's parse raised (``ValueError`` or ``RecursionError``); its text is
        named, never the body, which may hold tokens.
    """
    why = (
        "is nested deeper than a decoder can follow"
        if isinstance(err, RecursionError)
        else f"is not JSON ({type(err).__name__}: {trim_body(str(err), 120)}; probably cut off)"
    )
    return PartnerCenterAuthError(
        f"The authority {settings.authority} answered the token request of connection "
        f"{settings.conn_id!r} with a body that {why}; Entra ID never answers so. A proxy or server "
        "on the way is misbehaving: check extras authority_host and proxies, then run the task "
        "again. The body is not shown: it may hold tokens.",
        kind=AuthFailure.OTHER,
        error="unreadable_token_response",
    )


def describe_result(result: dict[str, Any]) -> str:
    """``error: first line of the description`` of one refusal, for the list of attempts."""
    description = str(result.get("error_description") or "").strip().splitlines()
    first = description[0] if description else "no description"
    return f"{result.get('error')}: {first[:300]}"


def aadsts_code(result: dict[str, Any]) -> int | None:
    """The refusal's AADSTS code (``error_codes``, else the description's ``AADSTSnnnn``)."""
    codes = result.get("error_codes")
    if isinstance(codes, list) and codes and str(codes[0]).isdigit():
        return int(codes[0])
    match = _AADSTS.search(str(result.get("error_description") or ""))
    return int(match.group(1)) if match else None


def acquisition_failure(
    settings: PartnerCenterSettings,
    store: TextStore | None,
    failures: list[tuple[CredentialSource, dict[str, Any]]],
) -> PartnerCenterAuthError:
    """
    The error for an acquisition every credential failed: the most telling refusal and its fix.

    :param settings: connection settings.
    :param store: the credential store (named when nothing was in it).
    :param failures: each credential tried and the authority's answer, in order.
    """
    conn_id = settings.conn_id
    if not failures:
        where = f" (credential store {store.location} is empty)" if store else ""
        return PartnerCenterAuthError(
            f"Connection {conn_id!r} has no usable credential{where}: run "
            f"`{LOGIN_COMMAND} --conn-id {conn_id}` to sign in with a device code, or set extra "
            "refresh_token.",
            kind=AuthFailure.NO_CREDENTIAL,
            error="no_credential",
        )
    # The most telling failure: the first that is not a plain "refused" (MFA, consent, ...).
    source, last = next(
        ((s, r) for s, r in failures if failure_kind(s, r) is not AuthFailure.REFRESH_TOKEN_REJECTED),
        failures[-1],
    )
    error = str(last.get("error") or "unknown_error")
    kind = failure_kind(source, last)
    code = aadsts_code(last)
    tried = "; ".join(f"{src.value} -> {describe_result(res)}" for src, res in failures)
    headline = _HEADLINES.get(kind, "The authority refused the sign-in")
    return PartnerCenterAuthError(
        f"Could not acquire a Partner Center token for connection {conn_id!r} from "
        f"{settings.authority}: {headline} (AADSTS{code if code else '?'}). "
        f"{advice(kind, settings)} Attempts: {tried}",
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


def failure_kind(source: CredentialSource, result: dict[str, Any]) -> AuthFailure:
    """
    Classify one refusal by its AADSTS code, else by its OAuth error.

    :param source: the credential the request used.
    :param result: MSAL's answer.
    """
    error = str(result.get("error") or "")
    code = aadsts_code(result)
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


def advice(kind: AuthFailure, settings: PartnerCenterSettings) -> str:
    """
    What to do about a failure of this kind, naming the connection's own values.

    :param kind: the failure kind.
    :param settings: connection settings.
    """
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
