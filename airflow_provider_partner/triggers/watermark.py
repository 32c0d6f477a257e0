"""
The event trigger's durable watermark: how far new-referral events have been fired.

A watermark is the newest ``createdDateTime`` already fired (the API's own literal, 7 fractional
digits) and the ids fired at exactly that instant. The next check asks for ``createdDateTime ge
<mark>`` and leaves those ids out, so a referral created at the same instant as the last one
fired is neither missed nor fired twice.

Where it lives:

1. ``watermark_location`` when set: ``variable://<key>`` (an Airflow Variable) or an
   ``ObjectStoragePath`` URL (``file:///...``, ``s3://conn@bucket/key``; a URL ending in ``/`` is
   a folder with one ``<watermark_key>.json`` per watcher), written atomically;
2. otherwise the watched asset's state store, which Airflow 3.3's triggerer hands to event
   triggers (``asset_state_store``: kept in the metadata database, removed with the asset);
3. neither: the trigger refuses to start, since a watermark in memory would fire every referral
   again after a triggerer restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_partner import instants
from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.extract.window import parse_bound

__all__ = ["Watermark", "WatermarkStore", "open_watermark_store"]


@dataclass(frozen=True)
class Watermark:
    """
    How far events have been fired.

    :param created_after: the newest ``createdDateTime`` fired (inclusive bound of the next check).
    :param ids_at_mark: ids fired whose ``createdDateTime`` is exactly ``created_after``.
    """

    created_after: str
    ids_at_mark: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # One spelling per instant, the API's own ("...:00Z" is stored as "...:00.0000000Z").
        object.__setattr__(
            self, "created_after", parse_bound(self.created_after, "created_after").api_format()
        )

    @classmethod
    def start(cls, start_after: str | None, now: dt.datetime) -> Watermark:
        """The first watermark: ``start_after`` if given, else ``now`` (only later arrivals fire)."""
        return cls(parse_bound(start_after if start_after else now, "start_after").api_format())

    def advanced(self, fired: Sequence[Mapping[str, Any]]) -> Watermark:
        """
        The watermark after firing ``fired`` (oldest ``createdDateTime`` first).

        :param fired: the referrals of the batch just fired.
        """
        if not fired:
            return self
        newest = instants.parse(fired[-1]["createdDateTime"], "createdDateTime").api_format()
        # sort_key is the API's spelling of any value: equal keys, same instant.
        at_newest = tuple(
            str(r["id"]) for r in fired if instants.sort_key(r.get("createdDateTime")) == newest
        )
        if newest == self.created_after:
            return Watermark(newest, self.ids_at_mark + at_newest)
        return Watermark(newest, at_newest)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (what the stores keep)."""
        return {"created_after": self.created_after, "ids_at_mark": list(self.ids_at_mark)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Watermark:
        """
        Read a stored watermark.

        :param data: a dict from :meth:`to_json` (or its JSON text).
        :param where: the store's location, for the error message.
        """
        try:
            value = json.loads(data) if isinstance(data, str) else data
            return cls(
                value["created_after"],
                tuple(str(i) for i in value.get("ids_at_mark") or ()),
            )
        except (ValueError, KeyError, TypeError, PartnerCenterConfigError) as err:
            raise PartnerCenterConfigError(
                f"The watermark stored in {where} is unreadable ({type(err).__name__}: {err}); delete it "
                "to start again from the trigger's start_after (referrals since then fire again)."
            ) from None


class WatermarkStore(Protocol):
    """Somewhere a watermark survives a triggerer restart."""

    location: str

    async def load(self) -> Watermark | None:
        """The saved watermark, or ``None`` before the first save."""

    async def save(self, mark: Watermark) -> None:
        """Replace the saved watermark."""


class _AssetStateWatermarkStore:
    def __init__(self, accessor: Any, key: str) -> None:
        self._accessor = accessor
        self._key = key
        self.location = f"asset state {accessor!r} key {key!r}"

    async def load(self) -> Watermark | None:
        try:
            value = await self._accessor.aget(self._key, None)
        except ValueError as err:
            # Airflow's accessor serves one asset only; a trigger shared by several assets has no
            # single state store to keep its watermark in.
            raise PartnerCenterConfigError(
                f"The asset state store cannot hold this trigger's watermark ({err}); the same trigger "
                "watches several assets. Set watermark_location (variable://<key> or a file/object "
                "storage URL)."
            ) from None
        return None if value is None else Watermark.from_json(value, self.location)

    async def save(self, mark: Watermark) -> None:
        await self._accessor.aset(self._key, mark.to_json())


class _TextWatermarkStore:
    # Variables and object storage are synchronous: keep them off the event loop.
    def __init__(self, location: str, key: str) -> None:
        from airflow_provider_partner.stores import open_store

        self._store = open_store(_keyed(location, key), "Watermark location")
        self.location = self._store.location

    async def load(self) -> Watermark | None:
        text = await asyncio.to_thread(self._store.load)
        return None if text is None else Watermark.from_json(text, self.location)

    async def save(self, mark: Watermark) -> None:
        await asyncio.to_thread(self._store.save, json.dumps(mark.to_json()))


def _keyed(location: str, key: str) -> str:
    # A folder URL ("file:///var/lib/airflow/watermarks/") holds one file per watcher key.
    return f"{location}{key}.json" if location.endswith("/") else location


def open_watermark_store(key: str, *, location: str | None, asset_state_store: Any) -> WatermarkStore:
    """
    Choose the store (see the module docstring for the order).

    :param key: the watermark's key (one per watcher).
    :param location: ``variable://<key>``, an ``ObjectStoragePath`` URL, or ``None``.
    :param asset_state_store: what the triggerer set on the trigger, or ``None``.
    """
    if location:
        return _TextWatermarkStore(location, key)
    if asset_state_store is not None:
        return _AssetStateWatermarkStore(asset_state_store, key)
    raise PartnerCenterConfigError(
        "PartnerCenterNewReferralsEventTrigger has nowhere durable to keep its watermark: run it in an "
        "AssetWatcher on Airflow 3.3+ (the asset's state store is used), or set watermark_location to "
        "variable://<key> or a file/object storage URL."
    )
