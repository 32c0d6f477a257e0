"""
The :class:`Emulator`: an https cheroot server in a background thread, and its admin actions.

The server is cheroot (CherryPy's WSGI server), not werkzeug's development server: werkzeug
answers ``Connection: close`` to every request, so each request paid a TLS handshake, while the
real service (and cheroot) keep HTTP/1.1 connections alive. Werkzeug is still the WSGI toolkit
(requests, responses, routing) of the application.

Readiness needs no waiting: the listening socket is bound (and the data generated) before the
serving thread starts, so the first request simply queues in the backlog until it is served.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import secrets
import socket
import ssl
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trustme
from cheroot import wsgi
from cheroot.ssl import Adapter
from cheroot.ssl.builtin import BuiltinSSLAdapter

from partner_center_emulator.app import REFERRALS, TOP_MODES, EmulatorApp, Settings
from partner_center_emulator.clock import Clock
from partner_center_emulator.data import Generator, new_guid
from partner_center_emulator.faults import Faults, Stats, validate_kinds
from partner_center_emulator.identity import make_identity
from partner_center_emulator.responses import ERROR_FORMATS
from partner_center_emulator.state import StateDir
from partner_center_emulator.store import ReferralStore

log = logging.getLogger(__name__)

_IDENTITY_SETTINGS = (
    "revoke_used_refresh_tokens",
    "token_ttl",
    "require_client_secret",
    "device_code_interval",
    "require_mfa",
    "require_consent",
    "refresh_token_inactive_days",
)
_APP_SETTINGS = (
    "doc_style_next_link",
    "foreign_next_link_host",
    "page_size",
    "latency_per_page",
    "retry_after",
    "slow_seconds",
    "error_format",
    "top_mode",
    "close_connections",
)


#: Worker threads per emulator. cheroot's pool does not grow on demand; idle keep-alive
#: connections wait in its selector, not in a worker, so this bounds concurrent requests only.
WORKER_THREADS = 16
#: The serving loop's select() timeout: how long stop() may wait for the loop to notice.
_LOOP_INTERVAL = 0.02
#: Seconds an idle keep-alive connection is kept before the server closes it.
IDLE_TIMEOUT = 10


class _TLSAdapter(BuiltinSSLAdapter):
    """
    cheroot's TLS adapter on an ``ssl.SSLContext`` made in memory, counting handshakes.

    cheroot's own constructor wants certificate files; the emulator's CA lives in memory.

    :param context: the server context (certificate loaded).
    :param on_handshake: called once per TLS handshake (one per client connection).
    """

    def __init__(self, context: ssl.SSLContext, on_handshake: Any) -> None:
        Adapter.__init__(self, "", "")
        self.context = context
        self._server_env: dict[str, str] = {}
        self._on_handshake = on_handshake

    def wrap(self, sock: socket.socket) -> Any:
        self._on_handshake()
        return super().wrap(sock)  # type: ignore[no-untyped-call]


class _Gateway(wsgi.Gateway_10):
    """The WSGI gateway, plus the connection's socket (the ``reset`` fault and disconnect checks)."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        environ["emulator.socket"] = self.req.conn.socket
        return environ

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # cheroot only copies a ``Connection: close`` the application answers; the connection is
        # closed after the response only if the request itself is marked so.
        if any(name.lower() == "connection" and value.lower() == "close" for name, value in headers):
            self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


def is_loopback(address: str) -> bool:
    """True for a loopback IP address (``127.0.0.0/8``, ``::1``); False for any other or a name."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


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
    :param token_ttl: access token lifetime in seconds.
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
        self._initial = {"page_size": page_size, "token_ttl": token_ttl, **settings}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._arrivals: threading.Thread | None = None
        self._arrivals_rate = 0.0
        self._arrivals_wake = threading.Event()
        self._stopping = threading.Event()
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
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        server = wsgi.Server(
            (self.host, self.port),
            EmulatorApp(self),
            numthreads=WORKER_THREADS,
            timeout=IDLE_TIMEOUT,
            shutdown_timeout=1,
        )
        server.gateway = _Gateway
        server.expiration_interval = _LOOP_INTERVAL
        server.ssl_adapter = _TLSAdapter(context, self.counters.connection)
        # prepare() binds and listens (port 0 is resolved here) and starts the worker threads.
        server.prepare()
        self._server = server
        try:
            self._warn_unless_loopback()
            self.admin_token = secrets.token_urlsafe(32)
            port = int(server.bind_addr[1])
            host = f"[{self.host}]" if ":" in self.host else self.host
            api_url = f"https://{host}:{port}"
            if self.state:
                self._ca_file = self.state.save_ca(ca)
            else:
                handle, name = tempfile.mkstemp(prefix="partner-emulator-ca-", suffix=".pem")
                os.close(handle)
                self._ca_file = Path(name)
                ca.cert_pem.write_to_path(name)
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
        self._arrivals_wake.set()
        if self._arrivals is not None:
            self._arrivals.join(timeout=10)
            self._arrivals = None
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
        identity = self.identity
        admin = identity.users["admin"]
        authority = f"{api_url}/{identity.tenant_id}"
        refresh_token = self.issue_refresh_token(admin.username)
        assert self._ca_file is not None
        conn = {
            "conn_type": "partner_center",
            "host": api_url,
            "login": identity.client_id,
            "password": identity.client_secret,
            "extra": {
                "tenant_id": identity.tenant_id,
                "authority_host": api_url,
                "refresh_token": refresh_token,
                "ca_bundle": str(self._ca_file),
                # As in production: the rotating token cache is kept in a credential store.
                "credential_store": f"file://{self._ca_file.with_suffix('.credentials.json')}",
            },
        }
        return {
            "api_url": api_url,
            "referrals_url": api_url + REFERRALS,
            "authority_host": api_url,
            "tenant_id": identity.tenant_id,
            "authority": authority,
            "client_id": identity.client_id,
            "client_secret": identity.client_secret,
            "refresh_token": refresh_token,
            "username": admin.username,
            "password": admin.password,
            "ca_bundle": str(self._ca_file),
            "admin_url": f"{api_url}/_emulator",
            "admin_token": self.admin_token,
            "airflow_conn": json.dumps(conn),
        }

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
        unknown = set(settings) - {
            *_IDENTITY_SETTINGS,
            *_APP_SETTINGS,
            "fault_rate",
            "fault_kinds",
            "fault_seed",
            "arrivals_per_second",
            "expire_incoming",
        }
        if unknown:
            raise ValueError(f"Unknown emulator setting(s): {', '.join(sorted(unknown))}")
        if "page_size" in settings and int(settings["page_size"]) < 1:
            raise ValueError("page_size must be at least 1")
        if "fault_kinds" in settings:
            validate_kinds(settings["fault_kinds"])
        if "top_mode" in settings and settings["top_mode"] not in TOP_MODES:
            raise ValueError(f"top_mode must be one of {', '.join(TOP_MODES)}")
        if "error_format" in settings and settings["error_format"] not in ERROR_FORMATS:
            raise ValueError(f"error_format must be one of {', '.join(ERROR_FORMATS)}")
        for name in _IDENTITY_SETTINGS:
            if name in settings:
                setattr(self.identity, name, type(getattr(self.identity, name))(settings[name]))
        for name in _APP_SETTINGS:
            if name in settings:
                value = settings[name]
                current = getattr(self.settings, name)
                if value is not None and current is not None and name != "foreign_next_link_host":
                    value = type(current)(value)
                setattr(self.settings, name, value)
        self.faults.configure(
            rate=settings.get("fault_rate"),
            kinds=settings.get("fault_kinds"),
            seed=settings.get("fault_seed"),
        )
        if "expire_incoming" in settings:
            self.store.expire_incoming = bool(settings["expire_incoming"])
        if "arrivals_per_second" in settings:
            self._set_arrivals(float(settings["arrivals_per_second"]))

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

    def on_tokens_changed(self) -> None:
        """Persist the refresh tokens (only with a state dir)."""
        if self.state:
            self.state.save_tokens(self.identity)

    def _set_arrivals(self, rate: float) -> None:
        if rate < 0:
            raise ValueError("arrivals_per_second must be >= 0")
        self._arrivals_rate = rate
        self._arrivals_wake.set()
        if rate > 0 and self._arrivals is None:
            self._arrivals = threading.Thread(
                target=self._arrive, name="partner-emulator-arrivals", daemon=True
            )
            self._arrivals.start()

    def _arrive(self) -> None:
        # One referral every 1/rate seconds; a rate change or stop() wakes the loop at once.
        while not self._stopping.is_set():
            rate = self._arrivals_rate
            self._arrivals_wake.clear()
            if rate <= 0:
                self._arrivals_wake.wait()
                continue
            if not self._arrivals_wake.wait(1.0 / rate):
                self.store.release_incoming(1)
