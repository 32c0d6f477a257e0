"""
Referrals into a Delta Lake table with delta-rs (``deltalake``, no Spark): ``file://``, S3, ADLS/OneLake.

Public API (``docs/delta-lake.md``)::

    from airflow_provider_partner.warehouse import merge_referrals_delta

    result = merge_referrals_delta(manifest["path"], "abfs://adls@lake/referrals")
    # {"read": 1480, "changed": 1312, "rows": 20931, "version": 12}

- :func:`merge_referrals_delta`: one commit of the operator's JSONL files into the table,
  created if needed (a MERGE, or an append when none of the ids is in the table yet); an
  ``id``'s row is replaced only by a strictly newer ``updatedDateTime``, compared exactly (7
  fractional digits); commit conflicts with concurrent writers are retried.
- :func:`optimize_referrals_delta` (compaction) and :func:`vacuum_referrals_delta`: offered,
  never run by a load.

``deltalake`` and ``pyarrow`` (the ``delta`` extra) are imported when a function runs.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any, TypedDict

from airflow_provider_partner.warehouse.delta_rows import (
    DEFAULT_BATCH_SIZE,
    UPDATED_EXACT_COLUMN,
    StagedRows,
    delta_column_names,
    delta_schema,
    stage_referrals,
)
from airflow_provider_partner.warehouse.delta_store import DeltaLocation, delta_location

__all__ = [
    "DEFAULT_DELTA_PROPERTIES",
    "DEFAULT_MAX_ATTEMPTS",
    "DeltaConflictError",
    "DeltaLoadResult",
    "merge_referrals_delta",
    "optimize_referrals_delta",
    "vacuum_referrals_delta",
]

log = logging.getLogger(__name__)

#: Table properties of a table the load creates (``table_properties`` adds or overrides).
DEFAULT_DELTA_PROPERTIES: Mapping[str, str] = {
    # Rows are updated in place (MERGE rewrites the files that hold them).
    "delta.appendOnly": "false",
    # A checkpoint every 10 commits: a reader replays at most 10 JSON commits (Delta's default).
    "delta.checkpointInterval": "10",
    # How long VACUUM keeps unreferenced files (time travel and slow readers), and the log.
    "delta.deletedFileRetentionDuration": "interval 7 days",
    "delta.logRetentionDuration": "interval 30 days",
}
#: Attempts of one load when concurrent writers' commits conflict with it.
DEFAULT_MAX_ATTEMPTS = 6
_FIRST_BACKOFF_SECONDS = 0.2
_MAX_BACKOFF_SECONDS = 5.0
#: Rows per Parquet row group the merge writes. The writer holds a row group's rows until it is
#: full, and delta-rs's default (about a million rows) made it hold every row of a first load:
#: 8,192 rows (about 32 MiB of referrals) keeps the load's memory nearly flat
#: (``docs/delta-lake.md``, "Memory and speed").
_ROW_GROUP_ROWS = 8_192
#: The commits' ``partnerCenter.loader`` metadata and application transaction id.
_LOADER = "airflow_provider_partner.warehouse.delta"


class DeltaConflictError(RuntimeError):
    """A load's commit conflicted with concurrent writers on every attempt; the table has none of it."""


class DeltaLoadResult(TypedDict):
    """What one load did."""

    #: referrals read from the files
    read: int
    #: rows inserted or replaced (a referral not newer than its row changes nothing)
    changed: int
    #: rows in the table after the load
    rows: int
    #: the table's version after the load (unchanged when nothing changed: no commit)
    version: int


def _paths(path_or_paths: Any) -> list[Any]:
    if isinstance(path_or_paths, (str, os.PathLike)) or hasattr(path_or_paths, "open"):
        return [path_or_paths]
    return list(path_or_paths)


def merge_referrals_delta(
    path_or_paths: Any,
    table_location: Any,
    *,
    storage_options: Mapping[str, str] | None = None,
    table_properties: Mapping[str, str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    allow_unsafe_s3: bool = False,
) -> DeltaLoadResult:
    """
    Merge the operator's JSONL output into a Delta table, creating the table if needed.

    Upsert by ``id``: a row is replaced only by a strictly newer ``updatedDateTime`` (compared
    at the API's 100 ns precision); an older or equal one changes nothing, so a rerun or an older
    file replayed leaves the table as it was and commits nothing. An ``id`` several times in the
    input is merged once, its newest version. All files are one commit (a MERGE, or an append
    when none of the ids is in the table yet): a bad line fails the load before anything is
    written. A commit that conflicts with a concurrent writer (or another load) is re-run on the
    new table version, up to ``max_attempts`` times.

    :param path_or_paths: one ``.jsonl``/``.jsonl.gz`` file or a list of them, merged in one
        commit: local paths, ``ObjectStoragePath`` objects or their URLs (``s3://conn@bucket/key``).
    :param table_location: the table: a local path, ``file://...``, ``s3://<aws_conn>@<bucket>/<key>``,
        ``abfs://<wasb_conn>@<container>/<key>`` (an ``ObjectStoragePath`` too), or a URL without a
        connection plus ``storage_options``.
    :param storage_options: delta-rs storage options laid over those derived from the connection.
    :param table_properties: properties of a table created by this load, over
        :data:`DEFAULT_DELTA_PROPERTIES` (an existing table keeps its own).
    :param batch_size: rows per Arrow record batch (memory per batch).
    :param max_attempts: merges tried before :class:`DeltaConflictError`.
    :param allow_unsafe_s3: accept ``AWS_S3_ALLOW_UNSAFE_RENAME``/``AWS_S3_LOCKING_PROVIDER``
        (commits without a conditional write: only for a table with a single writer).
    :return: ``{"read", "changed", "rows", "version"}`` (:class:`DeltaLoadResult`).
    :raises ValueError: a bad input line (file and line named), an unsupported location, an
        unsafe S3 configuration, or an existing table without the referrals columns.
    :raises DeltaConflictError: when every attempt met a conflicting concurrent commit.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    location = delta_location(table_location, storage_options, allow_unsafe_s3)
    properties = {**DEFAULT_DELTA_PROPERTIES, **(table_properties or {})}
    staged = stage_referrals(_paths(path_or_paths), batch_size)
    try:
        changed, table = _merge_with_retries(location, staged, properties, max_attempts)
    finally:
        staged.close()
    result: DeltaLoadResult = {
        "read": staged.read,
        "changed": changed,
        "rows": table.count(),
        "version": table.version(),
    }
    log.info(
        "Merged %d referrals (%d distinct ids) into the Delta table %s: %d rows inserted or "
        "updated, %d rows, version %d",
        staged.read,
        staged.unique,
        location,
        result["changed"],
        result["rows"],
        result["version"],
    )
    return result


def _merge_with_retries(
    location: DeltaLocation, staged: StagedRows, properties: Mapping[str, str], max_attempts: int
) -> tuple[int, Any]:
    for attempt in range(1, max_attempts + 1):
        outcome = _attempt(location, staged, properties)
        if not isinstance(outcome, Exception):
            return outcome
        if attempt == max_attempts:
            raise DeltaConflictError(
                f"the merge into the Delta table {location} conflicted with concurrent commits "
                f"{max_attempts} times; the table has none of this load. Run the load again, "
                f"or raise max_attempts (last conflict: {str(outcome).splitlines()[0]})"
            )
        # Exponential with jitter: concurrent loaders do not retry in lockstep.
        pause = min(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS)
        pause *= random.uniform(0.5, 1.5)
        log.warning(
            "Merge into %s conflicted with a concurrent commit (attempt %d of %d); retrying on "
            "the new version in %.1f s",
            location,
            attempt,
            max_attempts,
            pause,
        )
        time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt(
    location: DeltaLocation, staged: StagedRows, properties: Mapping[str, str]
) -> tuple[int, Any] | Exception:
    """One merge; a commit conflict is returned (to be retried), any other error raised."""
    from deltalake.exceptions import CommitFailedError

    try:
        return _merge_once(location, staged, properties)
    except CommitFailedError as err:
        return err


def _merge_once(
    location: DeltaLocation, staged: StagedRows, properties: Mapping[str, str]
) -> tuple[int, Any]:
    """One attempt: open (or create) the table at its newest version and merge the staged rows."""
    from deltalake import CommitProperties, Transaction, WriterProperties, write_deltalake

    table = _open_or_create(location, properties)
    # Only rows the table does not already hold (or holds older) go to the merge: a replay
    # merges nothing and commits nothing, and a day's load joins only its changes with the table.
    current = table.to_pyarrow_table(columns=["id", UPDATED_EXACT_COLUMN])
    changes = staged.newer_than(current)
    if not changes.true_count:
        return 0, table
    # Every load's commit sets the loader's application transaction: a load whose snapshot is
    # older than another load's commit conflicts with it (ConcurrentTransaction) and is retried
    # on the new version, whether it merges or appends.
    commit = CommitProperties(
        custom_metadata={"partnerCenter.loader": _LOADER},
        app_transactions=[Transaction(app_id=_LOADER, version=table.version() + 1)],
    )
    writer = WriterProperties(max_row_group_size=_ROW_GROUP_ROWS, compression="SNAPPY")
    if staged.none_held(changes, current) and _plain_columns(table):
        # Only new ids: an append streams the rows into new files without scanning the table,
        # where delta-rs's merge would hold every row of the table until its end.
        write_deltalake(
            table, staged.reader(changes), mode="append", writer_properties=writer, commit_properties=commit
        )
        return int(changes.true_count), table
    metrics = (
        table.merge(
            staged.reader(changes),
            predicate="t.id = s.id",
            source_alias="s",
            target_alias="t",
            streamed_exec=True,
            writer_properties=writer,
            commit_properties=commit,
        )
        .when_matched_update_all(predicate=f"s.{UPDATED_EXACT_COLUMN} > t.{UPDATED_EXACT_COLUMN}")
        .when_not_matched_insert_all()
        .execute()
    )
    return int(metrics["num_target_rows_inserted"]) + int(metrics["num_target_rows_updated"]), table


def _plain_columns(table: Any) -> bool:
    """Whether the table has exactly the load's columns (an append needs them; a merge fills others)."""
    return tuple(field.name for field in table.schema().fields) == delta_column_names()


def _open_or_create(location: DeltaLocation, properties: Mapping[str, str]) -> Any:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(location.uri, storage_options=location.storage_options)
    except TableNotFoundError:
        # mode="ignore": a table created meanwhile by another load is kept; two creating at
        # once race for version 0 and the loser gets CommitFailedError, retried as a conflict.
        DeltaTable.create(
            location.uri,
            schema=delta_schema(),
            mode="ignore",
            name="referrals",
            description="Partner Center referrals (airflow-provider-partner)",
            configuration=dict(properties),
            storage_options=location.storage_options,
        )
        table = DeltaTable(location.uri, storage_options=location.storage_options)
    columns = [field.name for field in table.schema().fields]
    missing = [name for name in delta_column_names() if name not in columns]
    if missing:
        raise ValueError(
            f"the Delta table {location} is not a referrals table: it lacks the columns {missing} "
            "(choose another location, or add them)"
        )
    return table


def optimize_referrals_delta(
    table_location: Any,
    *,
    storage_options: Mapping[str, str] | None = None,
    target_size: int | None = None,
    allow_unsafe_s3: bool = False,
) -> dict[str, Any]:
    """
    Compact the table's small files into larger ones (delta-rs ``optimize.compact``): one commit.

    Each load's merge adds files; compaction now and then (say weekly) keeps reads fast. It
    rewrites data but not rows. A load committing meanwhile makes it raise ``CommitFailedError``
    (run it again); a compaction committing first makes a load retry.

    :param table_location: the table, as for :func:`merge_referrals_delta`.
    :param storage_options: delta-rs storage options over the connection's.
    :param target_size: the files' target size in bytes (delta-rs's default: 100 MiB).
    :param allow_unsafe_s3: as for :func:`merge_referrals_delta`.
    :return: delta-rs's metrics (``numFilesAdded``, ``numFilesRemoved``, ...).
    """
    from deltalake import DeltaTable

    location = delta_location(table_location, storage_options, allow_unsafe_s3)
    table = DeltaTable(location.uri, storage_options=location.storage_options)
    metrics: dict[str, Any] = table.optimize.compact(target_size=target_size)
    log.info(
        "Compacted the Delta table %s: %s files removed, %s added",
        location,
        metrics.get("numFilesRemoved"),
        metrics.get("numFilesAdded"),
    )
    return metrics


def vacuum_referrals_delta(
    table_location: Any,
    *,
    retention_hours: int | None = None,
    dry_run: bool = False,
    storage_options: Mapping[str, str] | None = None,
    allow_unsafe_s3: bool = False,
) -> list[str]:
    """
    Delete files no version within the retention period needs (delta-rs ``vacuum``).

    Removes the files compaction and merges replaced, and those of failed attempts, once they are
    older than the retention (the table's ``delta.deletedFileRetentionDuration``, 7 days, unless
    ``retention_hours`` is given; shorter than the table's is refused). Time travel to versions
    older than the retention stops working.

    :param table_location: the table, as for :func:`merge_referrals_delta`.
    :param retention_hours: keep files removed less than this many hours ago.
    :param dry_run: list the files without deleting them.
    :param storage_options: delta-rs storage options over the connection's.
    :param allow_unsafe_s3: as for :func:`merge_referrals_delta`.
    :return: the files deleted (or that would be).
    """
    from deltalake import DeltaTable

    location = delta_location(table_location, storage_options, allow_unsafe_s3)
    table = DeltaTable(location.uri, storage_options=location.storage_options)
    files: list[str] = table.vacuum(retention_hours=retention_hours, dry_run=dry_run)
    log.info(
        "Vacuum of the Delta table %s: %d files %s", location, len(files), "found" if dry_run else "deleted"
    )
    return files
