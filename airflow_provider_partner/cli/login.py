"""
``partner-center-login``: sign a user in once with a device code and store the token cache.

Partner Center only accepts App+User tokens and enforces MFA, so a person has to sign in
interactively once; scheduled tasks then live on the rotating refresh token in the token cache.
This command:

1. starts the device-code flow for the connection's (or the given) app, tenant and authority,
   and prints the verification URL and code (to stderr);
2. waits until the user has signed in (or the code expires);
3. writes the MSAL token cache to the token cache store (``variable://<key>`` or an
   ObjectStoragePath URL);
4. prints, on stdout, the ``airflow connections add`` command for a connection that points at
   that store. The refresh token itself is printed only with ``--print-connection-json``, and
   only to stdout (for pasting into a secrets backend); it never goes to a log.

A ``variable://`` key that a secrets backend also serves (an ``AIRFLOW_VAR_<KEY>`` environment
variable, ``[secrets] backend``) is read from there, not from the database the cache is written
to: the sign-in is kept in the database, and a warning on stderr names the key, the backend and
the fix; the exit status is then 3, since no task can use the sign-in until the shadow is gone.

``partner-center-login --conn-id <id> --refresh`` signs nobody in: it redeems the stored refresh
token once (under the store's lease, like a task) and saves the rotated cache, which resets the
90-day inactivity clock; it prints the token's age before and after. Schedule it (or the
``partner_center_token_keepalive`` example DAG) for connections that may sit unused for weeks.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TextIO

from airflow_provider_partner.errors import PartnerCenterError, PartnerCenterStoreShadowedError
from airflow_provider_partner.hooks.connection import (
    DEFAULT_API_URL,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_SCOPE,
    PartnerCenterSettings,
    mask_secrets,
    settings_from_connection,
)

if TYPE_CHECKING:
    import msal

__all__ = ["SHADOWED_EXIT_STATUS", "main"]

#: The exit status of a sign-in saved to a ``variable://`` key that a secrets backend shadows.
SHADOWED_EXIT_STATUS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partner-center-login",
        description="Sign in to Microsoft Partner Center with a device code (MFA supported) and store "
        "the MSAL token cache where the Airflow connection reads it.",
    )
    parser.add_argument(
        "--conn-id", help="read app, tenant, authority, CA bundle and token cache from this connection"
    )
    parser.add_argument("--client-id", help="application (client) id (default: the connection's login)")
    parser.add_argument(
        "--tenant-id", help="tenant id or domain (default: the connection's, else organizations)"
    )
    parser.add_argument("--authority-host", help=f"authority host (default: {DEFAULT_AUTHORITY_HOST})")
    parser.add_argument("--scope", help=f"API scope (default: {DEFAULT_SCOPE})")
    parser.add_argument(
        "--api-url", help=f"API base URL for the printed connection (default: {DEFAULT_API_URL})"
    )
    parser.add_argument("--ca-bundle", help="PEM CA bundle to verify the authority's TLS certificate")
    parser.add_argument(
        "--credential-store",
        "--token-cache",
        dest="credential_store",
        help="where to store the token cache: variable://<key> or an ObjectStoragePath URL "
        "(default: the connection's credential_store extra; --token-cache is its former name)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="no sign-in: redeem the stored refresh token once and save the rotated cache "
        "(keeps it alive past the 90-day inactivity limit); needs --conn-id",
    )
    parser.add_argument(
        "--new-conn-id",
        help="connection id used in the printed command (default: --conn-id or partner_center_default)",
    )
    parser.add_argument(
        "--print-connection-json",
        action="store_true",
        help="also print the connection as JSON INCLUDING the refresh token to stdout (for a secrets "
        "backend); required when no token cache location is given",
    )
    parser.add_argument("--timeout", type=float, default=None, help="stop waiting after this many seconds")
    return parser


def _settings(args: argparse.Namespace) -> PartnerCenterSettings:
    host: str | None = args.api_url
    login: str | None = args.client_id
    extras: dict[str, Any] = {}
    if args.conn_id:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(args.conn_id)
        host = host or conn.host
        login = login or conn.login
        extras = {
            k: v
            for k, v in conn.extra_dejson.items()
            if k
            in {
                "tenant_id",
                "authority_host",
                "scope",
                "ca_bundle",
                "verify",
                "timeout",
                "proxies",
                "credential_store",
                "token_cache",
            }
        }
    overrides = {
        "tenant_id": args.tenant_id,
        "authority_host": args.authority_host,
        "scope": args.scope,
        "ca_bundle": args.ca_bundle,
        "credential_store": args.credential_store,
    }
    if args.credential_store:
        extras.pop("token_cache", None)  # the former name of the extra being overridden
    extras.update({k: v for k, v in overrides.items() if v})
    return settings_from_connection(
        args.conn_id or "partner-center-login",
        host=host,
        login=login,
        password=None,  # the device-code flow runs as a public client
        extras=extras,
        require_credentials=False,
    )


def _connection_json(settings: PartnerCenterSettings, refresh_token: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"tenant_id": settings.tenant_id}
    if settings.authority_host != DEFAULT_AUTHORITY_HOST:
        extra["authority_host"] = settings.authority_host
    if settings.scopes != (DEFAULT_SCOPE,):
        extra["scope"] = " ".join(settings.scopes)
    if isinstance(settings.verify, str):
        extra["ca_bundle"] = settings.verify
    if settings.credential_store:
        extra["credential_store"] = settings.credential_store
    if refresh_token:
        extra["refresh_token"] = refresh_token
    return {
        "conn_type": "partner_center",
        "host": settings.api_url,
        "login": settings.client_id,
        "extra": extra,
    }


def _sign_in(
    settings: PartnerCenterSettings,
    args: argparse.Namespace,
    cache: msal.SerializableTokenCache,
    err: TextIO,
) -> dict[str, Any] | None:
    """Run the device-code flow; return MSAL's result, or ``None`` after saying why on ``err``."""
    from airflow_provider_partner.hooks.session import build_msal_app

    app = build_msal_app(settings, cache, public=True)
    flow = app.initiate_device_flow(scopes=list(settings.scopes))
    if "user_code" not in flow:
        err.write(
            f"error: the authority refused to start a device-code sign-in: {flow.get('error_description')}\n"
        )
        return None
    if args.timeout:
        flow["expires_at"] = min(
            float(flow.get("expires_at", time.time() + args.timeout)), time.time() + args.timeout
        )
    err.write(
        f"To sign in, open {flow['verification_uri']} and enter the code {flow['user_code']} "
        f"(sign in as a user with the Referral Admin or Referral User role).\n"
    )
    err.flush()
    result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    if "access_token" not in result:
        err.write(
            f"error: sign-in did not complete: {result.get('error')}: "
            f"{str(result.get('error_description', '')).splitlines()[0:1]}\n"
        )
        return None
    mask_secrets(result.get("access_token"), result.get("refresh_token"))
    return result


def _report(
    settings: PartnerCenterSettings, args: argparse.Namespace, result: dict[str, Any], out: TextIO
) -> None:
    """Print where the cache went and the connection to create (the refresh token only if asked)."""
    username = (result.get("id_token_claims") or {}).get("preferred_username", "the user")
    conn_id = args.new_conn_id or args.conn_id or "partner_center_default"
    if settings.credential_store:
        out.write(f"Signed in as {username}. Token cache saved to {settings.credential_store}.\n")
    else:
        out.write(
            f"Signed in as {username}. No token cache location: the refresh token is in the JSON below.\n"
        )
    conn = _connection_json(settings, None)
    out.write(
        "Create (or update) the Airflow connection with:\n"
        f"  airflow connections add {shlex.quote(conn_id)} --conn-json {shlex.quote(json.dumps(conn))}\n"
    )
    if settings.credential_store:
        out.write(
            "  (add --conn-password <client secret> for a confidential app; keep it out of shell history)\n"
        )
    if args.print_connection_json:
        out.write(json.dumps(_connection_json(settings, result.get("refresh_token"))) + "\n")
    out.flush()


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """
    Run the device-code sign-in; return the exit status.

    :param args: parsed arguments.
    :param out: where results go (stdout).
    :param err: where prompts and progress go (stderr).
    """
    import msal

    from airflow_provider_partner.hooks.credential import LEASE_WAIT_SECONDS, METADATA_KEY
    from airflow_provider_partner.stores import open_store, store_lease

    if args.refresh:
        return _keep_alive(args, out, err)
    settings = _settings(args)
    if not settings.credential_store and not args.print_connection_json:
        err.write(
            "error: nowhere to keep the rotating refresh token. Pass --credential-store "
            "variable://<key> (or an object storage URL), set the connection's credential_store "
            "extra, or pass --print-connection-json to print the refresh token once to stdout.\n"
        )
        return 2
    cache = msal.SerializableTokenCache()
    result = _sign_in(settings, args, cache, err)
    if result is None:
        return 1
    shadowed: PartnerCenterStoreShadowedError | None = None
    if settings.credential_store:
        store = open_store(settings.credential_store)
        # Under the lease, as a task's refresh: a task never reads a half-replaced sign-in.
        with store_lease(store, LEASE_WAIT_SECONDS):
            state = json.loads(cache.serialize())
            state[METADATA_KEY] = {"refresh_token_issued_at": int(time.time()), "saved_at": int(time.time())}
            try:
                store.save(json.dumps(state, indent=1))
            except PartnerCenterStoreShadowedError as error:
                # Saved, but not where reads look first: the sign-in is kept (no need to repeat
                # it once the shadow is removed), and the connection is reported as usual.
                shadowed = error
    _report(settings, args, result, out)
    if shadowed is not None:
        err.write(f"warning: the sign-in was saved, but tasks will not read it yet. {shadowed}\n")
        err.flush()
        return SHADOWED_EXIT_STATUS
    return 0


def _days(age: timedelta | None) -> str:
    return "unknown" if age is None else f"{age.total_seconds() / 86_400:.1f} days"


def _keep_alive(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Redeem the stored refresh token once through the connection's hook; report its age."""
    if not args.conn_id:
        err.write("error: --refresh needs --conn-id (the connection whose credential store to renew)\n")
        return 2
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    hook = PartnerCenterHook(args.conn_id)
    if not hook.settings.credential_store:
        err.write(f"error: connection {args.conn_id!r} has no credential_store extra: nothing to renew\n")
        return 2
    before = hook.tokens.stored_refresh_token_age()
    hook.tokens.refresh()
    out.write(
        f"Renewed the refresh token of connection {args.conn_id!r} in {hook.settings.credential_store} "
        f"(it was {_days(before)} old; now {_days(hook.tokens.refresh_token_age)}).\n"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point of ``partner-center-login``."""
    args = _parser().parse_args(argv)
    try:
        return run(args, sys.stdout, sys.stderr)
    except PartnerCenterError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
