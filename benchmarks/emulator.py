"""The emulator in its own process (as the demo runs it), and its admin endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from types import TracebackType
from typing import Any

import requests

__all__ = ["FIXED_NOW", "SERVERS", "EmulatorProcess"]

#: Every benchmark emulator starts at this instant: same seed and same "now", same data.
FIXED_NOW = "2026-11-20T12:00:00Z"
#: The two ways the emulator serves the throughput figures: server name -> ``close_connections``.
#: ``keep-alive`` is HTTP/1.1 as the real service (and the emulator by default) does it; with
#: ``connection-per-request`` every response closes its connection, so each request pays a TLS
#: handshake (how the emulator served before it kept connections alive).
SERVERS = {"keep-alive": False, "connection-per-request": True}


class EmulatorProcess:
    """
    ``python -m partner_center_emulator`` in a child process; ``info`` once it serves.

    The server gets its own process (and so its own core on a 2-core machine), as it would be
    another machine for a real client.

    :param referrals: referrals to generate.
    :param seed: generator seed.
    :param page_size: the largest page the list endpoint serves.
    :param token_ttl: access-token lifetime, seconds.
    :param period_days: created times spread over this many days before :data:`FIXED_NOW`.
    :param latency_per_page: seconds the emulator adds to every list page.
    """

    def __init__(
        self,
        referrals: int,
        *,
        seed: int = 7,
        page_size: int = 100,
        token_ttl: int = 3600,
        period_days: float = 60,
        latency_per_page: float = 0.0,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "partner_center_emulator",
            "--referrals",
            str(referrals),
            "--seed",
            str(seed),
            "--page-size",
            str(page_size),
            "--token-ttl",
            str(token_ttl),
            "--period-days",
            str(period_days),
            "--now",
            FIXED_NOW,
            "--latency-per-page",
            str(latency_per_page),
        ]
        self.page_size = page_size
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self._session = requests.Session()

    def start(self) -> EmulatorProcess:
        """Start the process and wait for its one JSON line."""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"The emulator did not start: {err.strip()}")
        self.info = json.loads(line)
        self._session.verify = self.info["ca_bundle"]
        # Every admin endpoint needs the token only this process was told.
        self._session.headers["Authorization"] = f"Bearer {self.info['admin_token']}"
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 10 s."""
        self._session.close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process.communicate()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin endpoints ---------------------------------------------------------------------------
    def _admin(self, action: str, body: Any = None) -> Any:
        url = f"{self.info['admin_url']}/{action}"
        if body is None and action in {"stats", "info", "handshakes"}:
            response = self._session.get(url, timeout=30, verify=self.info["ca_bundle"])
        else:
            response = self._session.post(url, json=body or {}, timeout=30, verify=self.info["ca_bundle"])
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        """The emulator's counters (requests, token grants, faults, pages served)."""
        result: dict[str, Any] = self._admin("stats")
        return result

    def reset_stats(self) -> None:
        """Zero the counters."""
        self._admin("reset_stats")

    def handshakes(self) -> int:
        """
        TLS handshakes of clients since :meth:`reset_stats`.

        The admin session is closed first, so the request asking is always one new connection of
        its own (counted by the emulator, taken off here): idle admin connections time out, and
        otherwise the count would depend on how long the run took.
        """
        self._session.close()
        return int(self._admin("handshakes")["handshakes"]) - 1

    def use_server(self, server: str) -> None:
        """Serve as :data:`SERVERS` ``server``: keep connections alive, or close each after its response."""
        self.configure(close_connections=SERVERS[server])

    def configure(self, **settings: Any) -> None:
        """Change emulator switches (latency, faults, token lifetime, ...)."""
        self._admin("configure", settings)

    def expire_access_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self._admin("expire_access_tokens")

    def referrals(self) -> list[dict[str, Any]]:
        """Every referral the emulator holds (its current state)."""
        response = self._session.get(
            f"{self.info['admin_url']}/referrals", timeout=120, verify=self.info["ca_bundle"]
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def env(self) -> dict[str, str]:
        """Environment of a client process: the Airflow connection and the CA to trust."""
        return {
            **os.environ,
            "AIRFLOW_CONN_PARTNER_CENTER_DEFAULT": self.info["airflow_conn"],
            "REQUESTS_CA_BUNDLE": self.info["ca_bundle"],
            "SSL_CERT_FILE": self.info["ca_bundle"],
            "BENCH_EMULATOR_INFO": json.dumps(self.info),
        }
