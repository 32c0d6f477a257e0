"""A broken token answer (cut off, or nested past any decoder) is a named error that shows no token."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_partner.errors import AuthFailure, PartnerCenterAuthError
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# Transport and tokens, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

CUT_ACCESS = "emu-at-cut-" + "A" * 40
CUT_REFRESH = "emu-rt-cut-" + "B" * 40


@pytest.fixture
def authority_conn(hostile: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A connection whose Entra ID is the hostile server (no token cache, a bootstrap token)."""
    conn = {
        "conn_type": "partner_center",
        "host": hostile.url,
        "login": "00000000-0000-0000-0000-000000000001",
        "extra": {
            "tenant_id": "contoso.example",
            "authority_host": hostile.url,
            "refresh_token": "bootstrap-refresh-token-for-the-hostile-test",
            "ca_bundle": str(hostile.ca_pem),
            "timeout": 3,
            "max_retries": 1,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", json.dumps(conn))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    hostile.configure(cut_access_token=CUT_ACCESS, cut_refresh_token=CUT_REFRESH)
    return conn


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        (
            "token_cut",
            "is not JSON (JSONDecodeError: Unterminated string starting at: line 1 column 134 "
            "(char 133); probably cut off)",
        ),
        ("token_deep", "is nested deeper than a decoder can follow"),
    ],
)
def test_a_broken_token_answer_is_named_and_shows_no_token(
    hostile: Any, authority_conn: dict[str, Any], caplog: pytest.LogCaptureFixture, mode: str, why: str
) -> None:
    hostile.configure(mode=mode)
    hook = PartnerCenterHook()
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(PartnerCenterAuthError) as raised:
        hook.tokens.get_token()
    elapsed = time.monotonic() - started
    assert str(raised.value) == (
        f"The authority {hostile.url}/contoso.example answered the token request of connection "
        f"'partner_center_default' with a body that {why}; Entra ID never answers so. A proxy or "
        "server on the way is misbehaving: check extras authority_host and proxies, then run the "
        "task again. The body is not shown: it may hold tokens."
    )
    assert raised.value.kind is AuthFailure.OTHER
    assert elapsed < 20
    # Discovery, then the one token request.
    assert [path.split("?")[0] for path in hostile.requests] == [
        "/contoso.example/v2.0/.well-known/openid-configuration",
        "/contoso.example/oauth2/v2.0/token",
    ]
    if mode == "token_cut":
        # MSAL logs its error line; the body (with the new tokens) is withheld from it.
        assert "Token response is not in json format (body withheld: it may hold tokens)" in caplog.text
    assert CUT_ACCESS[:20] not in caplog.text
    assert CUT_REFRESH[:20] not in caplog.text
