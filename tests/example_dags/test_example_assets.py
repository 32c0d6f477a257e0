"""
The example DAGs' assets as the UI shows them: a real dag.test() run, its asset events read back
from the metadata database (URIs, exact extras) and the alias each file was attached through.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from example_dag_helpers import load_dag, midnight_today, updated_in

pytestmark = pytest.mark.dag

LOOKBACK = dt.timedelta(hours=2)
DAY = dt.timedelta(days=1)


def _events(uri: str) -> list[dict[str, Any]]:
    """The extras of the events of the asset ``uri``, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        events = session.scalars(query.where(AssetModel.uri == uri).order_by(AssetEvent.id))
        return [dict(event.extra) for event in events]


def _alias(name: str) -> tuple[list[str], list[list[str]]]:
    """``(uris of the assets the alias resolved to, per event of those: its source aliases)``.

    Only those assets' events: other tests of this worker share the database and its aliases.
    """
    from airflow.models.asset import AssetAliasModel, AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        alias = session.scalars(select(AssetAliasModel).where(AssetAliasModel.name == name)).one()
        uris = sorted(asset.uri for asset in alias.assets)
        events = session.scalars(select(AssetEvent).order_by(AssetEvent.id)).all()
        sources = [
            [a.name for a in event.source_aliases]
            for event in events
            if event.source_aliases and event.asset.uri in uris
        ]
        return uris, sources


# Asset aliases and events differ between Airflow lines, not Pythons: once per line in the matrix.
@pytest.mark.airflow_line
def test_the_warehouse_load_records_the_file_through_its_alias_and_the_load_with_its_rows(
    partner_center_emulator: Any, airflow_db: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import structlog

    start = midnight_today() - dt.timedelta(days=2)
    window = updated_in(partner_center_emulator.referrals(), start - LOOKBACK, start + DAY)
    caplog.set_level(logging.INFO, logger="airflow_provider_partner")
    with structlog.testing.capture_logs() as logs:
        run = load_dag("referrals_warehouse_load").test(logical_date=start + DAY)
    assert run.state == "success"
    manifest = run.get_task_instance("extract_referrals").xcom_pull(task_ids="extract_referrals")

    path = f"file://{data_dir}/referrals/{start:%Y-%m-%d}.jsonl"
    window_start, window_end = f"{start - LOOKBACK:%Y-%m-%dT%H:%M:%SZ}", f"{start + DAY:%Y-%m-%dT%H:%M:%SZ}"
    assert _events(path) == [
        {
            "window_start": window_start,
            "window_end": window_end,
            "count": len(window),
            "received": manifest["received"],
            "duplicates_removed": manifest["received"] - len(window),
            "pages": manifest["pages"],
            "format": "jsonl",
            "path": path,
        }
    ]
    assert manifest["pages"] == -(-manifest["received"] // 100) > 0  # the emulator's page size
    assert _alias("partner_center_referrals_daily") == ([path], [["partner_center_referrals_daily"]])
    assert _events("partner_center_referrals_warehouse") == [
        {
            "day": f"{start:%Y-%m-%d}",
            "path": path,
            "rows_read": len(window),
            "rows_changed": len(window),
            "rows_total": len(window),
        }
    ]

    info = [str(entry["event"]) for entry in logs if entry["log_level"] == "info"]
    assert (
        f"Window {window_start} <= updatedDateTime < {window_end} (the data interval, start moved "
        "back 2 h by lookback=PT2H)"
    ) in info
    # The engine and the paging layer log through the standard library; the operator through structlog.
    engine = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert not [line for line in engine if line.startswith("Finished: ")]
    summaries = [line for line in engine if line.startswith("Extracted ")]
    assert len(summaries) == 1
    assert summaries[0].startswith(
        f"Extracted {manifest['pages']} page(s), {manifest['received']} referral(s), {len(window)} "
        f"distinct ({manifest['duplicates_removed']} duplicate(s) removed) in "
    )
    assert summaries[0].endswith(f" referrals/s) to {path}")


def test_the_event_driven_asset_uses_the_providers_scheme() -> None:
    from airflow_provider_partner.hooks.lineage import endpoint_uri

    dag = load_dag("referrals_event_driven")
    (asset,) = (
        dag.timetable.asset_condition.objects
        if hasattr(dag.timetable.asset_condition, "objects")
        else (dag.timetable.asset_condition,)
    )
    assert asset.uri == endpoint_uri() + "?direction=Incoming&status=New"
    assert asset.uri.startswith("partnercenter://api.partner.microsoft.com/")
