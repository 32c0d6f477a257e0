"""The operator's execute() against the emulator, with the context a task run would pass."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
import threading

import pytest
from airflow.sdk import Asset, AssetAlias
from operator_helpers import UTC, expected_referrals, midnight_today, read_jsonl

from airflow_provider_partner.errors import (
    PartnerCenterCancelledError,
    PartnerCenterConfigError,
    PartnerCenterResponseError,
    PartnerCenterResultTooLargeError,
)
from airflow_provider_partner.extract.spool import SPOOL_PREFIX
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator


def _lines(records: list[dict]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records
    )


def _own_spools() -> list[str]:
    prefix = f"{SPOOL_PREFIX}{os.getpid()}-"
    return [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(prefix)]


def _window_filter(start: dt.datetime, end: dt.datetime, field: str = "updatedDateTime") -> str:
    return f"{field} ge {start:%Y-%m-%dT%H:%M:%SZ} and {field} lt {end:%Y-%m-%dT%H:%M:%SZ}"


def test_xcom_mode_returns_exactly_the_interval_and_fills_the_asset_event(emu, make_context, day):
    start, end = day
    asset = Asset("partner://referrals/daily")
    op = PartnerCenterReferralsOperator(task_id="xcom", outlets=[asset])
    context = make_context(start, end)

    records = op.execute(context)

    expected = expected_referrals(emu, start, end)
    assert len(expected) > 10
    assert records == expected
    assert op.query_filter == _window_filter(start, end)
    assert context["outlet_events"][asset].extra == {
        "count": len(expected),
        "window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        "received": len(expected),
        "duplicates_removed": 0,
        "pages": -(-len(expected) // 100),  # the emulator's default page size
        "format": "xcom",
        "path": None,
    }
    assert _own_spools() == []


def test_xcom_limit_fails_early_and_names_output_path(emu, make_context):
    emu.configure(page_size=50)
    op = PartnerCenterReferralsOperator(task_id="too_big", window_field=None, max_xcom_records=120)

    with pytest.raises(PartnerCenterResultTooLargeError) as caught:
        op.execute(make_context())

    assert str(caught.value) == (
        "The query found more than max_xcom_records=120 referrals (150 so far); XCom values live in the "
        "Airflow metadata database and must stay small. Set output_path (e.g. "
        "'file:///data/referrals/{{ ds }}.jsonl' or 's3://aws_default@bucket/referrals/{{ ds }}.jsonl') "
        "to write them to a file, narrow the filter or window, or raise max_xcom_records."
    )
    # Stopped at the page that crossed the limit (the fetching thread may be a few pages ahead,
    # its queue holds 4), not after all 40 pages.
    assert 3 <= emu.stats()["pages_served"] <= 8
    assert _own_spools() == []


@pytest.mark.parametrize("output_format", ["jsonl", "jsonl.gz", "parquet"])
def test_file_output_has_each_referral_once_and_a_manifest(emu, make_context, tmp_path, output_format):
    start, end = midnight_today() - dt.timedelta(days=7), midnight_today()
    emu.configure(page_size=40)
    target = tmp_path / "out" / f"referrals.{output_format}"
    op = PartnerCenterReferralsOperator(
        task_id="to_file", output_path=f"file://{target}", output_format=output_format
    )
    assert op.outlets == [Asset(f"file://{target}")]
    context = make_context(start, end)

    manifest = op.execute(context)

    expected = expected_referrals(emu, start, end)
    pages = -(-len(expected) // 40)
    seconds = manifest.pop("seconds")
    assert 0 < seconds < 60
    assert manifest == {
        "path": f"file://{target}",
        "format": output_format,
        "count": len(expected),
        "window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        "filter": _window_filter(start, end),
        "pages": pages,
        "received": len(expected),
        "duplicates_removed": 0,
        "parallelism": 1,
    }
    assert context["outlet_events"][Asset(f"file://{target}")].extra == {
        "count": len(expected),
        "window_start": manifest["window_start"],
        "window_end": manifest["window_end"],
        "received": len(expected),
        "duplicates_removed": 0,
        "pages": pages,
        "format": output_format,
        "path": f"file://{target}",
    }
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    if output_format == "jsonl":
        assert target.read_bytes() == _lines(expected)
    elif output_format == "jsonl.gz":
        assert gzip.decompress(target.read_bytes()) == _lines(expected)
    else:
        import pyarrow.parquet as pq

        from airflow_provider_partner.extract.parquet import parquet_schema

        table = pq.read_table(target)
        assert table.schema == parquet_schema()
        assert table.column("id").to_pylist() == [r["id"] for r in expected]
        assert table.column("status").to_pylist() == [r["status"] for r in expected]
        assert [json.loads(v) for v in table.column("customerProfile").to_pylist()] == [
            r["customerProfile"] for r in expected
        ]
        assert table.column("isSpam").to_pylist() == [r["isSpam"] for r in expected]
        # favorite and lastModifiedVia (contract fields the emulator now fills) have no column
        # of their own in this schema version: they are kept, as every unknown field is.
        assert [json.loads(v) for v in table.column("extra_json").to_pylist()] == [
            {"favorite": r["favorite"], "lastModifiedVia": r["lastModifiedVia"]} for r in expected
        ]
        stamps = table.column("updatedDateTime").to_pylist()
        assert [s.strftime("%Y-%m-%dT%H:%M:%S.%f") for s in stamps] == [
            r["updatedDateTime"][:26] for r in expected
        ]


def test_filter_select_and_created_window(emu, make_context, day):
    start, end = day[0] - dt.timedelta(days=3), day[1]
    op = PartnerCenterReferralsOperator(
        task_id="incoming",
        filter="direction eq 'Incoming' or status eq 'New'",
        select=["name", "status", "direction"],
        window_field="createdDateTime",
    )

    records = op.execute(make_context(start, end))

    expected = [
        r
        for r in expected_referrals(emu, start, end, "createdDateTime")
        if r["direction"] == "Incoming" or r["status"] == "New"
    ]
    assert op.query_filter == (
        "(direction eq 'Incoming' or status eq 'New') and " + _window_filter(start, end, "createdDateTime")
    )
    keep = ("name", "status", "direction", "id", "updatedDateTime", "createdDateTime")
    assert records == [{k: r[k] for k in r if k in keep} for r in expected]


def test_parallel_slices_give_the_same_bytes_with_one_token(emu, make_context, tmp_path, caplog):
    start, end = midnight_today() - dt.timedelta(days=20), midnight_today()
    emu.configure(page_size=25)
    single, sliced = tmp_path / "single.jsonl", tmp_path / "sliced.jsonl"
    PartnerCenterReferralsOperator(task_id="one", output_path=f"file://{single}").execute(
        make_context(start, end)
    )
    emu.reset_stats()
    # The first run's token is still valid (and would be reused at no cost): make the four
    # slices start with a refused token, so that they have to share one refresh.
    emu.expire_access_tokens()

    manifest = PartnerCenterReferralsOperator(
        task_id="four", output_path=f"file://{sliced}", parallelism=4
    ).execute(make_context(start, end))

    assert sliced.read_bytes() == single.read_bytes()
    # Each slice paged in order, one after another: their files were joined, not sorted.
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("The pages arrived in output order, each referral once: no sorting needed") == 2
    assert manifest["parallelism"] == 4
    assert manifest["count"] == len(expected_referrals(emu, start, end))
    # Four sessions, one token: the slices share the token provider.
    assert emu.stats()["token_grants"]["refresh_token"] == 1
    # The count probes that balance the slices come first, four at once: each may be answered
    # 401 (the expired token) and is retried after the one refresh; every later request has the
    # new token, so at most one request per probing thread is refused.
    (probes,) = [
        int(r.getMessage().split(" with ")[1].split()[0])
        for r in caplog.records
        if r.getMessage().startswith("Balanced 4 slice(s)")
    ]
    stats = emu.stats()
    assert stats["pages_served"] == manifest["pages"] + probes
    assert 1 <= stats["requests"]["list"] - stats["pages_served"] <= 4


def test_retried_faults_change_nothing_and_a_failed_run_leaves_the_old_file(emu, make_context, tmp_path):
    start, end = midnight_today() - dt.timedelta(days=10), midnight_today()
    emu.configure(page_size=30)
    clean, faulty = tmp_path / "clean.jsonl", tmp_path / "faulty.jsonl"
    PartnerCenterReferralsOperator(task_id="clean", output_path=f"file://{clean}").execute(
        make_context(start, end)
    )
    emu.script_faults(["429", "500", "reset", "503", "token_expired", "429"])

    PartnerCenterReferralsOperator(task_id="faulty", output_path=f"file://{faulty}").execute(
        make_context(start, end)
    )

    assert faulty.read_bytes() == clean.read_bytes()
    faults = emu.stats()["faults"]
    assert {kind: faults.get(kind) for kind in ("429", "500", "reset", "503", "token_expired")} == {
        "429": 2,
        "500": 1,
        "reset": 1,
        "503": 1,
        "token_expired": 1,
    }

    # A page the hook cannot use fails the task; the earlier output stays as it was.
    before = (clean.read_bytes(), clean.stat().st_ino)
    emu.script_faults(["429", "truncated"])
    with pytest.raises(PartnerCenterResponseError, match="Invalid JSON in page 1"):
        PartnerCenterReferralsOperator(task_id="broken", output_path=f"file://{clean}").execute(
            make_context(start, end)
        )
    assert (clean.read_bytes(), clean.stat().st_ino) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.jsonl", "faulty.jsonl"]
    assert _own_spools() == []


def test_rerun_replaces_the_file_and_clears_leftover_temporary_files(emu, make_context, day, tmp_path):
    target = tmp_path / "daily.jsonl.gz"
    op = PartnerCenterReferralsOperator(
        task_id="daily", output_path=f"file://{target}", output_format="jsonl.gz"
    )
    op.execute(make_context(*day))
    first = (target.read_bytes(), target.stat().st_ino)
    leftover = tmp_path / ".daily.jsonl.gz.partial-0123abcd"
    leftover.write_bytes(b"half a file")

    op.execute(make_context(*day))

    assert target.read_bytes() == first[0]
    assert target.stat().st_ino != first[1]  # a new file moved into place, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daily.jsonl.gz"]


def test_no_usable_interval_fails_before_any_request(emu, make_context, day):
    op = PartnerCenterReferralsOperator(task_id="manual")

    with pytest.raises(PartnerCenterConfigError) as no_interval:
        op.execute(make_context())
    with pytest.raises(PartnerCenterConfigError) as trigger:
        op.execute(make_context(day[0], day[0]))

    fix = (
        'Either schedule the DAG with CronDataIntervalTimetable("@daily", timezone="UTC") (airflow.sdk; '
        "on Airflow 3.1 airflow.timetables.interval) so every run covers its interval, or pass an "
        "explicit window: trigger the run with conf "
        '{"window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-02T00:00:00Z"} '
        "(or set the operator's window_start/window_end), or set window_field=None to read everything "
        "the filter matches."
    )
    assert str(no_interval.value) == (
        "Cannot tell which referrals manual should read: this run has no data interval (a manual run "
        "without a logical date). " + fix
    )
    assert str(trigger.value).startswith(
        "Cannot tell which referrals manual should read: this run's data interval is empty "
        f"(data_interval_start == data_interval_end == {day[0]}); a cron schedule string such as '@daily' "
        "is a trigger timetable in Airflow 3, with no interval. Either schedule"
    )
    assert emu.stats()["requests"].get("list", 0) == 0


def test_explicit_window_from_params_or_arguments_is_read_as_given(emu, make_context, day):
    start, end = day[0] + dt.timedelta(hours=3), day[1] - dt.timedelta(hours=5)
    op = PartnerCenterReferralsOperator(task_id="params", lookback=dt.timedelta(hours=12))

    from_params = op.execute(
        make_context(window_start=f"{start:%Y-%m-%dT%H:%M:%SZ}", window_end=end.isoformat())
    )
    assert op.query_filter == _window_filter(start, end)
    assert from_params == expected_referrals(emu, start, end)

    # The operator's own (templated) bounds win over params and over the data interval.
    op = PartnerCenterReferralsOperator(
        task_id="args", window_start=start, window_end=f"{end:%Y-%m-%dT%H:%M:%S}"
    )
    assert op.execute(make_context(day[0], day[1], window_start="2020-01-01")) == from_params

    with pytest.raises(
        PartnerCenterConfigError, match=r"Only one bound of the explicit window is set in params"
    ):
        PartnerCenterReferralsOperator(task_id="half").execute(make_context(window_start="2026-11-01"))


def test_templates_render_filter_path_and_window(emu, day, tmp_path):
    op = PartnerCenterReferralsOperator(
        task_id="templated",
        filter="status eq '{{ params.status }}'",
        output_path="file://" + str(tmp_path) + "/{{ params.name }}_{window_start:%Y%m%d}.jsonl",
        window_start="{{ params.start }}",
        window_end="{{ params.end }}",
    )
    # Known only at run time: an alias named after the template records which file each run wrote.
    assert op.outlets == [
        AssetAlias(f"file://{tmp_path}/{{{{ params.name }}}}_{{window_start:%Y%m%d}}.jsonl")
    ]
    params = {"status": "New", "name": "new", "start": day[0].isoformat(), "end": day[1].isoformat()}
    context = {"params": params, "data_interval_start": None, "data_interval_end": None}

    op.render_template_fields(context)
    manifest = op.execute(context)

    target = tmp_path / f"new_{day[0]:%Y%m%d}.jsonl"
    assert manifest["path"] == f"file://{target}"
    assert manifest["filter"] == "status eq 'New' and " + _window_filter(*day)
    assert read_jsonl(target) == [r for r in expected_referrals(emu, *day) if r["status"] == "New"]


def test_non_local_store_gets_the_file_by_copy_and_delete(emu, make_context, day):
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    # fsspec's in-memory store stands in for a remote one (no rename: move is copy + delete).
    attach(protocol="memory", fs=fsspec.filesystem("memory"))
    op = PartnerCenterReferralsOperator(task_id="memory", output_path="memory://bucket/referrals/day.jsonl")
    manifest = op.execute(make_context(*day))

    target = ObjectStoragePath("memory://bucket/referrals/day.jsonl")
    assert manifest["path"] == str(target)
    assert target.read_bytes() == _lines(expected_referrals(emu, *day))
    assert [p.name for p in target.parent.iterdir()] == ["day.jsonl"]
    target.unlink()


def test_on_kill_stops_paging_at_the_next_page_and_cleans_up(emu, make_context, tmp_path):
    emu.configure(page_size=10, latency_per_page=0.1)
    target = tmp_path / "all.jsonl"
    op = PartnerCenterReferralsOperator(task_id="killed", window_field=None, output_path=f"file://{target}")
    outcome: dict[str, Exception] = {}

    def run() -> None:
        try:
            op.execute(make_context())
        except Exception as err:  # noqa: BLE001 - the test inspects it
            outcome["error"] = err

    worker = threading.Thread(target=run)
    worker.start()
    deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=20)
    while emu.stats()["pages_served"] < 3 and dt.datetime.now(UTC) < deadline:
        threading.Event().wait(0.02)
    op.on_kill()
    worker.join(timeout=10)

    assert not worker.is_alive()
    assert isinstance(outcome["error"], PartnerCenterCancelledError)
    assert emu.stats()["pages_served"] < 10  # of 200
    assert list(tmp_path.iterdir()) == []
    assert _own_spools() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"window_field": "closedDateTime"},
            "window_field must be one of createdDateTime, updatedDateTime or None (no window), "
            "got 'closedDateTime'.",
        ),
        ({"output_format": "csv"}, "output_format must be one of jsonl, jsonl.gz, parquet, got 'csv'."),
        ({"parallelism": 0}, "parallelism must be an integer >= 1, got 0."),
        ({"parallelism": 2, "top": 5}, "top caps one query; it cannot be combined with parallelism > 1."),
        ({"lookback": 3600}, "lookback must be a non-negative datetime.timedelta, got 3600."),
    ],
)
def test_invalid_arguments_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        PartnerCenterReferralsOperator(task_id="bad", **kwargs)
    assert str(caught.value) == message


ESCAPE = "DK' or 'a' eq 'a') or ('a' eq 'a"


def test_a_value_templated_into_the_filter_cannot_widen_the_window(emu, make_context, day):
    # The value closes the quote and a parenthesis: the filter no longer balances, and is refused
    # before it is combined with the window (wrapping it would have made it valid and wider).
    op = PartnerCenterReferralsOperator(
        task_id="escape", filter=f"customerProfile/address/country eq '{ESCAPE}'"
    )
    with pytest.raises(PartnerCenterConfigError) as caught:
        op.execute(make_context(*day))
    written = f"customerProfile/address/country eq '{ESCAPE}'"
    assert str(caught.value) == f"The ')' at character 54 of $filter {written!r} closes nothing."
    assert emu.stats()["requests"].get("list", 0) == 0


def test_filter_params_bind_run_time_values_as_literals(emu, make_context, day):
    country = next(r["customerProfile"]["address"]["country"] for r in expected_referrals(emu, *day))
    bound = PartnerCenterReferralsOperator(
        task_id="bound",
        filter="customerProfile/address/country eq :country",
        filter_params={"country": country},
    )
    escaped = PartnerCenterReferralsOperator(
        task_id="escaped",
        filter="customerProfile/address/country eq :country",
        filter_params={"country": ESCAPE},
    )

    records = bound.execute(make_context(*day))
    nothing = escaped.execute(make_context(*day))

    expected = [
        r for r in expected_referrals(emu, *day) if r["customerProfile"]["address"]["country"] == country
    ]
    assert records == expected
    assert len(expected) >= 1
    assert bound.query_filter == f"customerProfile/address/country eq '{country}' and " + _window_filter(*day)
    assert nothing == []
    assert escaped.query_filter == (
        "customerProfile/address/country eq 'DK'' or ''a'' eq ''a'') or (''a'' eq ''a' and "
        + _window_filter(*day)
    )


@pytest.mark.parametrize(
    ("filter_", "params", "message"),
    [
        (
            "country eq :country",
            {"contry": "DK"},
            "$filter placeholder :country has no value; filter_params has ['contry'].",
        ),
        (
            "country eq 'DK'",
            {"country": "DK"},
            "filter_params ['country'] match no :name placeholder in $filter \"country eq 'DK'\".",
        ),
        (None, {"country": "DK"}, "filter_params ['country'] given, but there is no filter."),
    ],
)
def test_filter_params_mistakes_are_named(emu, make_context, day, filter_, params, message):
    op = PartnerCenterReferralsOperator(task_id="typo", filter=filter_, filter_params=params)
    with pytest.raises(PartnerCenterConfigError) as caught:
        op.execute(make_context(*day))
    assert str(caught.value) == message
