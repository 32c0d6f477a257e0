"""
A server that answers too much, too slowly, or for ever: every answer is bounded and named.

Memory is measured in a child process (its peak RSS after the call against its peak before it),
so what the test suite itself holds does not blur the figure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hostile_server import gzip_bomb

from airflow_provider_partner.errors import (
    PartnerCenterConnectionError,
    PartnerCenterNextLinkError,
    PartnerCenterResponseError,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.hooks.transfer import TrackingAdapter

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

_CHILD = r"""
import json, resource, sys, time
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
hook = PartnerCenterHook(log_every_pages=0)
hook.tokens.get_token()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    next(iter(hook.iter_pages()))
    outcome = {"error": None, "message": None}
except Exception as err:
    outcome = {"error": type(err).__name__, "message": str(err)}
outcome["seconds"] = time.monotonic() - started
outcome["growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(outcome))
"""


def _in_a_child() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("big", r"it declares Content-Length 100,000,000"),
        ("big_chunked", r"\(8,0\d\d,\d\d\d bytes read\)"),
        ("bomb", r"\(8,0\d\d,\d\d\d bytes read from \d{2,3},\d{3} compressed\)"),
    ],
)
def test_a_huge_or_inflating_page_stops_at_the_cap(
    hostile: Any, hostile_conn: Any, mode: str, cause: str
) -> None:
    # Before: 100 MB raised the worker's peak by 301 MB; 0.3 MB of gzip inflating to 300 MB by 616 MB.
    hostile.configure(mode=mode, bomb=gzip_bomb(300) if mode == "bomb" else b"")

    outcome = _in_a_child()

    assert outcome["error"] == "PartnerCenterResponseError"
    assert outcome["message"].startswith("The response to GET https://127.0.0.1:")
    assert "is larger than max_response_mb=8 (" in outcome["message"]
    assert __import__("re").search(cause, outcome["message"]), outcome["message"]
    # The cap (8 MB) held twice over at most (the body, then its bytes), plus slack for the
    # TLS buffers and allocator: far from the 100 or 300 MB the server offered.
    assert outcome["growth_mb"] < 8 * 2 + 24, outcome
    assert len(hostile.requests) == 1  # a size error is not retried


@pytest.mark.parametrize("mode", ["trickle", "trickle_close", "trickle_headers"])
def test_a_trickling_server_cannot_hold_a_request(hostile: Any, hostile_conn: Any, mode: str) -> None:
    # Before: one byte a second held a request for 40 s with timeout=3 and max_retry_time=5.
    # trickle_close, before: 30.0 s and "failed after 1 attempt(s)", held until the server's own
    # 30 s bound: http.client had handed the socket of a Connection: close response over to the
    # response, out of the watchdog's reach. After: 4.0 s, like keep-alive.
    hostile.configure(mode=mode, trickle_interval=0.05)  # each socket read succeeds in 50 ms
    hook = PartnerCenterHook(log_every_pages=0)
    hook.tokens.get_token()
    started = time.monotonic()

    with pytest.raises(PartnerCenterConnectionError) as caught:
        next(iter(hook.iter_pages()))

    elapsed = time.monotonic() - started
    assert re.fullmatch(
        rf"GET {re.escape(hostile.url)}/v1\.0/engagements/referrals failed after 2 attempt\(s\) "
        rf"\(MS-RequestId={_UUID}\): AttemptTimedOut: the attempt did not finish within 2\.0 s "
        r"\(attempt_timeout=2 s, max_retry_time=5 s\)\. Check network access to the API \(proxies, "
        r"firewall\) or raise extras max_retries/timeout\.",
        str(caught.value),
    ), str(caught.value)
    # Two attempts of 2 s inside max_retry_time=5; generous above: CI machines are busy.
    assert 4.0 <= elapsed < 5 + 10, elapsed
    assert len(hostile.requests) == 2


def test_a_response_that_arrives_after_the_deadline_is_shut_at_once() -> None:
    # The watchdog can fire after http.client handed a Connection: close socket to the response
    # but before the adapter saw that response: nothing to shut then, so the adapter shuts it.
    class Raw:
        status, reason, headers, shut = 200, "OK", {}, 0

        def shutdown(self) -> None:
            self.shut += 1

    adapter, raw = TrackingAdapter(), Raw()
    adapter.start()
    adapter.abort_current()  # no connection, no response yet

    adapter.build_response(requests.Request("GET", "https://api.test/").prepare(), raw)

    assert raw.shut == 1
    adapter.start()  # the next attempt's response is left alone
    adapter.build_response(requests.Request("GET", "https://api.test/").prepare(), raw)
    assert raw.shut == 1


def test_max_retry_time_bounds_the_whole_call(hostile: Any, hostile_conn: Any, monkeypatch: Any) -> None:
    conn = dict(hostile_conn, extra={**hostile_conn["extra"], "max_retries": 10, "attempt_timeout": 60})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    hostile.configure(mode="trickle", trickle_interval=0.05)
    hook = PartnerCenterHook(log_every_pages=0)
    hook.tokens.get_token()
    started = time.monotonic()

    with pytest.raises(PartnerCenterConnectionError, match=r"did not finish within 5\.0 s"):
        next(iter(hook.iter_pages()))

    assert time.monotonic() - started < 6.0


@pytest.mark.parametrize(
    ("repeat_records", "overrides", "pages", "message"),
    [
        (
            False,
            {},
            10,
            "Stopped after 10 empty or repeated pages in a row that each carried a new @odata.nextLink",
        ),
        (
            True,
            {},
            11,
            "Stopped after 10 empty or repeated pages in a row that each carried a new @odata.nextLink",
        ),
        (
            False,
            {"max_pages": 3, "max_empty_pages": 100},
            3,
            "Stopped after max_pages=3 pages: the API still",
        ),
    ],
)
def test_a_server_paging_in_circles_is_stopped(
    hostile: Any,
    hostile_conn: Any,
    monkeypatch: Any,
    repeat_records: bool,
    overrides: dict[str, int],
    pages: int,
    message: str,
) -> None:
    # Before: a fresh $skiptoken on every (empty or identical) page was followed for ever.
    conn = dict(hostile_conn, extra={**hostile_conn["extra"], **overrides})
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    hostile.configure(mode="fresh_skiptoken", repeat_records=repeat_records)

    with pytest.raises(PartnerCenterNextLinkError) as caught:
        for _ in PartnerCenterHook(log_every_pages=0).iter_pages():
            pass

    assert str(caught.value).startswith(message)
    assert hostile.pages == pages


_WRITE = [{"op": "replace", "path": "/status", "value": "Active"}]
_NEW = {"type": "Independent", "customerProfile": {}, "consent": {}, "details": {}}


@pytest.mark.parametrize(
    ("call", "what"),
    [
        # Before: the page was named (in 0.007 s); the three others let a bare RecursionError
        # escape (in 0.006-0.014 s). After: all four named, in 0.006-0.011 s.
        (lambda hook: next(iter(hook.iter_pages())), "page 1 ({url}/v1.0/engagements/referrals, "),
        (lambda hook: hook.get_referral("r-1"), "referral r-1 (GET {url}/v1.0/engagements/referrals/r-1, "),
        (
            lambda hook: hook.update_referral("r-1", _WRITE, return_representation=True),
            "updated referral r-1 (PATCH {url}/v1.0/engagements/referrals/r-1, ",
        ),
        (
            lambda hook: hook.create_referral(_NEW),
            "created referral (POST {url}/v1.0/engagements/referrals, ",
        ),
    ],
    ids=["page", "get_referral", "update_referral", "create_referral"],
)
def test_deeply_nested_json_is_a_named_error(
    hostile: Any, hostile_conn: Any, call: Callable[[PartnerCenterHook], Any], what: str
) -> None:
    hostile.configure(mode="deep")
    hook = PartnerCenterHook(log_every_pages=0)
    hook.tokens.get_token()
    started = time.monotonic()

    with pytest.raises(PartnerCenterResponseError) as caught:
        call(hook)

    elapsed = time.monotonic() - started
    assert re.fullmatch(
        re.escape(f"The JSON of {what.format(url=hostile.url)}MS-RequestId=")
        + _UUID
        + re.escape(
            ") is nested deeper than a decoder can follow (200020 chars, starting "
            '\'{"value": [], "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...\'); no Partner '
            "Center response is. A proxy or server on the way to the API is misbehaving: check the "
            "connection host and proxies, and report the MS-RequestId to Microsoft if it is the API."
        ),
        str(caught.value),
    ), str(caught.value)
    assert elapsed < 10, elapsed  # one request, not retried: the decoder gives up at once
    assert len(hostile.requests) == 1
