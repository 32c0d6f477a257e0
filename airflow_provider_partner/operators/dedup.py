"""
A local on-disk spool that keeps each referral once (the latest ``updatedDateTime`` wins).

Paging over data that changes while it is read, overlapping parallel slices and the lookback
can all deliver the same referral more than once. Holding the result set in memory to remove
them does not scale, so pages are appended to a local file and a SQLite table in the same
temporary directory maps each ``id`` to its newest version (an upsert keeps the newer one).
The output is then streamed back ordered by the window field and ``id``, so the same data
always gives the same bytes.

Only one thread may use a spool (SQLite connections are not shared between threads here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from airflow_provider_partner.hooks.errors import PartnerCenterResponseError

__all__ = ["SPOOL_PREFIX", "ReferralSpool", "remove_stale_spools", "timestamp_key"]

#: Prefix of spool directories in the temp dir; the owning process id follows it.
SPOOL_PREFIX = "partner-referrals-spool-"
_SPOOL_NAME = re.compile(re.escape(SPOOL_PREFIX) + r"(\d+)-")

_UPSERT = (
    "INSERT INTO spool (id, updated, sortkey, pos, size) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET updated = excluded.updated, sortkey = excluded.sortkey, "
    "pos = excluded.pos, size = excluded.size WHERE excluded.updated > spool.updated"
)


def _dumps(record: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(record)


def timestamp_key(value: Any) -> str:
    """
    Return a string that sorts like the instant ``value`` denotes (``""`` for missing values).

    The API writes UTC with up to 7 fractional digits (``2026-11-01T10:00:00.1234567Z``), but the
    number of digits may vary; comparing the raw strings would order ``...:00Z`` after
    ``...:00.5Z``. Keys are ``YYYY-MM-DDTHH:MM:SS.fffffffZ`` in UTC.

    :param value: the field value from a referral.
    """
    if type(value) is str and len(value) >= 20 and value[-1] == "Z" and value[10] == "T":
        head, _, fraction = value[:-1].partition(".")
        if len(head) == 19 and (not fraction or fraction.isdigit()):
            return f"{head}.{fraction[:7]:0<7}Z"
    if not isinstance(value, str) or not value:
        return ""
    try:
        text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
        # fromisoformat takes at most 6 fractional digits before Python 3.11.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    utc = parsed.astimezone(dt.timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_spools(directory: str | None = None) -> list[Path]:
    """
    Delete spool directories left by processes that no longer run (e.g. a task killed with SIGKILL).

    :param directory: the temp dir to scan (default: :func:`tempfile.gettempdir`).
    :return: the directories removed.
    """
    removed: list[Path] = []
    root = Path(directory or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            match = _SPOOL_NAME.match(entry.name)
            if match and entry.is_dir() and not _pid_alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


class ReferralSpool:
    """
    Referrals keyed by ``id`` in a temporary directory; the newest ``updatedDateTime`` wins.

    Bodies are appended to a flat file as they arrive (sequential writes, nothing kept in
    memory); a small SQLite table maps each ``id`` to the offset of its winning version. Reading
    back follows an index on ``(order key, id)``.

    :param order_field: the field the output is ordered by (then ``id``), e.g. ``updatedDateTime``.
    :param directory: parent of the temporary directory (default: the system temp dir).
    """

    def __init__(self, order_field: str = "updatedDateTime", directory: str | None = None) -> None:
        self.order_field = order_field
        self.path = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=directory))
        #: Referrals received, duplicates included.
        self.received = 0
        self._bodies = open(self.path / "bodies.jsonl", "w+b")  # noqa: SIM115 - closed in close()
        self._offset = 0
        self._db = sqlite3.connect(self.path / "index.sqlite3", isolation_level=None)
        # A throwaway file: no journal, no fsync; a small page cache keeps memory flat.
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8192;"
            "PRAGMA temp_store = FILE;"
            "CREATE TABLE spool (id TEXT NOT NULL UNIQUE, updated TEXT NOT NULL, sortkey TEXT NOT NULL,"
            " pos INTEGER NOT NULL, size INTEGER NOT NULL);"
            "BEGIN;"
        )
        self._reading = False

    def __repr__(self) -> str:
        return f"ReferralSpool({self.path})"

    def __enter__(self) -> ReferralSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, records: Iterable[dict[str, Any]]) -> int:
        """
        Upsert a batch of referrals (one page); return how many were given.

        :param records: referral objects as returned by the API; each must have a string ``id``.
        """
        if self._reading:
            raise RuntimeError("The spool is being read; no more records can be added.")
        order_field = self.order_field
        by_updated = order_field == "updatedDateTime"
        rows = []
        chunks = []
        offset = self._offset
        for record in records:
            referral_id = record.get("id")
            if not isinstance(referral_id, str) or not referral_id:
                raise PartnerCenterResponseError(
                    f"A referral without a usable 'id' ({referral_id!r}) was returned; duplicates cannot be "
                    "removed without it. If $select is used, keep 'id' in it."
                )
            updated = timestamp_key(record.get("updatedDateTime"))
            sortkey = updated if by_updated else timestamp_key(record.get(order_field))
            body = _dumps(record)
            rows.append((referral_id, updated, sortkey, offset, len(body)))
            chunks.append(body)
            offset += len(body)
        self._bodies.write(b"".join(chunks))
        self._offset = offset
        self._db.executemany(_UPSERT, rows)
        self.received += len(rows)
        return len(rows)

    def count(self) -> int:
        """Number of distinct referrals held."""
        (value,) = self._db.execute("SELECT count(*) FROM spool").fetchone()
        return int(value)

    def _finish_loading(self) -> None:
        if not self._reading:
            self._db.execute("COMMIT")
            self._bodies.flush()
            # Built once after loading: cheaper than maintaining it on every upsert.
            self._db.execute("CREATE INDEX spool_order ON spool (sortkey, id)")
            self._reading = True

    def iter_json(self) -> Iterator[bytes]:
        """Yield each referral once as compact JSON (UTF-8), ordered by the order field, then ``id``."""
        self._finish_loading()
        descriptor = self._bodies.fileno()
        cursor = self._db.execute("SELECT pos, size FROM spool ORDER BY sortkey, id")
        while batch := cursor.fetchmany(1000):
            for offset, length in batch:
                yield os.pread(descriptor, length, offset)

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Yield each referral once as a dict, in the order of :meth:`iter_json`."""
        import orjson

        for body in self.iter_json():
            yield orjson.loads(body)

    def close(self) -> None:
        """Close the files and delete the temporary directory (safe to call twice)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            self._bodies.close()
        shutil.rmtree(self.path, ignore_errors=True)
