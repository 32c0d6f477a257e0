"""Hook-level lineage: what the sensor's run emits through the collector alone, and import lightness."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from lineage_helpers import dag_from_folder, emitted, task_events

from airflow_provider_partner.compat import get_hook_lineage_collector
from airflow_provider_partner.hooks.lineage import create_asset, endpoint_uri, openlineage_name


@pytest.mark.dag
def test_the_sensor_run_reads_the_api_as_its_input_through_the_hook_alone(
    partner_center_emulator, airflow_db, openlineage_events, fresh_collector
):
    api_url = partner_center_emulator.info["api_url"]
    with emitted(openlineage_events) as events:
        run = dag_from_folder("test_lineage_new_referrals").test()

    assert run.state == "success"
    # The sensor has no OpenLineage methods: OpenLineage takes the hook lineage collector's datasets.
    complete = task_events(events, "test_lineage_new_referrals.wait")["COMPLETE"]
    assert complete["inputs"] == [
        {
            "namespace": f"partnercenter://{urlsplit(api_url).netloc}",
            "name": "v1.0/engagements/referrals",
            "facets": {},
        }
    ]
    assert complete["outputs"] == []
    collected = get_hook_lineage_collector().collected_assets
    # Two queries: more than max_referrals=10 match, so after the newest-first check the sensor
    # reads the oldest ten (they expire first); one collector entry per hook, counted per query.
    assert [(i.asset.uri, i.count) for i in collected.inputs] == [(endpoint_uri(api_url), 2)]
    assert collected.outputs == []


def test_endpoint_uris_and_their_openlineage_names():
    assert endpoint_uri() == "partnercenter://api.partner.microsoft.com/v1.0/engagements/referrals"
    assert endpoint_uri("https://proxy.contoso.com:8443/partner/") == (
        "partnercenter://proxy.contoso.com:8443/partner/v1.0/engagements/referrals"
    )
    assert openlineage_name(endpoint_uri()) == (
        "partnercenter://api.partner.microsoft.com",
        "v1.0/engagements/referrals",
    )
    assert create_asset(api_url="https://127.0.0.1:5000").uri == (
        "partnercenter://127.0.0.1:5000/v1.0/engagements/referrals"
    )


def test_an_asset_uri_without_host_or_endpoint_is_refused():
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match="needs the endpoint path"):
        Asset(uri="partnercenter://api.partner.microsoft.com")
    with pytest.raises(ValueError, match="needs the API host"):
        Asset(uri="partnercenter:///v1.0/engagements/referrals")


def test_dag_files_never_import_openlineage():
    code = (
        "import sys, airflow.sdk; before = set(sys.modules);"
        "import airflow_provider_partner.operators.referrals, airflow_provider_partner.sensors.referrals;"
        "new = set(sys.modules) - before;"
        "print(sorted(m for m in new if 'openlineage' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
