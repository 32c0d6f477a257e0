"""
OpenLineage facets of :class:`~airflow_provider_partner.operators.referrals.PartnerCenterReferralsOperator`.

The operator records :class:`ExtractionFacts` in ``execute`` (plain values, no OpenLineage), and
its ``get_openlineage_facets_on_complete`` turns them into an ``OperatorLineage`` here:

- **input**: the Referrals API endpoint (namespace ``partnercenter://<host>``, name
  ``v1.0/engagements/referrals``, see :mod:`airflow_provider_partner.hooks.lineage`) with the
  query sent (the ``partnerCenterQuery`` facet: ``$filter``, ``$orderby``, ``$select``,
  ``$top``; never a credential) and ``inputStatistics`` (referrals received, duplicates included);
- **output** (file outputs only): the file, with ``outputStatistics`` (referrals written) and its
  ``schema`` (the referral fields the file holds; see :func:`referral_schema`).

OpenLineage is imported only when the listener asks for the facets: DAG parsing never imports it.
See ``docs/lineage.md`` for an emitted event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_partner.extract.parquet import (
    BOOL_FIELDS,
    EXTRA_COLUMN,
    JSON_FIELDS,
    STRING_FIELDS,
    TIMESTAMP_FIELDS,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_partner.extract.engine import ExtractionResult
    from airflow_provider_partner.extract.slices import ExtractionPlan

__all__ = [
    "QUERY_FACET",
    "QUERY_FACET_SCHEMA_URL",
    "ExtractionFacts",
    "facets_for",
    "facets_on_complete",
    "openlineage_dataset_name",
    "record_extraction",
    "referral_schema",
]

#: The key of the custom input facet holding the query.
QUERY_FACET = "partnerCenterQuery"
#: Where the query facet's JSON schema lives (it ships in the docs).
QUERY_FACET_SCHEMA_URL = (
    "https://raw.githubusercontent.com/airflow-provider-partner/airflow-provider-partner/main/"
    "docs/openlineage/PartnerCenterQueryInputDatasetFacet.json"
)


@dataclass(frozen=True)
class ExtractionFacts:
    """
    What one run of the operator read and wrote, as lineage needs it.

    :param conn_id: the Partner Center connection (its API URL names the input).
    :param filter: the complete ``$filter`` (user filter and window), ``None`` for none.
    :param orderby: the ``$orderby`` sent.
    :param select: the ``$select`` sent (the operator adds its required fields), ``None`` for all.
    :param top: the cap on referrals, if any.
    :param received: referrals received, duplicates included.
    :param count: distinct referrals delivered.
    :param output_uri: the output file's asset URI (``None``: XCom output).
    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet`` (``xcom`` with no file).
    """

    conn_id: str
    filter: str | None
    orderby: str | None
    select: str | None
    top: int | None
    received: int
    count: int
    output_uri: str | None
    output_format: str


def record_extraction(
    conn_id: str,
    plan: ExtractionPlan,
    result: ExtractionResult,
    target: ObjectStoragePath | None,
    output_format: str,
) -> ExtractionFacts:
    """
    Return the facts of a finished extraction; report its output file to the hook lineage collector.

    (The hook has reported the API as the input while paging.)

    :param conn_id: the Partner Center connection.
    :param plan: what was read.
    :param result: what the extraction read and delivered.
    :param target: the output file, ``None`` for XCom output.
    :param output_format: the file's format.
    """
    from airflow_provider_partner.hooks.lineage import report_lineage
    from airflow_provider_partner.operators.referrals import asset_uri

    output_uri = asset_uri(str(target)) if target is not None else None
    if target is not None and output_uri is not None:
        report_lineage(target, "output", output_uri)
    query = plan.queries()[0]
    return ExtractionFacts(
        conn_id=conn_id,
        filter=plan.query_filter,
        orderby=query["orderby"],
        select=query["select"],
        top=plan.top,
        received=result.received,
        count=result.count,
        output_uri=output_uri,
        output_format=output_format if target is not None else "xcom",
    )


def facets_for(facts: ExtractionFacts | None) -> Any:
    """
    Return the ``OperatorLineage`` of a run, ``None`` if it never finished an extraction.

    :param facts: what :func:`record_extraction` recorded.
    """
    if facts is None:
        return None
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    return facets_on_complete(facts, PartnerCenterHook(facts.conn_id).settings.api_url)


def referral_schema(select: str | None, output_format: str) -> list[tuple[str, str, str | None]]:
    """
    Return the ``(name, type, description)`` of each field in an output file, in file order.

    A parquet file always has every column of its fixed schema (nested values as JSON text, unknown
    fields in ``extra_json``). A JSONL file holds the selected fields (all known fields without
    ``$select``), with their JSON types: strings, ISO-8601 date-times, booleans, nested JSON.

    :param select: the ``$select`` sent (comma-separated), ``None`` for whole referrals.
    :param output_format: the file's format.
    """
    if output_format == "parquet":
        return [
            *((name, "string", None) for name in STRING_FIELDS),
            *((name, "timestamp", "UTC, microseconds") for name in TIMESTAMP_FIELDS),
            *((name, "boolean", None) for name in BOOL_FIELDS),
            *((name, "string", "JSON text") for name in JSON_FIELDS),
            (EXTRA_COLUMN, "string", "JSON object of the fields this schema does not know"),
        ]
    kinds: dict[str, tuple[str, str | None]] = {name: ("string", None) for name in STRING_FIELDS}
    kinds |= {name: ("timestamp", "ISO-8601 UTC text") for name in TIMESTAMP_FIELDS}
    kinds |= {name: ("boolean", None) for name in BOOL_FIELDS}
    names = (
        list(kinds) + list(JSON_FIELDS)
        if select is None
        else list(dict.fromkeys(f.strip() for f in select.split(",") if f.strip()))
    )
    return [(name, *kinds.get(name, ("json", "nested JSON value"))) for name in names]


def openlineage_dataset_name(uri: str) -> tuple[str, str]:
    """
    Return the OpenLineage ``(namespace, name)`` of a file URI, after OpenLineage's naming rules.

    ``file:///data/x.jsonl`` is ``("file", "/data/x.jsonl")``; ``s3://bucket/key`` (and any
    object store) is ``("s3://bucket", "key")``.

    :param uri: an output asset URI (no connection id).
    """
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return (f"file://{parts.netloc}" if parts.netloc else "file"), parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


@cache
def _query_facet_class() -> type[Any]:
    # Built on first use: the base class comes from the OpenLineage client, imported only now.
    import attr
    from openlineage.client.generated.base import InputDatasetFacet

    @attr.define
    class PartnerCenterQueryInputDatasetFacet(InputDatasetFacet):
        """The Referrals API query of a run (OData system query options, as sent)."""

        filter: str | None = attr.field(default=None)
        orderby: str | None = attr.field(default=None)
        select: str | None = attr.field(default=None)
        top: int | None = attr.field(default=None)

        @staticmethod
        def _get_schema() -> str:
            return QUERY_FACET_SCHEMA_URL

    return PartnerCenterQueryInputDatasetFacet


def facets_on_complete(facts: ExtractionFacts, api_url: str) -> Any:
    """
    Return the ``OperatorLineage`` of a completed run.

    :param facts: what the run read and wrote.
    :param api_url: the connection's API URL.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.input_statistics_input_dataset import (
        InputStatisticsInputDatasetFacet,
    )
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    from airflow_provider_partner.hooks.lineage import endpoint_uri, openlineage_name

    namespace, name = openlineage_name(endpoint_uri(api_url))
    query = _query_facet_class()(
        filter=facts.filter, orderby=facts.orderby, select=facts.select, top=facts.top
    )
    source = InputDataset(
        namespace=namespace,
        name=name,
        inputFacets={
            QUERY_FACET: query,
            "inputStatistics": InputStatisticsInputDatasetFacet(rowCount=facts.received),
        },
    )
    outputs = []
    if facts.output_uri is not None:
        out_namespace, out_name = openlineage_dataset_name(facts.output_uri)
        fields = [
            SchemaDatasetFacetFields(name=field, type=kind, description=about)
            for field, kind, about in referral_schema(facts.select, facts.output_format)
        ]
        outputs.append(
            OutputDataset(
                namespace=out_namespace,
                name=out_name,
                facets={"schema": SchemaDatasetFacet(fields=fields)},
                outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=facts.count)},
            )
        )
    return OperatorLineage(inputs=[source], outputs=outputs)
