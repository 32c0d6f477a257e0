"""
The four ways to copy every referral into a JSONL file, each run in a fresh process.

``python -m benchmarks.contenders NAME OUTPUT [--parallelism N --window START END] [--sha256]``
(the emulator's info in ``BENCH_EMULATOR_INFO``) imports what NAME needs, then times only the
copy, token acquisition included, and prints one JSON line: ``{"name", "records", "seconds",
"cpu_seconds", "base_rss_mb", "peak_rss_mb", "sha256"}``. ``cpu_seconds`` is the CPU time of the
process (every thread) over the copy only, ``base_rss_mb`` the resident size after the imports,
``peak_rss_mb`` the process's high-water mark (``ru_maxrss``), ``sha256`` the output file's digest
(with ``--sha256``, computed after the clock stopped; else ``null``). A fresh process per run keeps
one contender's memory out of the next one's.

``--parallelism`` and ``--window`` are the operator's: ``window_field="createdDateTime"`` with that
explicit window, split into N slices (the latency figure); without them it reads everything
(``window_field=None``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

__all__ = ["CONTENDERS", "prepare"]

Runner = Callable[[], int]

#: Delegated scope of the Partner Center API (what the provider asks for too).
API_SCOPE = "https://api.partner.microsoft.com/user_impersonation"


def _token(info: dict[str, Any], session: requests.Session | None = None) -> str:
    """One refresh-token grant at the emulator's Entra endpoint: the least any client must do."""
    response = (session or requests).post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"],
            "scope": f"{API_SCOPE} offline_access",
        },
        timeout=60,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def prepare_floor(info: dict[str, Any], output: str, **_: Any) -> Runner:
    """The floor: one ``requests`` session, orjson, follow nextLink, write each record as a line."""

    def run() -> int:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {_token(info, session)}"
        url: str | None = info["referrals_url"]
        count = 0
        with open(output, "wb") as out:
            while url:
                response = session.get(url, timeout=60)
                response.raise_for_status()
                page = orjson.loads(response.content)
                records = page["value"]
                out.write(b"".join([orjson.dumps(record) + b"\n" for record in records]))
                count += len(records)
                url = page.get("@odata.nextLink")
        return count

    return run


def _start_like_a_task_runner() -> None:
    """
    Load Airflow's plugins, as the Task SDK's task runner does when a task process starts.

    It builds its listener manager (``on_starting``) before any task code runs; that loads the
    plugins once per process (100-150 ms here). Left to the clock, the first hook to look up the
    hook lineage collector would pay it, a cost no task process pays inside ``execute``.
    """
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow releases without the Task SDK's listener module
        return
    get_listener_manager()


def prepare_operator(
    info: dict[str, Any], output: str, parallelism: int = 1, window: tuple[str, str] | None = None
) -> Runner:
    """
    This provider: ``PartnerCenterReferralsOperator.execute`` writing ``file://`` JSONL.

    Without ``window`` it reads every referral (``window_field=None``, one query); with it, the
    ``createdDateTime`` window ``[start, end)`` in ``parallelism`` slices.

    What the operator imports on first use (msal, requests, its fetch/spool/writer modules) is
    imported here, before the clock starts, as the other contenders' libraries are: import cost is
    P4's figure, not P1's. Airflow's plugins are loaded too, as a task process has them. Each run
    gets a credential store of its own (beside its output, deleted with it): a token cached by the
    previous run would spare it the token request every other contender pays.
    """
    conn = json.loads(os.environ["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
    conn["extra"]["credential_store"] = f"file://{output}.credentials.json"
    os.environ["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"] = json.dumps(conn)
    import msal  # noqa: F401
    import requests  # noqa: F401

    import airflow_provider_partner.extract.fetch
    import airflow_provider_partner.extract.writers  # noqa: F401
    from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

    _start_like_a_task_runner()

    windowed: dict[str, Any] = {"window_field": None}
    if window is not None:
        windowed = {
            "window_field": "createdDateTime",
            "window_start": window[0],
            "window_end": window[1],
            "parallelism": parallelism,
        }
    operator = PartnerCenterReferralsOperator(
        task_id="bench", output_path=f"file://{output}", output_format="jsonl", **windowed
    )

    def run() -> int:
        manifest = operator.execute({"params": {}})  # type: ignore[arg-type]
        return int(manifest["count"])

    return run


def prepare_http_operator(info: dict[str, Any], output: str, **_: Any) -> Runner:
    """
    Airflow's ``HttpOperator`` with a ``pagination_function`` following ``@odata.nextLink``.

    The pagination function and the response filter both get raw responses, so each page is parsed
    twice (with orjson here, the fastest a user could write); ``paginate_sync`` keeps every
    response until the filter runs, which writes the file.
    """
    from airflow.providers.http.operators.http import HttpOperator

    _start_like_a_task_runner()
    api = urlsplit(info["api_url"])
    os.environ["AIRFLOW_CONN_PARTNER_HTTP"] = json.dumps(
        {"conn_type": "http", "host": api.hostname, "port": api.port, "schema": "https"}
    )
    endpoint = urlsplit(info["referrals_url"]).path

    def next_page(response: requests.Response) -> dict[str, Any] | None:
        link = orjson.loads(response.content).get("@odata.nextLink")
        if not link:
            return None
        parts = urlsplit(link)
        return {"endpoint": f"{parts.path}?{parts.query}"}

    def write(responses: list[requests.Response]) -> int:
        count = 0
        with open(output, "wb") as out:
            for response in responses:
                records = orjson.loads(response.content)["value"]
                out.write(b"".join([orjson.dumps(record) + b"\n" for record in records]))
                count += len(records)
        return count

    def run() -> int:
        operator = HttpOperator(
            task_id="bench",
            http_conn_id="partner_http",
            method="GET",
            endpoint=endpoint,
            headers={"Authorization": f"Bearer {_token(info)}", "Accept": "application/json"},
            pagination_function=next_page,
            response_filter=write,
        )
        return int(operator.execute({}))  # type: ignore[arg-type]

    return run


def prepare_dlt(info: dict[str, Any], output: str, **_: Any) -> Runner:
    """
    The dlt ``rest_api`` source: JSON-link paginator, ``filesystem`` destination writing JSONL.

    ``max_table_nesting=0`` keeps each referral one row (nested objects as JSON), like the other
    contenders' files; compression is off. dlt's own working directory is under the output's.
    """
    workdir = f"{output}.dlt"
    os.environ.update(
        {
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
            "DLT_DATA_DIR": f"{workdir}/data",
            "RUNTIME__LOG_LEVEL": "WARNING",
        }
    )
    import dlt
    from dlt.sources.rest_api import rest_api_source

    base = info["referrals_url"].rsplit("/", 1)[0] + "/"

    def run() -> int:
        source = rest_api_source(
            {
                "client": {
                    "base_url": base,
                    "auth": {"type": "bearer", "token": _token(info)},
                    "paginator": {"type": "json_link", "next_url_path": "'@odata.nextLink'"},
                },
                "resource_defaults": {"max_table_nesting": 0},
                "resources": [
                    {"name": "referrals", "endpoint": {"path": "referrals", "data_selector": "value"}}
                ],
            }
        )
        pipeline = dlt.pipeline(
            pipeline_name="bench",
            destination=dlt.destinations.filesystem(bucket_url=f"file://{workdir}/out"),
            dataset_name="partner",
            pipelines_dir=f"{workdir}/pipelines",
        )
        pipeline.run(source, loader_file_format="jsonl")
        trace = pipeline.last_trace.last_normalize_info
        assert trace is not None
        return int(trace.row_counts.get("referrals", 0))

    return run


CONTENDERS: dict[str, Callable[..., Runner]] = {
    "floor": prepare_floor,
    "operator": prepare_operator,
    "http_operator": prepare_http_operator,
    "dlt": prepare_dlt,
}


def prepare(name: str, info: dict[str, Any], output: str, **options: Any) -> Runner:
    """Import and set up contender ``name``; return the function that does the copy."""
    return CONTENDERS[name](info, output, **options)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    # The whole process (every thread); children too, should a contender ever fork.
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contenders")
    parser.add_argument("name", choices=sorted(CONTENDERS))
    parser.add_argument("output")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--window", nargs=2, metavar=("START", "END"), default=None)
    parser.add_argument("--sha256", action="store_true")
    return parser


def main(argv: list[str]) -> int:
    """Run one contender once and print its JSON line."""
    args = _parser().parse_args(argv)
    info = json.loads(os.environ["BENCH_EMULATOR_INFO"])
    options: dict[str, Any] = {}
    if args.window:
        options = {"parallelism": args.parallelism, "window": tuple(args.window)}
    runner = prepare(args.name, info, args.output, **options)
    base = _rss_mb()
    cpu = _cpu_seconds()
    started = time.perf_counter()
    records = runner()
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = _sha256(args.output) if args.sha256 else None
    shutil.rmtree(f"{args.output}.dlt", ignore_errors=True)
    for suffix in (".credentials.json", ".credentials.json.lock"):
        if os.path.exists(args.output + suffix):
            os.remove(args.output + suffix)
    result = {
        "name": args.name,
        "records": records,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "base_rss_mb": base,
        "peak_rss_mb": peak,
        "sha256": digest,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
