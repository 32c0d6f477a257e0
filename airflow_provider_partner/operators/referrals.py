"""
The referrals operator: each run reads the referrals that changed in its window, exactly once.

Airflow glue around the extraction engine (:mod:`airflow_provider_partner.extract`): argument
checks at parse time, templating, the run's window from its context, asset events and the return
value. See ``docs/operator.md`` for windows, outputs, the parquet schema, parallelism and idempotency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import Asset, AssetAlias, BaseOperator

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.extract.slices import WINDOW_FIELDS, ExtractionPlan
from airflow_provider_partner.extract.window import (
    Window,
    describe_window,
    format_output_path,
    resolve_window,
    user_filter,
)
from airflow_provider_partner.extract.writers import OUTPUT_FORMATS
from airflow_provider_partner.links import ReferralsWorkspaceLink

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_partner.extract.checkpoint import CheckpointStore
    from airflow_provider_partner.extract.engine import Extraction, ExtractionResult
    from airflow_provider_partner.operators.lineage import ExtractionFacts

__all__ = ["WINDOW_FIELDS", "PartnerCenterReferralsOperator", "asset_uri", "output_outlet"]


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


def output_outlet(path: str, alias: str | None = None) -> Asset | AssetAlias:
    """
    Return what an output path is declared as: its ``Asset``, or an ``AssetAlias`` when templated.

    :param path: the output path as written in the DAG (URL or absolute local path, templated or not).
    :param alias: the alias's name for a templated path (default: the template as an asset URI).
    """
    if not _is_dynamic(path):
        return Asset(asset_uri(path))
    return AssetAlias(alias or asset_uri(path))


def _non_negative_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def validate_arguments(
    *,
    window_field: str | None,
    lookback: Any,
    output_format: str,
    parallelism: Any,
    top: int | None,
    max_xcom_records: Any,
) -> None:
    """
    Refuse arguments that can never work, when the DAG is parsed (not at 3 a.m.).

    :raises PartnerCenterConfigError: naming the argument and what it accepts.
    """
    if window_field is not None and window_field not in WINDOW_FIELDS:
        raise PartnerCenterConfigError(
            f"window_field must be one of {', '.join(WINDOW_FIELDS)} or None (no window), "
            f"got {window_field!r}."
        )
    if not isinstance(lookback, dt.timedelta) or lookback < dt.timedelta(0):
        raise PartnerCenterConfigError(
            f"lookback must be a non-negative datetime.timedelta, got {lookback!r}."
        )
    if output_format not in OUTPUT_FORMATS:
        raise PartnerCenterConfigError(
            f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}."
        )
    if not _non_negative_int(parallelism) or parallelism < 1:
        raise PartnerCenterConfigError(f"parallelism must be an integer >= 1, got {parallelism!r}.")
    if parallelism > 1 and top is not None:
        raise PartnerCenterConfigError("top caps one query; it cannot be combined with parallelism > 1.")
    if not _non_negative_int(max_xcom_records):
        raise PartnerCenterConfigError(
            f"max_xcom_records must be a non-negative integer, got {max_xcom_records!r}."
        )


class PartnerCenterReferralsOperator(BaseOperator):
    """
    Read the referrals whose ``window_field`` falls in the run's window; return them or write a file.

    The window is the run's data interval (``[data_interval_start - lookback, data_interval_end)``),
    or an explicit one (operator arguments or the ``window_start``/``window_end`` params). Each
    referral appears once per output, the version with the latest ``updatedDateTime``.

    :param partner_center_conn_id: the Partner Center connection.
    :param filter: OData ``$filter`` ANDed with the window (templated; raw text or built with
        :mod:`airflow_provider_partner.odata`). Put run-time values in with ``:name`` placeholders
        and ``filter_params``, never by templating them into the text.
    :param filter_params: values of the filter's ``:name`` placeholders (templated), each quoted
        as an OData literal, e.g. ``filter="country eq :country"`` with
        ``filter_params={"country": "{{ params.country }}"}``.
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
    :param parallelism: split the window into this many slices fetched concurrently, cut where
        each holds about as many referrals (count probes); with no window, the full history is
        split by ``createdDateTime``.
    :param max_xcom_records: XCom mode only: fail when more referrals than this are found.
    :param window_start: explicit window start (templated; ISO-8601 or datetime), with ``window_end``.
    :param window_end: explicit window end (exclusive).
    :param output_asset_alias: the name of the ``AssetAlias`` a templated ``output_path`` is
        declared as (its file is known only at run time; the alias records which one each run
        wrote, as an asset event with the run's facts). Default: the path template itself, as an
        asset URI (``file:///data/referrals/{{ ds }}.jsonl``). A literal ``output_path`` is
        declared as its ``Asset`` instead; ``outlets=[...]`` replaces either (``[]``: none).
    :param resume: file mode: keep a checkpoint beside the output while paging (the referrals
        spooled so far and where each slice's paging was), so that a retry of a killed try goes on
        from it instead of fetching every page again; removed when the file is published. The
        manifest goes to the task state store on Airflow 3.3, beside the output on 3.1 and 3.2.
        Not with ``top``. See "Resuming a killed extraction" in ``docs/operator.md``.
    """

    template_fields: Sequence[str] = (
        "filter",
        "filter_params",
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
    operator_extra_links = (ReferralsWorkspaceLink(),)

    def __init__(
        self,
        *,
        partner_center_conn_id: str = "partner_center_default",
        filter: str | None = None,
        filter_params: dict[str, Any] | None = None,
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
        resume: bool = True,
        output_asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        path_text = str(output_path) if output_path is not None else None
        if path_text and kwargs.get("outlets") is None:
            # Declared at parse time, so downstream DAGs can be scheduled on the file (or, for a
            # templated path, on the alias: Airflow then schedules them on each file it resolves to).
            kwargs["outlets"] = [output_outlet(path_text, output_asset_alias)]
        super().__init__(**kwargs)
        validate_arguments(
            window_field=window_field,
            lookback=lookback,
            output_format=output_format,
            parallelism=parallelism,
            top=top,
            max_xcom_records=max_xcom_records,
        )
        self.partner_center_conn_id = partner_center_conn_id
        self.filter = filter
        self.filter_params = filter_params
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
        self.resume = resume
        #: The complete ``$filter`` sent (user filter and window), set by :meth:`execute`.
        self.query_filter: str | None = None
        self._extraction: Extraction | None = None
        self._lineage_facts: ExtractionFacts | None = None

    # -- run ---------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Read the window into a local spool, then return the referrals or write the output file."""
        from airflow_provider_partner.extract.engine import Extraction

        window = self._window(context)
        plan = ExtractionPlan(
            window_field=self.window_field,
            window=window,
            filter=user_filter(self.filter, self.filter_params),
            orderby=self.orderby,
            select=self.select,
            top=self.top,
            parallelism=self.parallelism,
        )
        self.query_filter = plan.query_filter
        if self.query_filter is None:
            self.log.info("No $filter: reading every referral the signed-in user can see")
        else:
            self.log.info("$filter: %s", self.query_filter)
        target = self._target(window)
        extraction = self._extraction = Extraction(self.partner_center_conn_id, plan)
        if target is None:
            result = extraction.to_records(self.max_xcom_records)
            self._record_lineage(plan, result, None)
            self._emit_asset_events(context, self._event_extra(result, window, None), None)
            return result.records
        result = extraction.to_file(target, self.output_format, self._checkpoint(context, plan, target))
        self._record_lineage(plan, result, target)
        extra = self._event_extra(result, window, target)
        self._emit_asset_events(context, extra, asset_uri(str(target)))
        resumed = {"resumed_pages": result.resumed_pages} if result.resumed_pages else {}
        # The asset event's facts, and how the run went.
        return {
            **extra,
            "filter": self.query_filter,
            "parallelism": result.slices,
            "seconds": result.seconds,
            **resumed,
        }

    def _checkpoint(
        self, context: Context, plan: ExtractionPlan, target: ObjectStoragePath
    ) -> CheckpointStore | None:
        """Where this task instance keeps its progress for a retry (``None`` when it does not)."""
        if not self.resume or plan.top is not None:
            return None
        from airflow_provider_partner.extract.checkpoint import CheckpointStore, describe_plan, identity_of

        # Airflow 3.3+: the state store shared by the tries of this task instance; before, none.
        state_store = context.get("task_state_store")
        return CheckpointStore(
            target, identity_of(context, self.task_id), describe_plan(plan, target), state_store
        )

    def _window(self, context: Context) -> Window | None:
        if self.window_field is None:
            return None
        window = resolve_window(
            context,
            start=self.window_start,
            end=self.window_end,
            lookback=self.lookback,
            task_id=self.task_id,
        )
        self.log.info(
            "Window %s <= %s < %s (%s)",
            window.start,
            self.window_field,
            window.end,
            describe_window(window, self.lookback),
        )
        return window

    def _target(self, window: Window | None) -> ObjectStoragePath | None:
        if self.output_path is None:
            return None
        from airflow.sdk import ObjectStoragePath

        if isinstance(self.output_path, ObjectStoragePath):
            return self.output_path
        text = str(self.output_path).strip()
        if not text:
            raise PartnerCenterConfigError(
                "output_path rendered to an empty string; give a URL or None (XCom output)."
            )
        return ObjectStoragePath(_storage_url(format_output_path(text, window)))

    # -- assets ------------------------------------------------------------------------------------
    def _event_extra(
        self, result: ExtractionResult, window: Window | None, target: ObjectStoragePath | None
    ) -> dict[str, Any]:
        # The same names as the return value's: a reader of events and of XCom learns one set.
        return {
            "window_start": window.start.literal() if window else None,
            "window_end": window.end.literal() if window and window.end else None,
            "count": result.count,
            "received": result.received,
            "duplicates_removed": result.duplicates_removed,
            "pages": result.pages,
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

    # -- lineage ---------------------------------------------------------------------------------
    def _record_lineage(
        self, plan: ExtractionPlan, result: ExtractionResult, target: ObjectStoragePath | None
    ) -> None:
        from airflow_provider_partner.operators.lineage import record_extraction

        self._lineage_facts = record_extraction(
            self.partner_center_conn_id, plan, result, target, self.output_format
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the run's OpenLineage input (API and query) and output (file, row count, schema)."""
        from airflow_provider_partner.operators.lineage import facets_for

        return facets_for(self._lineage_facts)

    # -- kill --------------------------------------------------------------------------------------
    def on_kill(self) -> None:
        """Stop paging at the next page boundary and delete temporary files at once."""
        self.log.warning("Killed: stopping paging and removing temporary files.")
        if self._extraction is not None:
            self._extraction.cancel()
