"""
Where a Delta table lives: an ObjectStoragePath-style URL turned into delta-rs's URI and ``storage_options``.

Users name a table as they name the operator's output, with the Airflow connection in the URL:

- ``file:///data/referrals`` (or a plain local path);
- ``s3://<aws_conn_id>@<bucket>/<key>``: credentials, region and endpoint from the ``aws``
  connection, resolved by the Amazon provider's ``S3Hook`` (keys, profiles, assumed roles);
- ``abfs://<conn_id>@<container>/<key>`` (or ``abfss://``): a ``wasb``/``adls`` connection's
  connection string, or account name plus key, SAS token or service principal; an
  ``account_host`` extra (``onelake.blob.fabric.microsoft.com``) points at OneLake.

A URL without a connection (``abfss://ws@onelake.dfs.fabric.microsoft.com/...``, ``s3://bucket/key``)
is passed to delta-rs as it is, with the ``storage_options`` the caller gives (or delta-rs's own
environment variables).

S3 commit safety (deltalake 1.x): a commit creates ``_delta_log/<version>.json`` with a
conditional copy (``copy_if_not_exists=multipart``: ``CompleteMultipartUpload`` with
``If-None-Match: *``), so two writers can never both create one version. Setting
``AWS_S3_ALLOW_UNSAFE_RENAME`` (or ``AWS_S3_LOCKING_PROVIDER``, which deltalake 1.x no longer
implements and treats as the same unsafe rename) turns that off: a concurrent commit may
silently overwrite another and lose its rows. :func:`check_s3_commit_safety` refuses both unless
the caller opts in.

Secrets (keys, SAS tokens, client secrets, connection strings) go only into the returned options:
never into a log line or an exception message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["DeltaLocation", "check_s3_commit_safety", "delta_location"]

_UNSAFE_S3_KEYS = ("AWS_S3_ALLOW_UNSAFE_RENAME", "AWS_S3_LOCKING_PROVIDER")
_TRUTHY = {"1", "true", "yes", "on", "y", "t"}
_AZURE_SCHEMES = {"abfs", "abfss", "az", "adl"}
_S3_SCHEMES = {"s3", "s3a"}
#: The storage account of azurite (and the legacy Azure Storage Emulator), the same everywhere.
_EMULATOR_ACCOUNT = "devstoreaccount1"


@dataclass(frozen=True)
class DeltaLocation:
    """
    A Delta table's place as delta-rs takes it.

    :param uri: the URI delta-rs opens (``/local/path``, ``s3://bucket/key``, ``az://container/key``).
    :param storage_options: delta-rs's ``storage_options`` (may hold secrets: never log them).
    :param display: the location as the user wrote it, without secrets (for logs and errors).
    """

    uri: str
    storage_options: dict[str, str] = field(repr=False)
    display: str

    def __str__(self) -> str:
        return self.display


def delta_location(
    location: Any, storage_options: Mapping[str, str] | None = None, allow_unsafe_s3: bool = False
) -> DeltaLocation:
    """
    The delta-rs URI and ``storage_options`` of a table location.

    :param location: a URL (``file://``, ``s3://conn@bucket/key``, ``abfs://conn@container/key``,
        or one without a connection), an ``ObjectStoragePath`` or a local path.
    :param storage_options: options laid over those derived from the connection (delta-rs's
        names, e.g. ``{"AWS_REGION": "eu-west-1"}``).
    :param allow_unsafe_s3: accept an S3 configuration without safe commits (see the module).
    :raises ValueError: for an unsupported scheme, or an unsafe S3 configuration without opt-in.
    """
    text = str(location)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    extra = dict(storage_options or {})
    if scheme in ("", "file", "local") or len(scheme) == 1:  # one letter: a Windows drive
        path = unquote(parts.path) if scheme in ("file", "local") else text
        return DeltaLocation(os.path.abspath(path), extra, text)
    if scheme not in _S3_SCHEMES | _AZURE_SCHEMES:
        raise ValueError(
            f"a Delta table location must be file://, s3:// or abfs:// (abfss://, az://), got {scheme}://"
        )
    conn_id = unquote(parts.username) if parts.username else None
    host = parts.hostname or ""
    key = parts.path.lstrip("/")
    display = f"{scheme}://{conn_id + '@' if conn_id else ''}{host}/{key}"
    if scheme in _S3_SCHEMES:
        options = {**(_s3_options(conn_id) if conn_id else {}), **extra}
        check_s3_commit_safety(options, allow_unsafe_s3)
        return DeltaLocation(f"s3://{host}/{key}", options, display)
    if conn_id and "." not in host:  # abfs://<conn>@<container>/<key>: Airflow's form
        options = {**_azure_options(conn_id), **extra}
        return DeltaLocation(f"az://{host}/{key}", options, display)
    # Azure's own form (abfss://<container>@<account>.dfs.core.windows.net/...): as it is.
    return DeltaLocation(text, extra, display)


def check_s3_commit_safety(options: Mapping[str, str], allow_unsafe_s3: bool = False) -> None:
    """
    Refuse S3 options (or environment variables) that make delta-rs commit without a conditional write.

    :param options: the table's ``storage_options``.
    :param allow_unsafe_s3: the caller accepts that concurrent loads may lose commits.
    :raises ValueError: naming the setting and what to do.
    """
    if allow_unsafe_s3:
        return
    upper = {name.upper(): value for name, value in options.items()}
    for name in _UNSAFE_S3_KEYS:
        value = upper.get(name, os.environ.get(name))
        if value is None or (name.endswith("RENAME") and value.strip().lower() not in _TRUTHY):
            continue
        raise ValueError(
            f"{name} is set ({'in storage_options' if name in upper else 'in the environment'}): "
            "deltalake 1.x then commits to S3 without a conditional write, and two concurrent "
            "loads can overwrite each other's commit and lose rows. Remove it (deltalake commits "
            "safely with S3's conditional writes, If-None-Match) or pass allow_unsafe_s3=True if "
            "only one writer ever writes this table."
        )


def _s3_options(conn_id: str) -> dict[str, str]:
    """delta-rs options from an ``aws`` connection, through the Amazon provider's ``S3Hook``."""
    try:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    except ImportError as err:
        raise ImportError(
            "s3:// Delta tables named by connection need apache-airflow-providers-amazon"
        ) from err

    hook = S3Hook(aws_conn_id=conn_id)
    options: dict[str, str] = {}
    # None: no credentials anywhere (anonymous); get_credentials() masks the secret in task logs.
    credentials = hook.get_credentials() if hook.get_session().get_credentials() else None
    if credentials and credentials.access_key and credentials.secret_key:
        options["AWS_ACCESS_KEY_ID"] = credentials.access_key
        options["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
        if credentials.token:
            options["AWS_SESSION_TOKEN"] = credentials.token
    region = hook.conn_region_name
    if region:
        options["AWS_REGION"] = region
    endpoint = hook.conn_config.get_service_endpoint_url(service_name="s3") if hook.conn_config else None
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def _connection_string_options(connection_string: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    options = {"account_name": fields.get("accountname", "")}
    if fields.get("accountkey"):
        options["account_key"] = fields["accountkey"]
    if fields.get("sharedaccesssignature"):
        options["sas_token"] = fields["sharedaccesssignature"]
    if fields.get("blobendpoint"):
        options["endpoint"] = fields["blobendpoint"].rstrip("/")
    return options


def _azure_options(conn_id: str) -> dict[str, str]:
    """delta-rs (object_store) options from a ``wasb``/``adls`` connection."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extras: dict[str, Any] = dict(conn.extra_dejson)

    def extra(name: str) -> str:
        # The providers' forms store their fields with and without a prefix.
        for key in (name, f"extra__{conn.conn_type}__{name}"):
            if extras.get(key):
                return str(extras[key])
        return ""

    if extra("connection_string"):
        options = _connection_string_options(extra("connection_string"))
    else:
        account = extra("account_name") or conn.host or conn.login or ""
        # An account URL (https://<account>.blob.core.windows.net) as the host: its first label.
        account = (urlsplit(account).hostname or "").split(".")[0] if "://" in account else account
        options = {"account_name": account}
        if extra("tenant_id"):  # a service principal: login and password are its id and secret
            options.update(
                tenant_id=extra("tenant_id"), client_id=conn.login or "", client_secret=conn.password or ""
            )
        elif extra("account_key") or conn.password:
            options["account_key"] = extra("account_key") or conn.password or ""
        if extra("sas_token"):
            options["sas_token"] = extra("sas_token")
        if extra("managed_identity_client_id"):
            options["client_id"] = extra("managed_identity_client_id")
    host = extra("account_host")
    if "fabric.microsoft.com" in host:
        options["use_fabric_endpoint"] = "true"
    elif host:
        options["endpoint"] = f"https://{host}"
    if options.get("account_name") == _EMULATOR_ACCOUNT:
        _use_emulator(options)
    elif options.get("endpoint", "").startswith("http://"):
        options["allow_http"] = "true"
    if not options.get("account_name"):
        raise ValueError(
            f"connection {conn_id!r} names no storage account: set a connection_string, or the "
            "account name as login/host or the account_name extra"
        )
    return {name: value for name, value in options.items() if value}


def _use_emulator(options: dict[str, str]) -> None:
    """
    Point delta-rs at azurite in its emulator mode (``use_emulator``), with the connection's address.

    deltalake 1.x lists a table's log with List Blobs' ``startFrom``, which azurite (3.35) ignores:
    every table would fail from its second commit on (``Invalid table version: 1``). In emulator
    mode object_store filters the listing itself; it reads the emulator's address only from the
    environment variable ``AZURITE_BLOB_STORAGE_URL``, set here (a process-wide setting, only
    ever for the emulator's well-known account).
    """
    endpoint = options.pop("endpoint", "")
    suffix = f"/{_EMULATOR_ACCOUNT}"
    origin = endpoint[: -len(suffix)] if endpoint.endswith(suffix) else endpoint
    options["use_emulator"] = "true"
    if origin:
        os.environ["AZURITE_BLOB_STORAGE_URL"] = origin
