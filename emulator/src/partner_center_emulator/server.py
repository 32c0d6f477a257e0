"""
The :class:`Emulator`: an https cheroot server in a background thread, and its admin actions.

The server itself (cheroot on an in-memory TLS context) is :mod:`.http_server`'s; the switches
:meth:`Emulator.configure` changes are :mod:`.settings`'; live arrivals are :mod:`.arrivals`'.

Readiness needs no waiting: the listening socket is bound (and the data generated) before the
serving thread starts, so the first request simply queues in the backlog until it is served.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trustme

from partner_center_emulator import settings as switches
from partner_center_emulator.app import EmulatorApp
from partner_center_emulator.arrivals import Arrivals
from partner_center_emulator.clock import Clock
from partner_center_emulator.data import Generator, new_guid
from partner_center_emulator.faults import Faults, Stats
from partner_center_emulator.http_server import (
    IDLE_TIMEOUT,
    WORKER_THREADS,
    https_server,
    is_loopback,
    write_temporary_ca,
)
from partner_center_emulator.identity import make_identity
from partner_center_emulator.info import client_info
from partner_center_emulator.settings import Settings
from partner_center_emulator.state import StateDir
from partner_center_emulator.store import ReferralStore

__all__ = ["IDLE_TIMEOUT", "WORKER_THREADS", "Emulator", "is_loopback"]

log = logging.getLogger(__name__)


class Emulator:
    """
    A local Partner Center (Referrals API + Entra ID) over https, for tests, demos and benchmarks.

    ``with Emulator(referrals=2000, seed=7) as emu:`` starts it; ``emu.info`` has what a client
    needs. ``emu.admin_token`` (new at every start) authorizes the admin HTTP endpoints; the
    Python methods need none. See ``docs/emulator.md``.

    :param referrals: how many referrals to generate.
    :param seed: the generator's seed (same seed and ``now``: same referrals).
    :param period_days: created times spread over this many days before ``now``.
    :param page_size: the largest page the list endpoint serves.
    :param token_ttl: access token lifetime in seconds (``expires_in`` of every token response).
    :param access_token_bytes: 0: access tokens are ``emu-at-`` + 43 random characters; else
        every access token is exactly this many characters (at least 50; JWT-shaped from about
        730 on, as Entra's about 1.5 KB ones are).
    :param host: the address to bind.
    :param port: the port (0: any free port).
    :param now: the emulator's "now" at start (default: the real time); the clock runs from it.
    :param state_dir: a directory to write ``info.json`` to and keep state across restarts.
    :param settings: any setting :meth:`configure` accepts.
    """

    def __init__(
        self,
        referrals: int = 2000,
        seed: int = 7,
        period_days: float = 60,
        page_size: int = 100,
        token_ttl: int = 3600,
        access_token_bytes: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        self.referral_count = referrals
        self.seed = seed
        self.period_days = period_days
        self.host = host
        self.port = port
        self.settings = Settings()
        self.counters = Stats()
        self.faults = Faults()
        self.identity = make_identity(seed)
        self.state = StateDir(Path(state_dir)) if state_dir else None
        self._now = now
        self._initial = {
            "page_size": page_size,
            "token_ttl": token_ttl,
            "access_token_bytes": access_token_bytes,
            **settings,
        }
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._arrivals = Arrivals(lambda: self.store.release_incoming(1), self._stopping)
        self._ca_file: Path | None = None
        self.info: dict[str, Any] = {}
        #: The bearer token of the admin HTTP endpoints; set by :meth:`start`, never persisted.
        self.admin_token = ""
        self.clock: Clock
        self.generated_at = 0
        self.store: ReferralStore

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind, generate the data, start serving; return self."""
        if self._server is not None:
            raise RuntimeError("The emulator is already running")
        ca = self.state.load_ca() if self.state else None
        ca = ca or trustme.CA(organization_name="Partner Center emulator")
        server = https_server(self.host, self.port, EmulatorApp(self), ca, self.counters.connection)
        self._server = server
        try:
            self._warn_unless_loopback()
            self.admin_token = secrets.token_urlsafe(32)
            port = int(server.bind_addr[1])
            host = f"[{self.host}]" if ":" in self.host else self.host
            api_url = f"https://{host}:{port}"
            self._ca_file = self.state.save_ca(ca) if self.state else write_temporary_ca(ca)
            self._load_data(api_url)
            self.configure(**self._initial)
            self.info = self._make_info(api_url)
            if self.state:
                self.state.save(self)
            self._thread = threading.Thread(target=server.serve, name=f"partner-emulator-{port}", daemon=True)
            self._thread.start()
        except BaseException:
            server.stop()
            self._server = None
            self._remove_ca()
            raise
        return self

    def _load_data(self, api_url: str) -> None:
        """Start the clock, generate the referrals (and replay a state dir's journal over them)."""
        self.clock = Clock(self._now)
        self.generated_at = self.clock.origin
        if self.state:
            self.state.check(self.seed, self.referral_count, self.period_days)
            self.state.restore_identity(self.identity)
            self.generated_at = self.state.generation_now() or self.generated_at
        organization = new_guid(random.Random(f"org-{self.seed}"))
        generator = Generator(self.seed, api_url, organization)
        self.store = ReferralStore(generator, self.clock)
        self.store.load(generator.generate(self.referral_count, self.generated_at, self.period_days))
        if self.state:
            self.state.replay(self.store)
            self.store.on_write = self.state.record_write

    @property
    def stopping(self) -> threading.Event:
        """Set when :meth:`stop` begins: waits inside request handlers end at once."""
        return self._stopping

    def _warn_unless_loopback(self) -> None:
        # The bound address, not the host argument: "localhost" may resolve anywhere, "" is all.
        assert self._server is not None
        bound = str(self._server.bind_addr[0])
        if not is_loopback(bound):
            log.warning(
                "The Partner Center emulator listens on %s, not a loopback address: other machines "
                "can reach it. It is a test double with well-known users; bind 127.0.0.1 unless you "
                "mean to share it.",
                bound,
            )

    def stop(self) -> None:
        """Stop serving, close the socket, join the threads, remove the throwaway CA file."""
        self._stopping.set()
        self._arrivals.stop()
        if self._server is not None:
            # Closes the listening socket and every open (keep-alive) connection, and joins the
            # workers; handlers that wait (latency, slow faults) wake on _stopping.
            self._server.stop()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._remove_ca()

    def _remove_ca(self) -> None:
        if self._ca_file is not None and self.state is None:
            self._ca_file.unlink(missing_ok=True)
            # The connection's credential store (and its lock file) lives beside the CA file.
            for suffix in (".credentials.json", ".credentials.json.lock"):
                self._ca_file.with_suffix(suffix).unlink(missing_ok=True)
        self._ca_file = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_info(self, api_url: str) -> dict[str, Any]:
        refresh_token = self.issue_refresh_token(self.identity.users["admin"].username)
        assert self._ca_file is not None
        return client_info(self.identity, api_url, self._ca_file, refresh_token, self.admin_token)

    # -- admin actions ----------------------------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """``{"admin": {...}, "user": {...}, "norole": {...}}`` with username, password, email, role."""
        return {key: user.public() for key, user in self.identity.users.items()}

    def now(self) -> datetime:
        """
        The emulator's clock now (UTC, to the microsecond), what a referral created now is stamped with.

        It runs on the monotonic clock from the wall-clock time at start, so it can differ from
        ``datetime.now()`` by what the system clock was stepped or slewed since: a test that
        asks for referrals created after "now" and then releases some takes its now from here.
        """
        ticks = self.clock.now()
        seconds, rest = divmod(ticks, 10_000_000)
        return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=rest // 10)

    def referrals(self) -> list[dict[str, Any]]:
        """A deep copy of every referral in its current state (oldest created first)."""
        return self.store.all()

    def referral_ids(self) -> list[str]:
        """Every referral id (cheaper than :meth:`referrals` for large data sets)."""
        return self.store.ids()

    def wait_for_referrals(self, count: int, timeout: float = 10.0) -> bool:
        """Wait (bounded) until at least ``count`` referrals exist, e.g. after live arrivals."""
        return self.store.wait_for_count(count, timeout)

    def issue_refresh_token(self, username: str) -> str:
        """A fresh valid refresh token for ``username``."""
        token = self.identity.issue_refresh_token(username)
        self.on_tokens_changed()
        return token

    def configure(self, **settings: Any) -> None:
        """Change switches while running (see ``docs/emulator.md`` for each one)."""
        switches.check(settings)
        switches.apply(settings, self.identity, self.settings)
        self.faults.configure(
            rate=settings.get("fault_rate"),
            kinds=settings.get("fault_kinds"),
            seed=settings.get("fault_seed"),
        )
        if "expire_incoming" in settings:
            self.store.expire_incoming = bool(settings["expire_incoming"])
        if "arrivals_per_second" in settings:
            self._arrivals.set_rate(float(settings["arrivals_per_second"]))

    def script_faults(self, kinds: list[str]) -> None:
        """The next API requests get these faults, in order."""
        self.faults.script(kinds)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far becomes invalid."""
        self.identity.expire_access_tokens()

    def age_refresh_tokens(self, days: float) -> int:
        """Make every refresh token ``days`` older (the 90-day inactivity limit); return how many."""
        count = self.identity.age_refresh_tokens(days)
        self.on_tokens_changed()
        return count

    def release_incoming(self, n: int = 1, **overrides: Any) -> list[dict[str, Any]]:
        """Create ``n`` Incoming/New/Pending referrals now; return copies of them."""
        made = self.store.release_incoming(n, **overrides)
        return list(json.loads(json.dumps(made)))

    def approve_device_code(self, user_code: str, username: str) -> None:
        """Complete a pending device-code sign-in as ``username``."""
        self.identity.approve_device_code(user_code, username)

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, token grants, faults, pages served, Authorization headers per host."""
        return self.counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters (:meth:`handshakes` and :meth:`abandoned` too)."""
        self.counters.reset()

    def handshakes(self) -> int:
        """TLS handshakes served since start or :meth:`reset_stats`: one per client connection."""
        return self.counters.handshakes()

    def abandoned(self) -> int:
        """Requests whose work stopped early because the client had gone (see ``docs/emulator.md``)."""
        return self.counters.abandoned()

    def wait_for_abandoned(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait (bounded, on a condition) until ``count`` requests were abandoned; ``False`` on timeout."""
        return self.counters.wait_for_abandoned(count, timeout)

    def issued_tokens(self) -> dict[str, list[str]]:
        """
        Every access and refresh token issued since start, oldest first (a soak scans logs for them).

        ``{"access_tokens": [...], "refresh_tokens": [...]}``: token grants, ``issue_refresh_token``
        and ``info["refresh_token"]`` included; :meth:`reset_stats` and :meth:`expire_access_tokens`
        clear nothing here; refresh tokens restored from a state dir are not listed.
        """
        return self.identity.issued_tokens()

    def token_counts(self) -> dict[str, int]:
        """``{"access_tokens": n, "refresh_tokens": n}``: how many :meth:`issued_tokens` lists."""
        return self.identity.token_counts()

    def on_tokens_changed(self) -> None:
        """Persist the refresh tokens (only with a state dir)."""
        if self.state:
            self.state.save_tokens(self.identity)
