"""The soak's log scan (benchmarks/soak/scan.py) finds a token however it shows in a log."""

from __future__ import annotations

import secrets
from pathlib import Path

from benchmarks.soak.scan import scan_for_tokens


def _jwt_like() -> str:
    # Every token of this shape begins alike: only its end tells it apart.
    return "emu-at-eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(300)


def test_the_scan_finds_whole_cut_and_joined_tokens_in_logs_only(tmp_path: Path) -> None:
    whole, cut, joined, stored = _jwt_like(), _jwt_like(), _jwt_like(), _jwt_like()
    logs = tmp_path / "airflow" / "logs" / "dag_id=x"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text(f"a line\nAuthorization: Bearer {whole}\n")
    (tmp_path / "triggerer.log").write_text(f"body ... {cut[200:]}\nx{joined}y\n")
    (tmp_path / "soak_0.json").write_text(f'{{"secret": "{stored}"}}')  # a credential store
    issued = {"access_tokens": [whole, cut, joined, stored, _jwt_like()], "refresh_tokens": []}
    result = scan_for_tokens(tmp_path, issued)
    assert sorted(result["found"]) == [
        ("airflow/logs/dag_id=x/attempt=1.log", "access_tokens"),
        ("triggerer.log", "access_tokens"),
        ("triggerer.log", "access_tokens"),
    ]
    assert (result["files"], result["lines"], result["tokens"]) == (2, 4, 5)


def test_a_clean_log_has_no_find(tmp_path: Path) -> None:
    (tmp_path / "x.log").write_text("Authorization: Bearer ***\n" + "A" * 500 + "\n")
    assert scan_for_tokens(tmp_path, {"access_tokens": [_jwt_like()]})["found"] == []
