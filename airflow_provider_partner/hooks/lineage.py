"""
Hook-level lineage: the Referrals API as an Airflow asset, reported through the hook lineage collector.

The API endpoint is named by a URI of its own scheme, ``partnercenter``::

    partnercenter://api.partner.microsoft.com/v1.0/engagements/referrals

(host and port of the connection's API URL, then its path prefix, if any, and the referrals path).
Reading referrals reports it as an input, creating or updating one as an output. Airflow's
``ProvidersManager`` knows the scheme from the provider info (``asset-uris``): :func:`sanitize_uri`
checks such URIs, :func:`create_asset` builds one, :func:`convert_asset_to_openlineage` names it
for OpenLineage, after its naming conventions for remote locations (``s3://bucket`` + ``key``):
namespace ``partnercenter://<host>[:<port>]``, name the path without its leading slash
(``v1.0/engagements/referrals``). See ``docs/lineage.md``.

Nothing here imports OpenLineage or the collector at module import: DAG files import the hook.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, urlsplit

from airflow_provider_partner.hooks.connection_schema import DEFAULT_API_URL, REFERRALS_PATH

if TYPE_CHECKING:
    from airflow.sdk import Asset

__all__ = [
    "SCHEME",
    "convert_asset_to_openlineage",
    "create_asset",
    "endpoint_uri",
    "openlineage_name",
    "report_lineage",
    "sanitize_uri",
]

log = logging.getLogger(__name__)

#: The URI scheme of Partner Center endpoints as assets.
SCHEME = "partnercenter"


def endpoint_uri(api_url: str = DEFAULT_API_URL, path: str = REFERRALS_PATH) -> str:
    """
    Return the asset URI of an API endpoint: ``partnercenter://<host>[:<port>]<prefix><path>``.

    :param api_url: the connection's API URL (``https://host[:port][/prefix]``).
    :param path: the endpoint's path below the API URL.
    """
    parts = urlsplit(api_url)
    return f"{SCHEME}://{parts.netloc}{parts.path.rstrip('/')}{path}"


def openlineage_name(uri: str) -> tuple[str, str]:
    """
    Return the OpenLineage ``(namespace, name)`` of a ``partnercenter://`` URI.

    :param uri: an endpoint URI (see :func:`endpoint_uri`).
    """
    parts = urlsplit(uri)
    return f"{SCHEME}://{parts.netloc}", parts.path.lstrip("/")


def report_lineage(context: Any, direction: Literal["input", "output"], uri: str) -> None:
    """
    Report an asset the task read (``input``) or wrote (``output``) to the hook lineage collector.

    Lineage is bookkeeping: a failure here is logged and never fails the task.

    :param context: what touched the asset (the hook, or the ``ObjectStoragePath`` written).
    :param direction: ``input`` or ``output``.
    :param uri: the asset URI.
    """
    # Imported here: DAG files import the hook, and the collector is only wanted when data moves.
    from airflow_provider_partner.compat import get_hook_lineage_collector

    try:
        collector = get_hook_lineage_collector()
        add = collector.add_input_asset if direction == "input" else collector.add_output_asset
        add(context=context, uri=uri)
    except Exception as err:  # noqa: BLE001 - lineage must never fail the task that moved the data
        log.warning("Could not report the %s %s to the hook lineage collector: %s", direction, uri, err)


# -- the scheme's handlers (ProvidersManager, "asset-uris" in get_provider_info) -------------------
def sanitize_uri(uri: SplitResult) -> SplitResult:
    """
    Check a ``partnercenter://`` asset URI: it names a host and an endpoint path.

    :param uri: the split URI (Airflow's asset URI normalisation passes it so).
    :raises ValueError: with no host or no path.
    """
    if not uri.netloc:
        raise ValueError(f"A {SCHEME}:// URI needs the API host, e.g. {endpoint_uri()}.")
    if uri.path in ("", "/"):
        raise ValueError(f"A {SCHEME}:// URI needs the endpoint path, e.g. {endpoint_uri()}.")
    return uri


def create_asset(
    *, api_url: str = DEFAULT_API_URL, path: str = REFERRALS_PATH, extra: dict[str, Any] | None = None
) -> Asset:
    """
    Return the asset of an API endpoint (the ``factory`` of the scheme).

    :param api_url: the connection's API URL.
    :param path: the endpoint's path below the API URL.
    :param extra: the asset's extra.
    """
    from airflow.sdk import Asset

    return Asset(uri=endpoint_uri(api_url, path), extra=extra)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """
    Return the OpenLineage dataset of a ``partnercenter://`` asset.

    :param asset: the asset.
    :param lineage_context: what reported it (unused: the URI says everything).
    """
    from openlineage.client.event_v2 import Dataset

    namespace, name = openlineage_name(asset.uri)
    return Dataset(namespace=namespace, name=name)
