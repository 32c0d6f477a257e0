"""
The extraction engine: read an :class:`~airflow_provider_partner.extract.slices.ExtractionPlan`
into a local spool (each referral once, the latest ``updatedDateTime`` wins), then hand the
referrals back (XCom) or publish them as one file, atomically.

The operator is Airflow glue around :class:`Extraction`; anything else that needs a window of
referrals (a script, another operator) can use it the same way::

    extraction = Extraction("partner_center_default", plan)
    result = extraction.to_file(ObjectStoragePath("file:///data/day.jsonl"), "jsonl")
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_partner.errors import (
    PartnerCenterCancelledError,
    PartnerCenterResultTooLargeError,
)
from airflow_provider_partner.extract.cursor import ExtractionCursor
from airflow_provider_partner.extract.fetch import FetchStats, OnPage, fetch_into_spool, make_hooks
from airflow_provider_partner.extract.spool import ReferralSpool, remove_stale_spools

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_partner.extract.checkpoint import CheckpointStore, Restored
    from airflow_provider_partner.extract.slices import ExtractionPlan
    from airflow_provider_partner.extract.writers import AtomicObjectWriter
    from airflow_provider_partner.hooks.paging import ReferralPage

__all__ = ["Extraction", "ExtractionResult", "summarise"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionResult:
    """
    What one extraction read and delivered.

    :param count: distinct referrals delivered (returned or written).
    :param pages: pages received over all slices.
    :param received: referrals received, duplicates included.
    :param slices: queries fetched concurrently.
    :param seconds: wall-clock time of the whole extraction.
    :param per_slice: referrals each slice received (duplicates included), in slice order.
    :param records: the referrals (XCom mode), ``None`` when written to a file.
    :param resumed_pages: of ``pages``, those an earlier, killed try had fetched (from its checkpoint).
    :param resumed_received: of ``received``, those from the checkpoint.
    """

    count: int
    pages: int
    received: int
    slices: int
    seconds: float
    records: list[dict[str, Any]] | None = field(default=None, repr=False)
    per_slice: tuple[int, ...] = ()
    resumed_pages: int = 0
    resumed_received: int = 0

    @property
    def duplicates_removed(self) -> int:
        """Referrals received more than once (overlaps, lookback, changes while paging)."""
        return self.received - self.count


def too_many_for_xcom(limit: int, count: int) -> PartnerCenterResultTooLargeError:
    """The error for a result that does not fit in XCom, naming the fixes."""
    return PartnerCenterResultTooLargeError(
        f"The query found more than max_xcom_records={limit} referrals ({count} so far); "
        "XCom values live in the Airflow metadata database and must stay small. Set output_path "
        "(e.g. 'file:///data/referrals/{{ ds }}.jsonl' or "
        "'s3://aws_default@bucket/referrals/{{ ds }}.jsonl') "
        "to write them to a file, narrow the filter or window, or raise max_xcom_records."
    )


def summarise(result: ExtractionResult, where: str) -> ExtractionResult:
    """
    Write the one INFO line that sums up an extraction, and return ``result``.

    ``Extracted 14 page(s), 1400 referral(s), 1390 distinct (10 duplicate(s) removed) in 3.2 s
    (437 referrals/s) to file:///data/2026-12-01.jsonl``

    :param result: what the extraction read and delivered.
    :param where: the output's URL, or ``XCom``.
    """
    rate = result.received / result.seconds if result.seconds > 0 else 0.0
    resumed = (
        f"; {result.resumed_pages} page(s) of them from an earlier try's checkpoint"
        if result.resumed_pages
        else ""
    )
    log.info(
        "Extracted %d page(s), %d referral(s), %d distinct (%d duplicate(s) removed) in %.1f s "
        "(%.0f referrals/s) to %s%s",
        result.pages,
        result.received,
        result.count,
        result.duplicates_removed,
        result.seconds,
        rate,
        where,
        resumed,
    )
    return result


class Extraction:
    """
    One extraction of a plan, usable once; :meth:`cancel` may be called from another thread or a
    signal handler (``on_kill``).

    :param partner_center_conn_id: the Airflow connection id.
    :param plan: what to read.
    """

    def __init__(self, partner_center_conn_id: str, plan: ExtractionPlan) -> None:
        self.partner_center_conn_id = partner_center_conn_id
        self.plan = plan
        self._stop = threading.Event()
        self._spool: ReferralSpool | None = None
        self._writer: AtomicObjectWriter | None = None
        #: Queries the fetch ran (the plan's slices), known once it started.
        self._slices = 0

    def __repr__(self) -> str:
        return f"Extraction(conn_id={self.partner_center_conn_id!r}, filter={self.plan.query_filter!r})"

    # -- the two deliveries ------------------------------------------------------------------------
    def to_records(self, max_records: int) -> ExtractionResult:
        """
        Return the referrals (ordered by the window field, then ``id``) in the result.

        :param max_records: fail as soon as more distinct referrals than this are found.
        :raises PartnerCenterResultTooLargeError: more than ``max_records`` matched.
        """
        started = time.monotonic()
        with self._open_spool() as spool:

            def check(index: int, page: ReferralPage) -> None:
                # received only grows; count() (distinct) is read only once received passes the limit.
                if spool.received > max_records and spool.count() > max_records:
                    raise too_many_for_xcom(max_records, spool.count())

            stats = self._fetch(spool, check, None)
            count = spool.count()
            if count > max_records:
                raise too_many_for_xcom(max_records, count)
            records = list(spool.iter_records())
        return summarise(self._result(stats, count, started, records), "XCom")

    def to_file(
        self, target: ObjectStoragePath, output_format: str, checkpoint: CheckpointStore | None = None
    ) -> ExtractionResult:
        """
        Write the referrals to ``target`` in ``output_format``, atomically (never a partial file).

        :param target: where the file goes (local or object storage).
        :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
        :param checkpoint: where to keep progress for a retry, and to take an earlier try's from
            (see :mod:`~airflow_provider_partner.extract.checkpoint`); removed once the file is
            published. ``None``: no checkpoint.
        """
        started = time.monotonic()
        with self._open_spool() as spool:
            restored = checkpoint.restore(spool) if checkpoint is not None else None
            if restored is not None:
                log.info(
                    "Resuming from the checkpoint of an earlier try (%s): %d page(s), %d referral(s) "
                    "already fetched; %d of %d slice(s) done",
                    checkpoint,
                    restored.pages,
                    restored.received,
                    sum(state.done for state in restored.cursor.slices),
                    len(restored.cursor.slices),
                )
            stats = self._fetch(spool, None, checkpoint, restored)
            written = self._write(spool, target, output_format)
        if checkpoint is not None:
            checkpoint.remove()
        return summarise(self._result(stats, written, started, None, restored), str(target))

    def cancel(self) -> None:
        """Stop paging at the next page boundary and delete temporary files at once."""
        self._stop.set()
        if self._writer is not None:
            self._writer.discard()
        if self._spool is not None:
            self._spool.close()

    # -- steps -------------------------------------------------------------------------------------
    def _open_spool(self) -> ReferralSpool:
        for stale in remove_stale_spools():
            log.info("Removed the spool of a killed run: %s", stale)
        spool = self._spool = ReferralSpool(order_field=self.plan.order_field)
        return spool

    def _fetch(
        self,
        spool: ReferralSpool,
        on_page: OnPage | None,
        checkpoint: CheckpointStore | None = None,
        restored: Restored | None = None,
    ) -> FetchStats:
        from airflow_provider_partner.extract.balance import plan_queries
        from airflow_provider_partner.extract.checkpointer import Checkpointer

        hooks = make_hooks(self.partner_center_conn_id, self.plan.parallelism)
        for hook in hooks:
            # One summary line per extraction (summarise()): each slice's closing line is DEBUG.
            hook.paging_summary_level = logging.DEBUG
        if restored is not None:
            # The slices the killed try planned, each from where it was.
            queries = restored.cursor.queries()
        else:
            # Balanced slices cost a few count requests before paging starts (see balance.py).
            queries = plan_queries(self.plan, hooks, self._stop)
        self._slices = len(queries)
        hooks = hooks[: len(queries)]
        saver = None
        if checkpoint is not None:
            cursor = restored.cursor if restored is not None else ExtractionCursor.start(queries)
            saver = Checkpointer(checkpoint, spool, cursor, restored)
        try:
            stats = fetch_into_spool(
                hooks,
                queries,
                spool,
                self._stop,
                on_page=saver.on_page if saver is not None else on_page,
                on_done=saver.on_done if saver is not None else None,
            )
            if saver is not None:
                # Kept until the file is published: a kill while writing it costs no page.
                saver.finish()
                log.info(
                    "Checkpoints: %d written to %s in %.2f s of a writer thread",
                    saver.written,
                    checkpoint,
                    saver.seconds,
                )
        finally:
            if saver is not None:
                saver.close()
        if len(queries) > 1:
            log.info("Referrals received per slice: %s", ", ".join(map(str, stats.per_slice)))
        return stats

    def _write(self, spool: ReferralSpool, target: ObjectStoragePath, output_format: str) -> int:
        from airflow_provider_partner.extract.writers import AtomicObjectWriter, write_output

        writer = self._writer = AtomicObjectWriter(target)
        for stale in writer.remove_stale():
            log.info("Removed a temporary file of an earlier attempt: %s", stale)
        try:
            with writer.in_use():
                # Referrals that arrived in output order, each once, are already the JSONL file.
                ordered = spool.ordered_jsonl() if output_format == "jsonl" else None
                if ordered is not None:
                    log.info("The pages arrived in output order, each referral once: no sorting needed")
                    written = spool.received
                    writer.adopt(ordered)
                else:
                    written = write_output(output_format, spool, writer.open(), check=self._check_stop)
                self._check_stop()
                writer.publish()
        finally:
            writer.discard()
        return written

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise PartnerCenterCancelledError(
                "Stopped while writing because the task is being killed; no output was written."
            )

    def _result(
        self,
        stats: FetchStats,
        count: int,
        started: float,
        records: list[dict[str, Any]] | None,
        restored: Restored | None = None,
    ) -> ExtractionResult:
        resumed_pages = restored.pages if restored is not None else 0
        resumed_received = restored.received if restored is not None else 0
        return ExtractionResult(
            count=count,
            pages=stats.pages + resumed_pages,
            received=stats.received + resumed_received,
            resumed_pages=resumed_pages,
            resumed_received=resumed_received,
            slices=self._slices,
            seconds=round(time.monotonic() - started, 3),
            records=records,
            per_slice=stats.per_slice,
        )
