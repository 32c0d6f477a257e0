"""
Every difference between the supported Airflow releases (3.1, 3.2, 3.3), in one place.

The provider, its example DAGs and its tests import what moved between releases from here,
never from the releases' own paths, so supporting a new release is a change to this module only
(``docs/support-matrix.md`` lists the matrix, ``make matrix`` tests it).

DAG files import this module at parse time (through the operator and the sensor): it imports
only what Airflow has already loaded by then (``airflow.sdk``, the configuration); the rest
(``DagBag``, Fernet, the listener manager, ...) is imported when the function asking for it is
called.

Names resolve to the newest location first: a release that has both keeps the new one, and the
old location is only tried where the new one does not exist yet (no deprecation warnings).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow import __version__ as _airflow_version


def _release(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


AIRFLOW_VERSION: tuple[int, int] = _release(_airflow_version)
"""The running Airflow's ``(major, minor)``."""

AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= (3, 2)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3)

HAS_ASSET_STATE_STORE = AIRFLOW_V_3_3_PLUS
"""Whether a trigger in an ``AssetWatcher`` gets its asset's state store (Airflow 3.3+)."""

if TYPE_CHECKING:
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import (
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferralError,
        TaskDeferralTimeout,
    )
else:
    try:  # 3.2+: the Task SDK has its own configuration and exceptions
        from airflow.sdk.configuration import conf
        from airflow.sdk.exceptions import (
            AirflowSensorTimeout,
            AirflowSkipException,
            TaskDeferralError,
            TaskDeferralTimeout,
        )
    except ImportError:  # 3.1
        from airflow.configuration import conf
        from airflow.exceptions import (
            AirflowSensorTimeout,
            AirflowSkipException,
            TaskDeferralError,
            TaskDeferralTimeout,
        )

    try:  # 3.2+
        from airflow.sdk import CronDataIntervalTimetable
    except ImportError:  # 3.1: the core timetable, which its DAGs accept
        from airflow.timetables.interval import CronDataIntervalTimetable

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "HAS_ASSET_STATE_STORE",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "CronDataIntervalTimetable",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "conf",
    "connection_not_found_error",
    "dag_bag_class",
    "dag_serialization",
    "get_fernet",
    "get_hook_lineage_collector",
    "get_listener_manager",
    "import_string",
    "secrets_masker",
]


def _first_of(*locations: str) -> Any:
    """The first ``module:name`` of ``locations`` that this Airflow has (newest location first)."""
    for location in locations:
        module_name, _, name = location.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found = getattr(module, name, None)
        if found is not None:
            return found
    raise ImportError(f"Airflow {_airflow_version} has none of {', '.join(locations)}")


def get_fernet() -> Any:
    """Airflow's Fernet (the ``[core] fernet_key``): ``airflow.sdk.crypto`` from 3.2."""
    return _first_of("airflow.sdk.crypto:get_fernet", "airflow.models.crypto:get_fernet")()


def get_hook_lineage_collector() -> Any:
    """
    Airflow's hook lineage collector: ``airflow.sdk.lineage`` from 3.2, ``airflow.lineage.hook`` before.

    3.2 and later keep the old path as a deprecated alias, so the new one is tried first.
    """
    return _first_of(
        "airflow.sdk.lineage:get_hook_lineage_collector", "airflow.lineage.hook:get_hook_lineage_collector"
    )()


def connection_not_found_error() -> type[Exception]:
    """
    What looking up an undefined connection raises: ``airflow.sdk.exceptions`` from 3.2.

    Airflow 3.1 raises ``airflow.exceptions.AirflowNotFoundException`` (3.2 and later keep it as
    the base class of the Task SDK's).
    """
    found: type[Exception] = _first_of(
        "airflow.sdk.exceptions:AirflowNotFoundException", "airflow.exceptions:AirflowNotFoundException"
    )
    return found


def dag_bag_class() -> type[Any]:
    """``DagBag``: in ``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models.dagbag`` before."""
    found: type[Any] = _first_of("airflow.dag_processing.dagbag:DagBag", "airflow.models.dagbag:DagBag")
    return found


def dag_serialization() -> Any:
    """
    What the scheduler stores a DAG as: ``DagSerialization`` (3.2+) or ``SerializedDAG`` (3.1).

    Both have ``to_dict(dag)`` and ``from_dict(data)``.
    """
    return _first_of(
        "airflow.serialization.serialized_objects:DagSerialization",
        "airflow.serialization.serialized_objects:SerializedDAG",
    )


def get_listener_manager() -> Any:
    """Airflow's listener manager: ``airflow.sdk.listener`` from 3.2, ``airflow.listeners`` before."""
    return _first_of(
        "airflow.sdk.listener:get_listener_manager", "airflow.listeners.listener:get_listener_manager"
    )()


def import_string(dotted_path: str) -> Any:
    """Import a class from its dotted path, as the triggerer imports a serialized trigger's."""
    return _first_of(
        "airflow.sdk._shared.module_loading:import_string", "airflow.sdk.module_loading:import_string"
    )(dotted_path)


def secrets_masker() -> Any:
    """The process's secrets masker (what redacts task logs), on every release."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    return _secrets_masker()
