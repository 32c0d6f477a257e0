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
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_partner.errors import PartnerCenterConfigError
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


def _in_task_process() -> bool:
    # The Task SDK talks to the API server through SUPERVISOR_COMMS, which exists only while a
    # task runs; elsewhere Variables must be read from the metadata database directly.
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


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
        """Return the Variable's value (decrypted), or ``None`` when the Variable does not exist."""
        value = self._get(self.key)
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
        """Write the Variable (creating it if needed), encrypted when ``encrypt`` is set."""
        if self.encrypt:
            fernet = _fernet(self.location)
            data = ENCRYPTED_PREFIX + fernet.encrypt(data.encode()).decode()
        self._set(self.key, data, self.description)

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
