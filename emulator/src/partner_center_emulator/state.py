"""
``--state-dir``: what an emulator restart needs, kept in a directory.

- ``info.json``: the current ``Emulator.info`` (written at every start).
- ``ca.pem`` / ``ca-key.pem``: the CA, so a client's ``ca_bundle`` stays valid across restarts.
- ``state.json``: seed, data size, period, the clock's start, the app secret and passwords.
- ``refresh_tokens.json``: every refresh token and whether it was revoked (rewritten on change).
- ``journal.jsonl``: every referral written after generation (updates, creations, arrivals,
  expiries), replayed over the regenerated data at start.

The referrals themselves are never dumped: the same seed and clock start regenerate them.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme

from partner_center_emulator.clock import format_ticks, parse_to_ticks

if TYPE_CHECKING:
    from partner_center_emulator.identity import Identity
    from partner_center_emulator.server import Emulator
    from partner_center_emulator.store import ReferralStore


def _write_atomic(path: Path, text: str) -> None:
    # Never leave a half-written file: write beside it, then rename over it.
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


class StateDir:
    """
    The emulator's state directory.

    :param path: the directory (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._saved = self._read("state.json")

    def _read(self, name: str) -> Any:
        file = self.path / name
        if not file.exists():
            return None
        return json.loads(file.read_text(encoding="utf-8"))

    def load_ca(self) -> trustme.CA | None:
        """The saved CA, if any."""
        cert, key = self.path / "ca.pem", self.path / "ca-key.pem"
        if cert.exists() and key.exists():
            return trustme.CA.from_pem(cert.read_bytes(), key.read_bytes())
        return None

    def save_ca(self, ca: trustme.CA) -> Path:
        """Write the CA (certificate and key); return the certificate's path."""
        cert = self.path / "ca.pem"
        if not cert.exists():
            _write_atomic(self.path / "ca-key.pem", ca.private_key_pem.bytes().decode())
            _write_atomic(cert, ca.cert_pem.bytes().decode())
        return cert

    def restore_identity(self, identity: Identity) -> None:
        """Reuse the saved secrets and refresh tokens."""
        saved = self._saved
        if saved:
            identity.client_secret = saved["client_secret"]
            for key, password in saved["passwords"].items():
                identity.users[key].password = password
        tokens = self._read("refresh_tokens.json")
        if tokens:
            identity.restore_refresh_tokens(tokens)

    def generation_now(self) -> int | None:
        """The "now" the first run generated its data at (so regenerating gives the same data)."""
        if self._saved and self._saved.get("now"):
            return parse_to_ticks(self._saved["now"])
        return None

    def check(self, seed: int, referrals: int, period_days: float) -> None:
        """Refuse a state dir written for other data."""
        saved = self._saved
        if saved and (saved["seed"], saved["referrals"], saved["period_days"]) != (
            seed,
            referrals,
            period_days,
        ):
            raise ValueError(
                f"State dir {self.path} holds an emulator with seed={saved['seed']}, "
                f"referrals={saved['referrals']}, period_days={saved['period_days']}; start with those "
                "options or use another --state-dir."
            )

    def replay(self, store: ReferralStore) -> int:
        """Apply the journal to freshly generated referrals; return how many records it held."""
        journal = self.path / "journal.jsonl"
        if not journal.exists():
            return 0
        count = 0
        with open(journal, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    store.put(record)
                    store.clock.advance_past(parse_to_ticks(record["updatedDateTime"]))
                    count += 1
        return count

    def record_write(self, record: dict[str, Any]) -> None:
        """Append one written referral to the journal."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock, open(self.path / "journal.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def save_tokens(self, identity: Identity) -> None:
        """Rewrite the refresh-token table."""
        with self._lock:
            _write_atomic(self.path / "refresh_tokens.json", json.dumps(identity.refresh_tokens()))

    def save(self, emulator: Emulator) -> None:
        """Write ``state.json`` (first start only) and ``info.json`` (every start)."""
        if not self._saved:
            self._saved = {
                "seed": emulator.seed,
                "referrals": emulator.referral_count,
                "period_days": emulator.period_days,
                "now": format_ticks(emulator.generated_at),
                "client_secret": emulator.identity.client_secret,
                "passwords": {k: u.password for k, u in emulator.identity.users.items()},
            }
            _write_atomic(self.path / "state.json", json.dumps(self._saved, indent=2))
        _write_atomic(self.path / "info.json", json.dumps(emulator.info, indent=2))
        self.save_tokens(emulator.identity)
