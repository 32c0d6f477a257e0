"""
Durable one-value text stores: the serialized MSAL token caches and the triggers' watermarks.

Partner Center refresh tokens rotate: every refresh returns a new one, and the old one may stop
working. A scheduled job therefore has to keep the *newest* token cache somewhere that outlives
the task process; the event trigger likewise keeps its watermark between triggerer restarts.
Both are one text value, kept in one of two stores chosen by a location (the connection extra
``token_cache``, the trigger's ``watermark_location``):

- ``variable://<key>``: an Airflow Variable (put "token" or "secret" in the key so the UI
  masks it). Inside a task it goes through the Task SDK (the API server); outside a task (the
  ``partner-center-login`` command, scripts, tests) through the metadata database.
- any ``ObjectStoragePath`` URL (``file:///...``, ``s3://conn_id@bucket/key``, ``gs://...``):
  written to a temporary key next to the target, then moved over it, so a reader never sees a
  half-written cache.

Concurrency: the stores hold one value and the last writer wins. Two tasks refreshing at the
same moment both get valid access tokens; with revoking rotation the refresh token that loses
the race is dead, and the hook then reloads the freshest cache once and retries before failing
with a message that says so (see ``tokens.py``).
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from airflow_provider_partner.hooks.errors import PartnerCenterConfigError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = [
    "ObjectStorageTextStore",
    "TextStore",
    "VariableTextStore",
    "open_store",
    "validate_location",
]

log = logging.getLogger(__name__)

VARIABLE_SCHEME = "variable"


class TextStore(Protocol):
    """Where one text value (a token cache, a watermark) lives between task runs."""

    location: str

    def load(self) -> str | None:
        """Return the stored text, or ``None`` when nothing is stored yet."""

    def save(self, data: str) -> None:
        """Replace the stored text with ``data``."""


def validate_location(location: str, what: str = "Token cache location") -> str:
    """
    Check that ``location`` names a supported store; return it unchanged.

    :param location: ``variable://<key>`` or an ObjectStoragePath URL (``file:///abs/path``, ...).
    :param what: how error messages name the setting.
    """
    parts = urlsplit(location)
    if parts.scheme == VARIABLE_SCHEME:
        key = location[len("variable://") :]
        if not key or "/" in key:
            raise PartnerCenterConfigError(
                f"{what} {location!r} must be variable://<key> with a non-empty key "
                "and no slash, e.g. variable://partner_center_token_cache."
            )
        return location
    if not parts.scheme or len(parts.scheme) == 1:  # "C:\..." is a Windows path, not a scheme
        raise PartnerCenterConfigError(
            f"{what} {location!r} needs a scheme: variable://<key>, file:///<absolute path> "
            "or an object store URL such as s3://<conn_id>@<bucket>/<key>."
        )
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise PartnerCenterConfigError(
            f"{what} {location!r} must be an absolute file URL: file:///<absolute path>."
        )
    if location.endswith("/"):
        raise PartnerCenterConfigError(f"{what} {location!r} must name a file, not a folder.")
    return location


def _in_task_process() -> bool:
    # The Task SDK talks to the API server through SUPERVISOR_COMMS, which exists only while a
    # task runs; elsewhere Variables must be read from the metadata database directly.
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class VariableTextStore:
    """
    A text value in an Airflow Variable.

    :param key: the Variable key.
    :param description: the Variable's description (what it holds, for the UI).
    """

    def __init__(self, key: str, description: str = "MSAL token cache of airflow-provider-partner") -> None:
        self.key = key
        self.location = f"variable://{key}"
        self.description = description

    def load(self) -> str | None:
        """Return the Variable's value, or ``None`` when the Variable does not exist."""
        if _in_task_process():
            from airflow.sdk import Variable

            value = Variable.get(self.key, default=None)
        else:
            from airflow.models.variable import Variable as DbVariable

            value = DbVariable.get(self.key, default_var=None)
        return str(value) if value else None

    def save(self, data: str) -> None:
        """Write the Variable (creating it if needed)."""
        if _in_task_process():
            from airflow.sdk import Variable

            Variable.set(self.key, data, description=self.description)
        else:
            from airflow.models.variable import Variable as DbVariable

            DbVariable.set(self.key, data, description=self.description)

    def __repr__(self) -> str:
        return f"VariableTextStore({self.location!r})"


class ObjectStorageTextStore:
    """
    A text value in a file or object store, replaced by write-to-temporary-then-move.

    :param url: an ObjectStoragePath URL (``file:///...``, ``s3://conn_id@bucket/key``, ...).
    """

    def __init__(self, url: str) -> None:
        self.location = url

    def _path(self) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.location)

    def load(self) -> str | None:
        """Return the stored text, or ``None`` when the object does not exist yet."""
        path = self._path()
        if not path.exists():
            return None
        text: str = path.read_text(encoding="utf-8")
        return text or None

    def save(self, data: str) -> None:
        """Write ``data`` to a temporary object beside the target, then move it over the target."""
        path = self._path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            if path.protocol in ("file", "local"):
                # A local token cache holds refresh tokens: create it readable by the owner only.
                fd = os.open(tmp.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                os.replace(tmp.path, path.path)
            else:
                tmp.write_text(data, encoding="utf-8")
                tmp.move(path)
        except BaseException:
            if tmp.exists():
                tmp.unlink()
            raise

    def __repr__(self) -> str:
        return f"ObjectStorageTextStore({self.location!r})"


def open_store(location: str, what: str = "Token cache location") -> TextStore:
    """
    Return the store for a location (a ``token_cache`` extra, a ``watermark_location``).

    :param location: ``variable://<key>`` or an ObjectStoragePath URL.
    :param what: how error messages name the setting.
    """
    validate_location(location, what)
    if location.startswith("variable://"):
        # The UI shows the Variable's description: a watermark must not be labelled a token cache.
        held = "MSAL token cache" if what == "Token cache location" else what.removesuffix(" location")
        return VariableTextStore(location[len("variable://") :], f"{held} of airflow-provider-partner")
    return ObjectStorageTextStore(location)
