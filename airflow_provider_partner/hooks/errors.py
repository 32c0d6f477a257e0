"""The error vocabulary's former home: it lives in :mod:`airflow_provider_partner.errors` now."""

from __future__ import annotations

from airflow_provider_partner.errors import *  # noqa: F403 - the public import path keeps working
from airflow_provider_partner.errors import __all__ as __all__
