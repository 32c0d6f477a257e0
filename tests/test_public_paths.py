"""The public import paths of earlier releases keep working after the stores and errors moved."""

from __future__ import annotations

import importlib

import pytest

MOVED = [
    ("airflow_provider_partner.hooks.errors", "airflow_provider_partner.errors", "PartnerCenterConfigError"),
    ("airflow_provider_partner.hooks.errors", "airflow_provider_partner.errors", "is_transient"),
    ("airflow_provider_partner.hooks.stores", "airflow_provider_partner.stores", "open_store"),
    ("airflow_provider_partner.hooks.stores", "airflow_provider_partner.stores", "LeaseGuarantee"),
    ("airflow_provider_partner.hooks.stores", "airflow_provider_partner.stores", "ObjectStorageTextStore"),
    ("airflow_provider_partner.hooks.stores", "airflow_provider_partner.stores", "store_lease"),
    ("airflow_provider_partner.hooks.stores", "airflow_provider_partner.stores", "TextStore"),
    (
        "airflow_provider_partner.hooks.variable_store",
        "airflow_provider_partner.stores.variables",
        "VariableTextStore",
    ),
    (
        "airflow_provider_partner.hooks.variable_store",
        "airflow_provider_partner.stores.variables",
        "ENCRYPTED_PREFIX",
    ),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_a_moved_name_is_the_same_object_at_its_old_path(old: str, new: str, name: str) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_the_old_errors_module_exports_every_error() -> None:
    old = importlib.import_module("airflow_provider_partner.hooks.errors")
    new = importlib.import_module("airflow_provider_partner.errors")
    assert sorted(old.__all__) == sorted(new.__all__)
    assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)
