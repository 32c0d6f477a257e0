"""
The check behind the new-referrals sensor and triggers: which referrals arrived in a window.

One check is one cheap request (``$orderby=createdDateTime``, a small ``$select`` and ``$top``),
so a sensor can poke often without listing the tenant. The same code runs in a worker (poke and
reschedule modes) and in the triggerer (deferrable mode, AssetWatcher), so the three agree on
what "new" means.

The window is half-open on ``createdDateTime``: ``created_after`` is inclusive and
``created_before`` exclusive. Consecutive windows that share a bound never report the same
referral twice and never miss one created exactly on the bound. Bounds are kept as the API's
own UTC literals (up to 7 fractional digits), so a watermark taken from a referral's
``createdDateTime`` is exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_partner import odata
from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.extract.window import parse_bound
from airflow_provider_partner.instants import sort_key

if TYPE_CHECKING:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

__all__ = [
    "DEFAULT_FIELDS",
    "MAX_REFERRALS_LIMIT",
    "NewReferralsCheck",
    "NewReferralsQuery",
    "check_new_referrals",
]

#: Fields returned by default: enough to route and answer a referral (``eTag`` for ``If-Match``).
DEFAULT_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "status",
    "substatus",
    "type",
    "qualification",
    "direction",
    "eTag",
)
#: Largest number of referrals one check returns (they go to XCom: keep it small).
MAX_REFERRALS_LIMIT = 1000
_PAGE = 100


def _positive_int(value: Any, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise PartnerCenterConfigError(f"{name} must be an integer from 1 to {upper}, got {value!r}.")
    return value


@dataclass(frozen=True)
class NewReferralsQuery:
    """
    What counts as a new referral, as plain data (it travels to the triggerer as kwargs).

    :param created_after: inclusive lower bound on ``createdDateTime`` (UTC literal), or ``None``.
    :param created_before: exclusive upper bound on ``createdDateTime`` (UTC literal), or ``None``
        for an open window (arrivals up to now).
    :param direction: ``Incoming`` by default; ``None`` for both directions.
    :param status: ``New`` by default (not answered yet); ``None`` for any status.
    :param filter: an extra OData filter ANDed with the rest, e.g. ``type eq 'Shared'``.
    :param expiring_within_seconds: instead of arrivals, match unanswered referrals whose
        ``expirationDateTime`` is less than this many seconds away (the window is not applied).
    :param select: fields to return (``None``: the whole referral).
    :param min_count: how many referrals must match before the wait is over.
    :param max_referrals: how many referrals one check returns at most (oldest first).
    :param exclude_ids: ids already reported at ``created_after`` (the event trigger's watermark).
    """

    created_after: str | None = None
    created_before: str | None = None
    direction: str | None = "Incoming"
    status: str | None = "New"
    filter: str | None = None
    expiring_within_seconds: float | None = None
    select: tuple[str, ...] | None = DEFAULT_FIELDS
    min_count: int = 1
    max_referrals: int = 100
    exclude_ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("created_after", "created_before"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, parse_bound(value, name).literal())
        if (
            self.created_after is not None
            and self.created_before is not None
            and parse_bound(self.created_before, "created_before")
            <= parse_bound(self.created_after, "created_after")
        ):
            raise PartnerCenterConfigError(
                f"The window is empty: created_after {self.created_after} is not before created_before "
                f"{self.created_before}."
            )
        _positive_int(self.min_count, "min_count", MAX_REFERRALS_LIMIT)
        _positive_int(self.max_referrals, "max_referrals", MAX_REFERRALS_LIMIT)
        if self.min_count > self.max_referrals:
            raise PartnerCenterConfigError(
                f"min_count ({self.min_count}) cannot exceed max_referrals ({self.max_referrals})."
            )
        if self.expiring_within_seconds is not None and not self.expiring_within_seconds > 0:
            raise PartnerCenterConfigError(
                f"expiring_within must be a positive duration, got {self.expiring_within_seconds!r} s."
            )
        if self.select is not None:
            names = tuple(odata.select(self.select).split(","))
            # createdDateTime orders the results and moves watermarks, id deduplicates them.
            missing = tuple(name for name in ("id", "createdDateTime") if name not in names)
            object.__setattr__(self, "select", names + missing)
        if self.filter is not None and not (isinstance(self.filter, str) and self.filter.strip()):
            object.__setattr__(self, "filter", None)
        object.__setattr__(self, "exclude_ids", tuple(self.exclude_ids))

    def to_filter(self, now: dt.datetime) -> str | None:
        """
        Return the ``$filter`` of this query.

        :param now: the current time (only used with ``expiring_within_seconds``).
        """
        parts: list[str | None] = [
            odata.eq("direction", self.direction) if self.direction else None,
            odata.eq("status", self.status) if self.status else None,
            self.filter,
        ]
        if self.expiring_within_seconds is not None:
            deadline = now + dt.timedelta(seconds=self.expiring_within_seconds)
            parts.append(odata.lt("expirationDateTime", deadline))
        else:
            if self.created_after is not None:
                parts.append(f"createdDateTime ge {self.created_after}")
            if self.created_before is not None:
                parts.append(f"createdDateTime lt {self.created_before}")
        return odata.and_(*parts) or None

    def serialize(self) -> dict[str, Any]:
        """Plain JSON-able kwargs that :meth:`deserialize` turns back into this query."""
        return {
            "created_after": self.created_after,
            "created_before": self.created_before,
            "direction": self.direction,
            "status": self.status,
            "filter": self.filter,
            "expiring_within_seconds": self.expiring_within_seconds,
            "select": list(self.select) if self.select is not None else None,
            "min_count": self.min_count,
            "max_referrals": self.max_referrals,
            "exclude_ids": list(self.exclude_ids),
        }

    @classmethod
    def deserialize(cls, data: Mapping[str, Any]) -> NewReferralsQuery:
        """Rebuild a query from :meth:`serialize`'s output."""
        values = dict(data)
        for name in ("select", "exclude_ids"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        if values.get("exclude_ids") is None:
            values["exclude_ids"] = ()
        return cls(**values)


@dataclass(frozen=True)
class NewReferralsCheck:
    """
    The outcome of one check.

    :param referrals: matching referrals, oldest ``createdDateTime`` first, at most ``max_referrals``.
    :param more: whether more referrals matched than were returned.
    :param filter: the ``$filter`` that was sent.
    """

    referrals: list[dict[str, Any]]
    more: bool
    filter: str | None

    def satisfies(self, query: NewReferralsQuery) -> bool:
        """Whether enough referrals matched to end the wait."""
        return len(self.referrals) >= query.min_count


def _keep(records: Iterable[dict[str, Any]], exclude: Sequence[str]) -> list[dict[str, Any]]:
    if not exclude:
        return list(records)
    skip = set(exclude)
    return [record for record in records if record.get("id") not in skip]


def _created_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return sort_key(record.get("createdDateTime")), str(record.get("id", ""))


def check_new_referrals(
    hook: PartnerCenterHook,
    query: NewReferralsQuery,
    *,
    now: dt.datetime | None = None,
) -> NewReferralsCheck:
    """
    Run one check of ``query``: normally a single request.

    The first request asks for the newest matches (``createdDateTime desc``): when they all fit in
    ``max_referrals`` that one request is the whole answer. When more match, a second pass reads
    the oldest ones instead (``asc``), because the oldest are the closest to their 14-day expiry.

    :param hook: the hook to read with.
    :param query: what to look for.
    :param now: the current time (default: the real UTC time).
    """
    filter_ = query.to_filter(now or dt.datetime.now(dt.timezone.utc))
    wanted = query.max_referrals + len(query.exclude_ids)
    top = min(wanted, _PAGE)
    first = next(
        iter(hook.iter_pages(filter=filter_, orderby="createdDateTime desc", select=query.select, top=top)),
        None,
    )
    records = _keep(first.records if first else [], query.exclude_ids)
    # Complete only if the one page was not full: a full page may hide older matches.
    if first is None or (first.next_link is None and len(first.records) < top):
        records.sort(key=_created_key)
        return NewReferralsCheck(records[: query.max_referrals], False, filter_)
    # One more than needed tells "exactly max_referrals matched" from "more matched".
    oldest = hook.iter_pages(
        filter=filter_, orderby="createdDateTime asc", select=query.select, top=wanted + 1
    )
    kept = _keep((record for page in oldest for record in page.records), query.exclude_ids)
    kept.sort(key=_created_key)
    return NewReferralsCheck(kept[: query.max_referrals], len(kept) > query.max_referrals, filter_)
