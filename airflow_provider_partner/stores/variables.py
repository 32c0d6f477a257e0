"""
The ``variable://<key>`` store: a text value in an Airflow Variable, with its lease.

Inside a task it goes through the Task SDK (the API server); outside a task (the
``partner-center-login`` command, scripts, tests) through the metadata database. The lease is a
row (Variable ``<key>.lease``) inserted under the table's unique key outside a task (exclusive),
and write-wait-read-back inside one (best effort: the Task SDK has no conditional write).

A token cache is kept encrypted (:data:`ENCRYPTED_PREFIX` + a Fernet token of Airflow's
``[core] fernet_key``): the Variable's value travels through the API server and Airflow's
supervisor logs it at DEBUG, so what travels must be useless without a key that never travels
with it.

A key that a secrets backend also serves is refused (:class:`PartnerCenterStoreShadowedError`).
Airflow's ``Variable.get`` asks the secrets backends (``[secrets] backend``, then the
``AIRFLOW_VAR_<KEY>`` environment variables) before the metadata database, but ``Variable.set``
writes to the database, so every rotated token cache saved would be lost and a later run would
redeem a revoked refresh token. Two checks:

- on load, the backends this process asks before the database are asked for the key (the
  environment costs nothing; a configured backend one lookup, skipped while the value read is
  the one this store last confirmed): a shadow is refused before anything is refreshed;
- after every save, the key is read back the way loads read it and compared with the raw text
  written (the ciphertext: Fernet tokens differ per encryption, so only what was written can be
  compared). This catches what the first check cannot see: inside a task, reads go through the
  API server, whose own secrets backends this process does not know. A later load of the same
  process (a retry, the triggerer) that returns the value found then is refused too.

The rotated cache a refused save wrote stays in the database, the newest: removing the shadow is
the whole fix, without a new sign-in.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_partner.errors import PartnerCenterConfigError, PartnerCenterStoreShadowedError
from airflow_provider_partner.stores.lease import (
    LeaseGuarantee,
    lease_expired,
    lease_owner,
    lease_pause,
    lease_text,
)

__all__ = ["ENCRYPTED_PREFIX", "VariableTextStore"]

log = logging.getLogger(__name__)

#: The prefix of an encrypted Variable value (a Fernet token follows).
ENCRYPTED_PREFIX = "partner-center-fernet:v1:"
#: The settle delay of the best-effort (write, wait, read back) Variable lease.
_SETTLE_SECONDS = 0.05
#: The backends that are the metadata database itself (directly, or through the API server).
_DATABASE_BACKENDS = frozenset({"MetastoreBackend", "ExecutionAPISecretsBackend"})
#: What the default descriptions of :func:`~.base.open_store` end with.
_DESCRIPTION_SUFFIX = " of airflow-provider-partner"


def _in_task_process() -> bool:
    # The Task SDK talks to the API server through SUPERVISOR_COMMS, which exists only while a
    # task runs; elsewhere Variables must be read from the metadata database directly.
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _lookup_chain(in_task: bool) -> list[Any]:
    """The secrets backends ``Variable.get`` asks in this process, in its order."""
    if in_task:
        from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

        return list(ensure_secrets_backend_loaded())
    from airflow.configuration import ensure_secrets_loaded

    return list(ensure_secrets_loaded())


def _describe(backend: Any, key: str, in_task: bool) -> tuple[str, str]:
    """Where ``backend`` is configured, and how to take ``key`` out of it (names only, no values)."""
    cls = type(backend)
    if cls.__name__ == "EnvironmentVariablesBackend" and cls.__module__.startswith("airflow."):
        name = f"AIRFLOW_VAR_{key.upper()}"
        return f"the environment variable {name} (set in this process)", f"unset {name}"
    from airflow_provider_partner.compat import conf

    # A task falls back to [secrets] backend when [workers] secrets_backend is not set.
    worker_option = in_task and bool(conf.get("workers", "secrets_backend", fallback=""))
    option = "[workers] secrets_backend" if worker_option else "[secrets] backend"
    return (
        f"a secrets backend ({option} = {cls.__module__}.{cls.__qualname__})",
        f"delete Variable {key!r} from that secrets backend",
    )


def _shadowing_backends(key: str) -> list[tuple[str, str]]:
    """
    The backends this process reads ``key`` from before the metadata database, that hold it.

    :return: ``(source, remedy)`` of each, in lookup order; empty when the database serves it.
    """
    in_task = _in_task_process()
    found: list[tuple[str, str]] = []
    for backend in _lookup_chain(in_task):
        if {cls.__name__ for cls in type(backend).__mro__} & _DATABASE_BACKENDS:
            break  # the database itself: what comes after it is never read for a key it holds
        try:
            value = backend.get_variable(key=key)
        except Exception as err:  # noqa: BLE001 - Variable.get skips such a backend too (and logged it)
            log.debug(
                "Could not ask %s about Variable %s (%s)", type(backend).__name__, key, type(err).__name__
            )
            continue
        if value is not None:
            found.append(_describe(backend, key, in_task))
    return found


def _fernet(location: str) -> Any:
    from airflow_provider_partner.compat import get_fernet

    try:
        fernet = get_fernet()
    except Exception as err:  # noqa: BLE001 - an invalid key: re-raised with the fix
        raise _fernet_key_error(location, f" (it is not usable: {err})") from None
    if not fernet.is_encrypted:
        raise _fernet_key_error(location, "")
    return fernet


def _fernet_key_error(location: str, why: str) -> PartnerCenterConfigError:
    return PartnerCenterConfigError(
        f"Token cache {location} is a Variable, and Airflow has no [core] fernet_key here{why} to "
        "encrypt it with: the cache would travel (and be logged at DEBUG) in clear. Set the same "
        "AIRFLOW__CORE__FERNET_KEY on the workers, the triggerer and where partner-center-login "
        "runs, or use a file:// or object storage location."
    )


class VariableTextStore:
    """
    A text value in an Airflow Variable.

    :param key: the Variable key.
    :param description: the Variable's description (what it holds, for the UI).
    :param encrypt: keep the value encrypted with Airflow's Fernet key (token caches).
    """

    def __init__(
        self,
        key: str,
        description: str = "MSAL token cache of airflow-provider-partner",
        *,
        encrypt: bool = False,
    ) -> None:
        self.key = key
        self.location = f"variable://{key}"
        self.description = description
        self.encrypt = encrypt
        # The raw value last read, and the last one known to be what reads return (checked on
        # load, or written and read back): a load returning it needs no check of the backends.
        self._last_read: str | None = None
        self._confirmed: str | None = None
        # What reads returned when a save found the key shadowed, and by what: a later load of
        # this process (a retry, the triggerer) returning it is refused the same way, even where
        # only the read-back could tell (a backend of the API server).
        self._shadow: tuple[str | None, list[tuple[str, str]]] | None = None

    # -- raw Variable access ---------------------------------------------------------------------
    def _get(self, key: str) -> str | None:
        if _in_task_process():
            from airflow.sdk import Variable

            value = Variable.get(key, default=None)
        else:
            from airflow.models.variable import Variable as DbVariable

            value = DbVariable.get(key, default_var=None)
        return str(value) if value else None

    def _set(self, key: str, value: str, description: str) -> None:
        if _in_task_process():
            from airflow.sdk import Variable

            Variable.set(key, value, description=description)
        else:
            from airflow.models.variable import Variable as DbVariable

            DbVariable.set(key, value, description=description)

    # -- the value -------------------------------------------------------------------------------
    def load(self) -> str | None:
        """
        Return the Variable's value (decrypted), or ``None`` when the Variable does not exist.

        :raises PartnerCenterStoreShadowedError: a secrets backend read before the metadata
            database holds the key, so what :meth:`save` writes would never be read back.
        """
        value = self._get(self.key)
        self._last_read = value
        if value is not None and value != self._confirmed:
            if self._shadow is not None and value == self._shadow[0]:
                shadows = self._shadow[1]
            else:
                shadows = _shadowing_backends(self.key)
            if shadows:
                raise self._shadowed(shadows, saved=False)
            self._confirmed = value
        if value and value.startswith(ENCRYPTED_PREFIX):
            fernet = _fernet(self.location)
            try:
                return str(fernet.decrypt(value[len(ENCRYPTED_PREFIX) :].encode()).decode())
            except Exception:  # noqa: BLE001 - cryptography's InvalidToken, re-raised with the fix
                raise PartnerCenterConfigError(
                    f"Token cache {self.location} was encrypted with another [core] fernet_key than "
                    "this machine's: give every worker the same AIRFLOW__CORE__FERNET_KEY, or run "
                    "`partner-center-login` to write a fresh cache."
                ) from None
        # A cache written before encryption existed is read as it is; the next save encrypts it.
        return value

    def save(self, data: str) -> None:
        """
        Write the Variable (creating it if needed), encrypted when ``encrypt`` is set.

        :raises PartnerCenterStoreShadowedError: the value was written to the metadata database,
            but reading the key back returns another value (a secrets backend serves it first).
        """
        if self.encrypt:
            fernet = _fernet(self.location)
            data = ENCRYPTED_PREFIX + fernet.encrypt(data.encode()).decode()
        before = self._last_read
        self._set(self.key, data, self.description)
        read = self._get(self.key)
        self._last_read = read
        if read == data:
            self._confirmed, self._shadow = data, None
            return
        shadows = _shadowing_backends(self.key)
        # Only ciphertexts never repeat: a watermark equal to the one read before may be another
        # trigger's save landing in between, so it is no evidence of a shadow.
        if not shadows and self.encrypt and _in_task_process() and read is not None and read == before:
            # None of this worker's backends holds it, yet the write changed nothing that reads
            # see: the API server answers from a backend of its own. (Another task's save in
            # between would read back as a third value: Fernet tokens never repeat.)
            shadows = [
                (
                    f"a secrets backend or an AIRFLOW_VAR_{self.key.upper()} environment variable "
                    "of the Airflow API server (none of this worker's backends holds it)",
                    "remove it there",
                )
            ]
        if shadows:
            self._confirmed, self._shadow = None, (read, shadows)
            raise self._shadowed(shadows, saved=True)
        # Another writer saved between this write and the read (a best-effort lease): its value
        # is newer, and the next load reads it.
        log.debug("Variable %s changed again right after this save; another writer saved", self.key)

    def _shadowed(self, shadows: list[tuple[str, str]], *, saved: bool) -> PartnerCenterStoreShadowedError:
        """The error naming the key, where the shadowing value comes from, and the fix."""
        held = self.description.removesuffix(_DESCRIPTION_SUFFIX)
        if self.encrypt or held == "MSAL token cache":
            what, setting, kept = "Token cache", "credential_store", ": no new sign-in is needed"
            lost = (
                "every rotated refresh token saved would be lost and a later run would redeem a revoked one"
            )
        elif held == "Watermark":
            what, setting, kept = "Watermark", "watermark_location", ""
            lost = "every watermark saved would be lost and the trigger would report the same referrals again"
        else:
            what, setting, kept = held[:1].upper() + held[1:], "the location", ""
            lost = "every value saved would be lost"
        if saved:
            effect = (
                f". The value just saved is in the database (the newest{kept}), but reads return the other"
            )
        else:
            effect = f", so {lost}. Nothing was saved"
        sources = tuple(source for source, _ in shadows)
        remedies = " and ".join(remedy for _, remedy in shadows)
        return PartnerCenterStoreShadowedError(
            f"{what} {self.location} is shadowed: Airflow reads Variable {self.key!r} from "
            f"{' and '.join(sources)} before the metadata database, where the provider saves it{effect}. "
            f"Fix: {remedies} (reads then return the database's value), or set {setting} to another "
            "Variable key, a file:// or an object storage location.",
            key=self.key,
            sources=sources,
        )

    # -- the lease -------------------------------------------------------------------------------
    @property
    def lease_key(self) -> str:
        """The key of the lease Variable."""
        return f"{self.key}.lease"

    @contextlib.contextmanager
    def lease(self, timeout: float) -> Iterator[LeaseGuarantee]:
        """
        Hold the refresh lease: a lease row (exclusive) in the database, else write-and-confirm.

        :param timeout: how long to wait for another holder, seconds.
        """
        owner = lease_owner()
        if _in_task_process():
            held = self._acquire_by_confirmation(owner, timeout)
            guarantee = LeaseGuarantee.BEST_EFFORT
        else:
            held = self._acquire_row(owner, timeout)
            guarantee = LeaseGuarantee.EXCLUSIVE
        try:
            yield guarantee if held else LeaseGuarantee.NONE
        finally:
            if held:
                self._release(owner)

    def _acquire_row(self, owner: str, timeout: float) -> bool:
        from airflow.models.variable import Variable as DbVariable
        from airflow.utils.session import create_session
        from sqlalchemy import delete
        from sqlalchemy.exc import IntegrityError, OperationalError

        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                # The key is the table's unique key: the insert is the compare-and-swap.
                with create_session() as session:
                    lease = DbVariable(key=self.lease_key, val=lease_text(owner), description="lease")  # type: ignore[no-untyped-call]
                    session.add(lease)
                return True
            except (IntegrityError, OperationalError):
                pass  # held by another (or SQLite busy): look at it, then wait
            with create_session() as session:
                row = session.query(DbVariable).filter(DbVariable.key == self.lease_key).one_or_none()
                if row is not None and lease_expired(row.val):
                    # A dead holder's lease: remove exactly that row (its raw value), never a new one.
                    session.execute(
                        delete(DbVariable).where(
                            DbVariable.key == self.lease_key,
                            DbVariable._val == row._val,
                        )
                    )
                    continue
            if time.monotonic() >= deadline:
                return False
            lease_pause(attempt)
            attempt += 1

    def _acquire_by_confirmation(self, owner: str, timeout: float) -> bool:
        # The Task SDK has no conditional write: write, let concurrent writers land, read back.
        deadline = time.monotonic() + timeout
        attempt = 0
        mine = lease_text(owner)
        while True:
            current = self._get(self.lease_key)
            if current is None or lease_expired(current):
                self._set(self.lease_key, mine, "lease")
                time.sleep(_SETTLE_SECONDS)
                if self._get(self.lease_key) == mine:
                    return True
            if time.monotonic() >= deadline:
                return False
            lease_pause(attempt)
            attempt += 1

    def _release(self, owner: str) -> None:
        try:
            if _in_task_process():
                from airflow.sdk import Variable

                current = self._get(self.lease_key)
                if current and owner in current:
                    Variable.delete(self.lease_key)
                return
            from airflow.models.variable import Variable as DbVariable
            from airflow.utils.session import create_session
            from sqlalchemy import delete

            with create_session() as session:
                row = session.query(DbVariable).filter(DbVariable.key == self.lease_key).one_or_none()
                if row is not None and owner in (row.val or ""):
                    session.execute(
                        delete(DbVariable).where(
                            DbVariable.key == self.lease_key,
                            DbVariable._val == row._val,
                        )
                    )
        except Exception as err:  # noqa: BLE001 - an unreleased lease expires by itself
            log.warning("Could not release the lease %s (%s); it expires by itself", self.lease_key, err)

    def __repr__(self) -> str:
        return f"VariableTextStore({self.location!r})"
