"""The operator's lineage in real dag.test() runs: the OpenLineage events and the hook lineage collector."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from lineage_helpers import dag_from_folder, emitted, task_events, without_producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operators"))
from operator_helpers import expected_referrals, midnight_today

from airflow_provider_partner.compat import get_hook_lineage_collector
from airflow_provider_partner.extract.parquet import parquet_schema
from airflow_provider_partner.operators.lineage import (
    QUERY_FACET_SCHEMA_URL,
    ExtractionFacts,
    facets_on_complete,
    openlineage_dataset_name,
    referral_schema,
)

pytestmark = pytest.mark.dag

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

DAG_ID = "test_lineage_referrals"
STATS = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json"
OUT_STATS = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
SCHEMA = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json"
TS = ("timestamp", "ISO-8601 UTC text")


def _field(name: str, kind: str, description: str | None = None) -> dict:
    field = {"name": name, "type": kind, "fields": []}
    return field | ({"description": description} if description else {})


def test_a_run_emits_the_api_query_as_input_and_the_file_with_count_and_schema_as_output(
    partner_center_emulator, airflow_db, out_dir, openlineage_events, fresh_collector
):
    emu = partner_center_emulator
    dag = dag_from_folder(DAG_ID)
    start = midnight_today() - dt.timedelta(days=2)
    end = start + dt.timedelta(days=1)

    with emitted(openlineage_events) as events:
        run = dag.test(logical_date=end)

    assert run.state == "success"
    manifest = run.get_task_instance("extract").xcom_pull(task_ids="extract")
    expected = [r for r in expected_referrals(emu, start, end) if r["direction"] == "Incoming"]
    target = out_dir / f"referrals_{start:%Y%m%d}.jsonl"
    api_host = urlsplit(emu.info["api_url"]).netloc
    assert api_host.startswith("127.0.0.1:")
    assert manifest["path"] == f"file://{target}"
    assert manifest["count"] == manifest["received"] == len(expected) > 0

    # No credential of the connection anywhere in what OpenLineage was sent.
    sent = json.dumps(events)
    for secret in ("client_secret", "refresh_token", "password", "admin_token"):
        assert emu.info[secret] not in sent

    by_type = task_events(events, f"{DAG_ID}.extract")
    assert sorted(by_type) == ["COMPLETE", "START"]
    # At start nothing was read yet: no datasets (the path is only known at run time).
    assert (by_type["START"]["inputs"], by_type["START"]["outputs"]) == ([], [])
    complete = without_producer(by_type["COMPLETE"])
    assert complete["job"]["namespace"] == "partner-tests"
    window = f"updatedDateTime ge {start:%Y-%m-%dT%H:%M:%SZ} and updatedDateTime lt {end:%Y-%m-%dT%H:%M:%SZ}"
    assert complete["inputs"] == [
        {
            "namespace": f"partnercenter://{api_host}",
            "name": "v1.0/engagements/referrals",
            "facets": {},
            "inputFacets": {
                "partnerCenterQuery": {
                    "_schemaURL": QUERY_FACET_SCHEMA_URL,
                    "filter": f"direction eq 'Incoming' and {window}",
                    "orderby": "updatedDateTime asc",
                    "select": "name,status,id,updatedDateTime",
                },
                "inputStatistics": {
                    "_schemaURL": f"{STATS}#/$defs/InputStatisticsInputDatasetFacet",
                    "rowCount": len(expected),
                },
            },
        }
    ]
    assert complete["outputs"] == [
        {
            "namespace": "file",
            "name": str(target),
            "facets": {
                "schema": {
                    "_schemaURL": f"{SCHEMA}#/$defs/SchemaDatasetFacet",
                    "fields": [
                        _field("name", "string"),
                        _field("status", "string"),
                        _field("id", "string"),
                        _field("updatedDateTime", *TS),
                    ],
                }
            },
            "outputFacets": {
                "outputStatistics": {
                    "_schemaURL": f"{OUT_STATS}#/$defs/OutputStatisticsOutputDatasetFacet",
                    "rowCount": len(expected),
                }
            },
        }
    ]

    assert _shape({"inputs": complete["inputs"], "outputs": complete["outputs"]}) == _shape(_docs_example())

    # The hook reported the API as an input, the operator the file as an output (one each).
    collected = get_hook_lineage_collector().collected_assets
    assert [(i.asset.uri, type(i.context).__name__, i.count) for i in collected.inputs] == [
        (f"partnercenter://{api_host}/v1.0/engagements/referrals", "PartnerCenterHook", 1)
    ]
    assert [(o.asset.uri, str(o.context), o.count) for o in collected.outputs] == [
        (f"file://{target}", f"file://{target}", 1)
    ]


def _docs_example() -> dict:
    text = (REPO_ROOT / "docs" / "lineage.md").read_text(encoding="utf-8")
    block = text.split("<!-- openlineage-example -->\n```json\n", 1)[1].split("```\n<!-- end", 1)[0]
    return json.loads(block)


def _shape(value: Any) -> Any:
    """``value`` with every scalar replaced by its type's name (keys and list lengths kept)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_the_parquet_schema_facet_lists_the_file_columns_in_order():
    columns = [(field.name, str(field.type)) for field in parquet_schema()]
    facet = [(name, kind) for name, kind, _ in referral_schema("id,name", "parquet")]

    assert [name for name, _ in facet] == [name for name, _ in columns]
    kinds = {"string": "string", "timestamp[us, tz=UTC]": "timestamp", "bool": "boolean"}
    assert facet == [(name, kinds[arrow]) for name, arrow in columns]


def test_the_jsonl_schema_without_select_lists_every_known_field_once():
    fields = referral_schema(None, "jsonl")
    names = [name for name, _, _ in fields]

    assert len(names) == len(set(names)) == len(parquet_schema()) - 1  # every column but extra_json
    assert {kind for _, kind, _ in fields} == {"string", "timestamp", "boolean", "json"}
    assert ("customerProfile", "json", "nested JSON value") in fields
    assert ("createdDateTime", *TS) in fields
    assert ("isSpam", "boolean", None) in fields


def test_an_xcom_run_has_the_api_input_and_no_output():
    facts = ExtractionFacts(
        conn_id="partner_center_default",
        filter=None,
        orderby="updatedDateTime asc",
        select=None,
        top=5,
        received=5,
        count=5,
        output_uri=None,
        output_format="xcom",
    )

    lineage = facets_on_complete(facts, "https://api.partner.microsoft.com")

    (source,) = lineage.inputs
    assert (source.namespace, source.name) == (
        "partnercenter://api.partner.microsoft.com",
        "v1.0/engagements/referrals",
    )
    query = source.inputFacets["partnerCenterQuery"]
    assert (query.filter, query.orderby, query.select, query.top) == (None, "updatedDateTime asc", None, 5)
    assert source.inputFacets["inputStatistics"].rowCount == 5
    assert lineage.outputs == []


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/referrals/day.jsonl", ("file", "/data/referrals/day.jsonl")),
        ("s3://bucket/referrals/day.parquet", ("s3://bucket", "referrals/day.parquet")),
        ("gs://bucket/day.jsonl.gz", ("gs://bucket", "day.jsonl.gz")),
    ],
)
def test_output_files_are_named_after_openlineage_conventions(uri, expected):
    assert openlineage_dataset_name(uri) == expected
