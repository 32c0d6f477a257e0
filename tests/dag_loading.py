"""Parsing DAG files in tests the way the dag-processor does, on every supported Airflow release."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow_provider_partner.compat import dag_bag_class


def dag_bag(folder: str | Path) -> Any:
    """A ``DagBag`` of one DAG file or a folder (``DagBag`` moved in Airflow 3.2)."""
    return dag_bag_class()(dag_folder=str(folder))


def load_dag(dag_id: str, file: str | Path | None = None) -> Any:
    """
    The DAG ``dag_id``, parsed from its file in the session's DAGs folder.

    :param dag_id: the DAG to return.
    :param file: the file to parse: a path, or a name in the DAGs folder (default ``<dag_id>.py``).
    """
    path = Path(file) if file is not None else Path(f"{dag_id}.py")
    if not path.is_absolute():
        path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / path
    dag = dag_bag(path).get_dag(dag_id)
    assert dag is not None, f"{dag_id} did not parse from {path}"
    return dag
