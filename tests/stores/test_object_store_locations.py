"""An object-store location that cannot work here is refused by name before anything is redeemed."""

from __future__ import annotations

import pytest

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.stores import open_store


def test_a_connection_id_that_is_not_defined_is_named() -> None:
    store = open_store("s3://partner_center_no_such_conn@bucket/cache.json")
    with pytest.raises(PartnerCenterConfigError) as caught:
        store.load()
    assert str(caught.value) == (
        "Token cache location 's3://partner_center_no_such_conn@bucket/cache.json' names the Airflow "
        "connection 'partner_center_no_such_conn', which is not defined here: create it (where the "
        "workers, the triggerer and partner-center-login read connections), or correct the id before "
        "the '@' of the URL."
    )


def test_a_scheme_no_installed_provider_handles_is_named_with_what_to_install() -> None:
    store = open_store("hdfs://namenode/partner/marks/followups.json", "Watermark location")
    with pytest.raises(PartnerCenterConfigError) as caught:
        store.save("{}")
    assert str(caught.value) == (
        "Watermark location 'hdfs://namenode/partner/marks/followups.json' is on hdfs://, and no "
        "installed provider handles it: install the provider that handles hdfs:// wherever the "
        "provider runs (workers, triggerer, partner-center-login)."
    )
