"""What the tests read back from each target, through the target's own hook and SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_partner.warehouse import load_referrals, warehouse_hook

#: Fractional digits each target reads a date-time back with (the API sends 7; DuckDB holds ns).
DIGITS = {"sqlite": 7, "duckdb": 9, "postgres": 6, "mariadb": 6}

# Each target's date-time as text, ``YYYY-MM-DDTHH:MM:SS.f...`` at its precision, in UTC.
_INSTANT = {
    "sqlite": "substr({c}, 1, 27)",
    "duckdb": "strftime({c}, '%Y-%m-%dT%H:%M:%S.%n')",
    "postgres": "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
    "mariadb": "DATE_FORMAT({c}, '%Y-%m-%dT%H:%i:%s.%f')",
}
# The declared type of a column, as the database reports it.
_TYPES = {
    "sqlite": "SELECT name, type FROM pragma_table_info('{t}') ORDER BY cid",
    "duckdb": "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_name = '{t}' ORDER BY ordinal_position",
    "postgres": "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_name = '{t}' AND table_schema = current_schema() ORDER BY ordinal_position",
    "mariadb": "SELECT column_name, column_type FROM information_schema.columns "
    "WHERE table_name = '{t}' AND table_schema = DATABASE() ORDER BY ordinal_position",
}
# A nested field of raw_json read by the database's own JSON functions.
_JSON_FIELD = {
    "sqlite": "json_extract(raw_json, '$.{f}')",
    "duckdb": "raw_json->>'$.{f}'",
    "postgres": "raw_json #>> '{{{p}}}'",
    "mariadb": "JSON_VALUE(raw_json, '$.{f}')",
}


def instant_at(key: str, digits: int) -> str:
    """An API date-time (``...T10:00:00.1234567Z``) as a target with ``digits`` digits reads it."""
    return f"{key[:20]}{key[20:27]:0<9}"[: 20 + digits]


@dataclass
class Warehouse:
    """One fresh database of a target behind an Airflow connection."""

    kind: str
    conn_id: str
    #: the hook's driver where it is not its default
    driver: str = ""

    @property
    def digits(self) -> int:
        """Fractional digits its date-times keep."""
        return DIGITS[self.kind]

    def load(self, path: Any, table: str = "referrals", **kwargs: Any) -> dict[str, int]:
        """``load_referrals`` through the connection id (each call opens its own hook)."""
        if self.driver == "local_infile":
            from airflow.providers.mysql.hooks.mysql import MySqlHook

            hook = MySqlHook(mysql_conn_id=self.conn_id, local_infile=True)
            return dict(load_referrals(hook, path, table, **kwargs))
        return dict(load_referrals(self.conn_id, path, table, **kwargs))

    def records(self, sql: str, fetch: bool = True) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (none unless ``fetch``), on a connection of its own, committed."""
        hook = warehouse_hook(self.conn_id)
        conn = hook.get_conn()
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            rows = [tuple(row) for row in cursor.fetchall()] if fetch else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def table(self, table: str = "referrals") -> dict[str, tuple[Any, ...]]:
        """``id -> (status, updated as text, created as text)`` of every row."""
        instant = _INSTANT[self.kind]
        sql = (
            f"SELECT id, status, {instant.format(c='updated_date_time')}, "  # noqa: S608 - test SQL
            f"{instant.format(c='created_date_time')} FROM {table} ORDER BY id"
        )
        return {row[0]: tuple(row[1:]) for row in self.records(sql)}

    def types(self, table: str = "referrals") -> dict[str, str]:
        """The declared type of each column, lower case."""
        return {
            str(name): str(kind).lower() for name, kind in self.records(_TYPES[self.kind].format(t=table))
        }

    def json_field(self, path: str, table: str = "referrals") -> dict[str, Any]:
        """``id -> raw_json`` at a dotted path, read by the database's JSON functions."""
        field = _JSON_FIELD[self.kind].format(f=path, p=path.replace(".", ","))
        return dict(self.records(f"SELECT id, {field} FROM {table} ORDER BY id"))  # noqa: S608
