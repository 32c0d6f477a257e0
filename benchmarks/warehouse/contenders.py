"""
The three contenders, as a user would write each one, run inside a measuring child process.

- ``provider``: the provider's public API, one call per daily file: ``load_referrals(hook, path,
  table)`` with the official hook, ``merge_referrals_delta(path, table_uri)`` for Delta Lake.
- ``insert_rows``: common-sql's ``hook.insert_rows(table, rows, target_fields, replace=True,
  replace_index="id")`` with its defaults (``commit_every=1000``; one statement per row on every
  hook whose ``supports_executemany`` is off), rows flattened to the same columns as the
  provider's table and the line itself as ``raw_json``.
- ``dlt``: a ``dlt`` resource of the same flat rows, ``primary_key="id"``, write disposition
  ``merge`` (``dedup_sort`` on ``updated_date_time``, newest first), yielded in pages of 1,000, one
  ``pipeline.run`` per daily file, into the same database (``sqlalchemy`` for SQLite and MariaDB,
  ``postgres``, ``duckdb``; ``filesystem`` with ``table_format="delta"`` for Delta Lake).

Each one is split in ``prepare`` (imports, hooks: not timed) and ``load`` (timed); ``inspect``
counts the rows, and those carrying the edit's status, afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from benchmarks.warehouse.data import EDITED

__all__ = ["CONTENDERS", "FIELDS", "conn_env", "flat_row"]

#: The peers' columns: those of the provider's table (``warehouse/schema.py``).
FIELDS = (
    "id", "status", "substatus", "type", "qualification", "direction", "customer_name", "country",
    "deal_value", "currency", "created_date_time", "updated_date_time", "raw_json",
)  # fmt: skip
_PAGE = 1_000

# The peers' table per target, as a user of insert_rows would create it.
_TEXT = {"sqlite": "TEXT", "postgres": "TEXT", "mariadb": "VARCHAR(255)", "duckdb": "VARCHAR"}
_KEY = {"sqlite": "TEXT", "postgres": "TEXT", "mariadb": "VARCHAR(64)", "duckdb": "VARCHAR"}
_REAL = {"sqlite": "REAL", "postgres": "DOUBLE PRECISION", "mariadb": "DOUBLE", "duckdb": "DOUBLE"}
_JSON = {"sqlite": "TEXT", "postgres": "JSONB", "mariadb": "LONGTEXT", "duckdb": "VARCHAR"}


def conn_env(target: str, where: dict[str, Any]) -> dict[str, str]:
    """The ``AIRFLOW_CONN_BENCH_<TARGET>`` variable of a SQL target's Airflow connection."""
    if target in ("sqlite", "duckdb"):
        conn: dict[str, Any] = {"conn_type": target, "host": where["path"]}
    elif target in ("postgres", "mariadb"):
        conn = {
            "conn_type": "postgres" if target == "postgres" else "mysql",
            "host": where["host"],
            "port": where["port"],
            "login": where["user"],
            "password": where["password"],
            "schema": where["database"],
        }
        if target == "mariadb":
            conn["extra"] = {"charset": "utf8mb4"}
    else:
        return {}
    return {f"AIRFLOW_CONN_BENCH_{target.upper()}": orjson.dumps(conn).decode()}


def _hook(target: str) -> Any:
    if target == "sqlite":
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        return SqliteHook(sqlite_conn_id="bench_sqlite")
    if target == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id="bench_postgres")
    if target == "mariadb":
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        # LOAD DATA LOCAL INFILE allowed: the provider stages with it then (docs/warehouse.md).
        return MySqlHook(mysql_conn_id="bench_mariadb", local_infile=True)
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

    return DuckDBHook(duckdb_conn_id="bench_duckdb")


def _lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as lines:
        yield from (line for line in lines if line.strip())


def flat_row(line: bytes) -> tuple[Any, ...]:
    """One JSONL line as the peers' row (:data:`FIELDS`), the line itself as ``raw_json``."""
    r = orjson.loads(line)
    customer = r.get("customerProfile") or {}
    details = r.get("details") or {}
    return (
        r["id"], r.get("status"), r.get("substatus"), r.get("type"), r.get("qualification"),
        r.get("direction"), customer.get("name"), (customer.get("address") or {}).get("country"),
        details.get("dealValue"), details.get("currency"), r.get("createdDateTime"),
        r.get("updatedDateTime"), line.decode().rstrip("\n"),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the provider


def provider_prepare(spec: dict[str, Any]) -> Any:
    if spec["target"] == "delta":
        from airflow_provider_partner.warehouse.delta import merge_referrals_delta

        return merge_referrals_delta
    from airflow_provider_partner.warehouse import load_referrals

    return load_referrals, _hook(spec["target"])


def provider_load(spec: dict[str, Any], prepared: Any) -> int:
    changed = 0
    if spec["target"] == "delta":
        for path in spec["files"]:
            changed += int(prepared(path, spec["where"]["uri"])["changed"])
        return changed
    load_referrals, hook = prepared
    for path in spec["files"]:
        changed += int(load_referrals(hook, path, spec["table"])["changed"])
    return changed


# ---------------------------------------------------------------------------------------------
# common-sql's insert_rows


def insert_rows_prepare(spec: dict[str, Any]) -> Any:
    target = spec["target"]
    if target == "delta":
        raise NotImplementedError("no DbApiHook writes Delta Lake")
    hook = _hook(target)
    types = {"id": f"{_KEY[target]} PRIMARY KEY", "deal_value": _REAL[target], "raw_json": _JSON[target]}
    columns = ", ".join(f"{name} {types.get(name, _TEXT[target])}" for name in FIELDS)
    hook.run(f"CREATE TABLE IF NOT EXISTS {spec['table']} ({columns})")
    return hook


def insert_rows_load(spec: dict[str, Any], hook: Any) -> int:
    written = [0]

    def rows(path: str) -> Iterator[tuple[Any, ...]]:
        # Streamed (insert_rows takes any iterable): the peer's memory is its own, not a list's.
        for line in _lines(path):
            written[0] += 1
            yield flat_row(line)

    for path in spec["files"]:
        hook.insert_rows(spec["table"], rows(path), target_fields=FIELDS, replace=True, replace_index="id")
    return written[0]


# ---------------------------------------------------------------------------------------------
# dlt's merge


def _dlt_destination(spec: dict[str, Any]) -> Any:
    import dlt

    target, where = spec["target"], spec["where"]
    if target == "sqlite":
        return dlt.destinations.sqlalchemy(credentials=f"sqlite:///{where['path']}")
    if target in ("mariadb", "postgres"):
        # dlt's postgres credentials insist on a password; the test cluster trusts and ignores it.
        user = f"{where['user']}:{where['password'] or 'trusted'}"
        scheme = "mysql+pymysql" if target == "mariadb" else "postgresql"
        url = f"{scheme}://{user}@{where['host']}:{where['port']}/{where['database']}"
        if target == "mariadb":
            url += "?charset=utf8mb4"
        if target == "mariadb":
            return dlt.destinations.sqlalchemy(credentials=url)
        return dlt.destinations.postgres(credentials=url)
    if target == "duckdb":
        return dlt.destinations.duckdb(credentials=where["path"])
    return dlt.destinations.filesystem(bucket_url=where["dlt_uri"])


def dlt_prepare(spec: dict[str, Any]) -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name=spec["table"],
        pipelines_dir=spec["work"],
        destination=_dlt_destination(spec),
        dataset_name=spec["table"],
        progress=None,
    )


def _dlt_resource(spec: dict[str, Any], path: str) -> Any:
    import dlt

    def pages() -> Iterator[list[dict[str, Any]]]:
        page: list[dict[str, Any]] = []
        for line in _lines(path):
            page.append(dict(zip(FIELDS, flat_row(line), strict=True)))
            if len(page) == _PAGE:
                yield page
                page = []
        if page:
            yield page

    return dlt.resource(
        pages,
        name=spec["table"],
        primary_key="id",
        write_disposition="merge",
        columns={"updated_date_time": {"dedup_sort": "desc"}},
        table_format="delta" if spec["target"] == "delta" else None,
    )


def dlt_load(spec: dict[str, Any], pipeline: Any) -> int:
    written = 0
    for path in spec["files"]:
        pipeline.run(_dlt_resource(spec, path))
        counts = pipeline.last_trace.last_normalize_info.row_counts
        written += int(counts.get(spec["table"], 0))
    return written


# ---------------------------------------------------------------------------------------------
# counting afterwards (not timed)


def _delta_counts(uri: str) -> tuple[int, int]:
    from deltalake import DeltaTable

    table = DeltaTable(uri).to_pyarrow_table(columns=["status"])
    statuses = table.column("status").to_pylist()
    return len(statuses), statuses.count(EDITED)


def inspect(spec: dict[str, Any], prepared: Any) -> tuple[int, int]:
    """``(rows, rows carrying the edit's status)`` of the contender's table."""
    count = f"SELECT COUNT(*), SUM(CASE WHEN status = '{EDITED}' THEN 1 ELSE 0 END) FROM {{}}"  # noqa: S608
    target = spec["target"]
    if spec["contender"] == "dlt":
        if target == "delta":
            return _delta_counts(f"{spec['where']['dlt_uri']}/{spec['table']}/{spec['table']}")
        with prepared.sql_client() as client:
            rows = client.execute_sql(count.format(client.make_qualified_table_name(spec["table"])))
    elif target == "delta":
        return _delta_counts(spec["where"]["uri"])
    else:
        hook = prepared if spec["contender"] == "insert_rows" else prepared[1]
        rows = hook.get_records(count.format(spec["table"]))
    total, edited = rows[0]
    return int(total), int(edited or 0)


#: contender -> (prepare, load)
CONTENDERS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any], Any], int]]] = {
    "provider": (provider_prepare, provider_load),
    "insert_rows": (insert_rows_prepare, insert_rows_load),
    "dlt": (dlt_prepare, dlt_load),
}
