"""
The referrals operator: each run reads the referrals that changed in its window, exactly once.

See ``docs/operator.md`` for windows, outputs, the parquet schema, parallelism and idempotency.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import Asset, AssetAlias, BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_partner import odata
from airflow_provider_partner.operators.window import (
    QueryWindow,
    build_filter,
    format_output_path,
    resolve_window,
    split_window,
)
from airflow_provider_partner.operators.writers import OUTPUT_FORMATS

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_partner.operators.dedup import ReferralSpool
    from airflow_provider_partner.operators.writers import AtomicObjectWriter

__all__ = ["WINDOW_FIELDS", "PartnerCenterReferralsOperator"]

#: Fields a window can apply to (the datetime fields the API can order by).
WINDOW_FIELDS: tuple[str, ...] = odata.ORDERBY_FIELDS


def _is_dynamic(path: str) -> bool:
    """Whether the path is only known at run time (Jinja or window placeholders)."""
    return "{{" in path or "{%" in path or "{window_" in path


def _storage_url(path: str) -> str:
    """A URL for ``path``: a bare local path becomes ``file://``."""
    return f"file://{path}" if path.startswith("/") else path


def asset_uri(path: str) -> str:
    """
    Return the asset URI of an output location: the URL without the connection id.

    ``s3://aws_default@bucket/key`` becomes ``s3://bucket/key``: the asset is the data, whichever
    connection wrote it.

    :param path: an output path (URL or absolute local path).
    """
    parts = urlsplit(_storage_url(path))
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class PartnerCenterReferralsOperator(BaseOperator):
    """
    Read the referrals whose ``window_field`` falls in the run's window; return them or write a file.

    The window is the run's data interval (``[data_interval_start - lookback, data_interval_end)``),
    or an explicit one (operator arguments or the ``window_start``/``window_end`` params). Each
    referral appears once per output, the version with the latest ``updatedDateTime``.

    :param partner_center_conn_id: the Partner Center connection.
    :param filter: OData ``$filter`` ANDed with the window (templated; raw text or built with
        :mod:`airflow_provider_partner.odata`).
    :param orderby: ``$orderby`` for paging (templated), e.g. ``updatedDateTime asc``. Outputs are
        always ordered by the window field, then ``id``.
    :param select: ``$select`` fields (templated); ``id``, ``updatedDateTime`` and the window field
        are always added (needed to remove duplicates).
    :param top: stop after this many referrals (a cap for tests and samples; not with parallelism).
    :param window_field: ``updatedDateTime`` (default) or ``createdDateTime``; ``None`` reads
        everything the filter matches, with no window.
    :param lookback: read this much before the interval start too (late updates); data intervals
        only, explicit windows are read as given.
    :param output_path: where to write (templated ObjectStoragePath URL such as
        ``s3://aws_default@bucket/referrals/{{ ds }}.jsonl``; ``{window_start:%Y%m%d}`` and
        ``{window_end}`` placeholders are filled from the window). ``None``: return the referrals
        through XCom.
    :param output_format: ``jsonl`` (default), ``jsonl.gz`` or ``parquet`` (needs the ``parquet`` extra).
    :param parallelism: split the window into this many slices fetched concurrently.
    :param max_xcom_records: XCom mode only: fail when more referrals than this are found.
    :param window_start: explicit window start (templated; ISO-8601 or datetime), with ``window_end``.
    :param window_end: explicit window end (exclusive).
    """

    template_fields: Sequence[str] = (
        "filter",
        "orderby",
        "select",
        "output_path",
        "window_start",
        "window_end",
        "query_filter",
    )
    template_fields_renderers = {"filter": "sql", "query_filter": "sql"}
    # query_filter (the full $filter with the window) is known only in execute(): show it afterwards.
    overwrite_rtif_after_execution = True
    ui_color = "#cfe4f7"

    def __init__(
        self,
        *,
        partner_center_conn_id: str = "partner_center_default",
        filter: str | None = None,
        orderby: str | None = None,
        select: str | Sequence[str] | None = None,
        top: int | None = None,
        window_field: str | None = "updatedDateTime",
        lookback: dt.timedelta = dt.timedelta(0),
        output_path: str | ObjectStoragePath | None = None,
        output_format: str = "jsonl",
        parallelism: int = 1,
        max_xcom_records: int = 500,
        window_start: str | dt.datetime | None = None,
        window_end: str | dt.datetime | None = None,
        **kwargs: Any,
    ) -> None:
        path_text = str(output_path) if output_path is not None else None
        if path_text and not _is_dynamic(path_text) and kwargs.get("outlets") is None:
            # Declared at parse time, so downstream DAGs can be scheduled on the file.
            kwargs["outlets"] = [Asset(asset_uri(path_text))]
        super().__init__(**kwargs)
        if window_field is not None and window_field not in WINDOW_FIELDS:
            raise ValueError(
                f"window_field must be one of {', '.join(WINDOW_FIELDS)} or None (no window), "
                f"got {window_field!r}."
            )
        if not isinstance(lookback, dt.timedelta) or lookback < dt.timedelta(0):
            raise ValueError(f"lookback must be a non-negative datetime.timedelta, got {lookback!r}.")
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}."
            )
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ValueError(f"parallelism must be an integer >= 1, got {parallelism!r}.")
        if parallelism > 1 and window_field is None:
            raise ValueError(
                "parallelism > 1 splits the window into slices, but window_field is None (no window); "
                "set window_field or use parallelism=1."
            )
        if parallelism > 1 and top is not None:
            raise ValueError("top caps one query; it cannot be combined with parallelism > 1.")
        if (
            isinstance(max_xcom_records, bool)
            or not isinstance(max_xcom_records, int)
            or max_xcom_records < 0
        ):
            raise ValueError(f"max_xcom_records must be a non-negative integer, got {max_xcom_records!r}.")
        self.partner_center_conn_id = partner_center_conn_id
        self.filter = filter
        self.orderby = orderby
        self.select = select
        self.top = top
        self.window_field = window_field
        self.lookback = lookback
        self.output_path = output_path
        self.output_format = output_format
        self.parallelism = parallelism
        self.max_xcom_records = max_xcom_records
        self.window_start = window_start
        self.window_end = window_end
        #: The complete ``$filter`` sent (user filter and window), set by :meth:`execute`.
        self.query_filter: str | None = None
        self._stop: threading.Event | None = None
        self._spool: ReferralSpool | None = None
        self._writer: AtomicObjectWriter | None = None

    # -- query -------------------------------------------------------------------------------------
    def _select(self) -> str | None:
        if self.select is None:
            return None
        required = ["id", "updatedDateTime"] + ([self.window_field] if self.window_field else [])
        fields = self.select.split(",") if isinstance(self.select, str) else list(self.select)
        return odata.select([*fields, *required])

    def _paging_order(self) -> str:
        """The given ``orderby``, else the output order: pages then arrive as the file is written."""
        return self.orderby or f"{self.window_field or 'updatedDateTime'} asc"

    def _queries(self, window: QueryWindow | None) -> list[dict[str, Any]]:
        common: dict[str, Any] = {"orderby": self._paging_order(), "select": self._select(), "top": self.top}
        if window is None or self.parallelism == 1:
            return [{"filter": self.query_filter, **common}]
        return [
            {"filter": build_filter(self.window_field, _slice(window, start, end), self.filter), **common}
            for start, end in split_window(window, self.parallelism)
        ]

    # -- run ---------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Fetch the window into a local spool, then return the referrals or write the output file."""
        from airflow_provider_partner.operators.dedup import (
            ReferralSpool,
            SpoolClosedError,
            remove_stale_spools,
        )
        from airflow_provider_partner.operators.fetch import fetch_into_spool, make_hooks
        from airflow_provider_partner.operators.writers import WriterDiscardedError

        started = time.monotonic()
        self._stop = threading.Event()
        window = None
        if self.window_field is not None:
            window = resolve_window(
                context,
                lookback=self.lookback,
                window_start=self.window_start,
                window_end=self.window_end,
                task_id=self.task_id,
            )
        self.query_filter = build_filter(self.window_field, window, self.filter)
        if window is not None:
            self.log.info(
                "Window %s <= %s < %s (from the %s)",
                odata.datetime_literal(window.start),
                self.window_field,
                odata.datetime_literal(window.end),
                window.source.replace("_", " "),
            )
        if self.query_filter is None:
            self.log.info("No $filter: reading every referral the signed-in user can see")
        else:
            self.log.info("$filter: %s", self.query_filter)
        queries = self._queries(window)
        target = self._target(window)
        for stale in remove_stale_spools():
            self.log.info("Removed the spool of a killed run: %s", stale)
        hooks = make_hooks(self.partner_center_conn_id, len(queries))
        try:
            with ReferralSpool(order_field=self.window_field or "updatedDateTime") as spool:
                self._spool = spool
                on_page = self._xcom_limit_check(spool) if target is None else None
                stats = fetch_into_spool(hooks, queries, spool, self._stop, on_page=on_page)
                count = spool.count()
                duplicates = stats.received - count
                self.log.info(
                    "Fetched %d page(s), %d referral(s), %d distinct (%d duplicate(s) removed) in %.1f s",
                    stats.pages,
                    stats.received,
                    count,
                    duplicates,
                    stats.seconds,
                )
                extra = self._event_extra(count, window, target)
                if target is None:
                    self._check_xcom_size(count)
                    records = list(spool.iter_records())
                    self._emit_asset_events(context, extra, None)
                    return records
                written = self._write(spool, target)
        except (SpoolClosedError, WriterDiscardedError):
            # on_kill closed them under this thread: report the kill, not the closed file.
            self._check_stop()
            raise
        manifest = {
            "path": str(target),
            "format": self.output_format,
            "count": written,
            "window_start": extra["window_start"],
            "window_end": extra["window_end"],
            "filter": self.query_filter,
            "pages": stats.pages,
            "received": stats.received,
            "duplicates_removed": duplicates,
            "parallelism": len(queries),
            "seconds": round(time.monotonic() - started, 3),
        }
        self.log.info("Wrote %d referral(s) to %s", written, target)
        self._emit_asset_events(context, extra, asset_uri(str(target)))
        return manifest

    def _target(self, window: QueryWindow | None) -> ObjectStoragePath | None:
        if self.output_path is None:
            return None
        from airflow.sdk import ObjectStoragePath

        if isinstance(self.output_path, ObjectStoragePath):
            return self.output_path
        text = str(self.output_path).strip()
        if not text:
            raise ValueError("output_path rendered to an empty string; give a URL or None (XCom output).")
        return ObjectStoragePath(_storage_url(format_output_path(text, window)))

    def _write(self, spool: ReferralSpool, target: ObjectStoragePath) -> int:
        from airflow_provider_partner.operators.writers import AtomicObjectWriter, write_output

        writer = self._writer = AtomicObjectWriter(target)
        for stale in writer.remove_stale():
            self.log.info("Removed a temporary file of an earlier attempt: %s", stale)
        try:
            with writer.in_use():
                # Referrals that arrived in output order, each once, are already the JSONL file.
                ordered = spool.ordered_jsonl() if self.output_format == "jsonl" else None
                if ordered is not None:
                    written = spool.received
                    writer.adopt(ordered)
                else:
                    written = write_output(self.output_format, spool, writer.open(), check=self._check_stop)
                self._check_stop()
                writer.publish()
        finally:
            writer.discard()
        return written

    def _check_stop(self) -> None:
        if self._stop is not None and self._stop.is_set():
            from airflow_provider_partner.operators.fetch import FetchCancelled

            raise FetchCancelled(
                "Stopped while writing because the task is being killed; no output was written."
            ) from None

    # -- XCom --------------------------------------------------------------------------------------
    def _xcom_limit_message(self, count: int) -> str:
        return (
            f"The query found more than max_xcom_records={self.max_xcom_records} referrals ({count} so far); "
            "XCom values live in the Airflow metadata database and must stay small. Set output_path "
            "(e.g. 'file:///data/referrals/{{ ds }}.jsonl' or "
            "'s3://aws_default@bucket/referrals/{{ ds }}.jsonl') "
            "to write them to a file, narrow the filter or window, or raise max_xcom_records."
        )

    def _xcom_limit_check(self, spool: ReferralSpool) -> Any:
        def check() -> None:
            # received only grows; count() (distinct) is read only once received passes the limit.
            if spool.received > self.max_xcom_records and spool.count() > self.max_xcom_records:
                raise AirflowException(self._xcom_limit_message(spool.count()))

        return check

    def _check_xcom_size(self, count: int) -> None:
        if count > self.max_xcom_records:
            raise AirflowException(self._xcom_limit_message(count))

    # -- assets ------------------------------------------------------------------------------------
    def _event_extra(
        self, count: int, window: QueryWindow | None, target: ObjectStoragePath | None
    ) -> dict[str, Any]:
        return {
            "count": count,
            "window_start": odata.datetime_literal(window.start) if window else None,
            "window_end": odata.datetime_literal(window.end) if window else None,
            "format": self.output_format if target is not None else "xcom",
            "path": str(target) if target is not None else None,
        }

    def _emit_asset_events(self, context: Context, extra: dict[str, Any], uri: str | None) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                events[outlet].extra.update(extra)
            elif isinstance(outlet, AssetAlias) and uri is not None:
                # A templated output path is only known now: an alias records which asset it was.
                events[outlet].add(Asset(uri), extra=extra)

    # -- kill --------------------------------------------------------------------------------------
    def on_kill(self) -> None:
        """Stop paging at the next page boundary and delete temporary files at once."""
        if self._stop is not None:
            self._stop.set()
        self.log.warning("Killed: stopping paging and removing temporary files.")
        if self._writer is not None:
            self._writer.discard()
        if self._spool is not None:
            self._spool.close()


def _slice(window: QueryWindow, start: dt.datetime, end: dt.datetime) -> QueryWindow:
    return QueryWindow(start=start, end=end, interval_start=window.interval_start, source=window.source)
