"""HTTP/1.1 keep-alive (one TLS handshake per client connection), a fast stop, abandoned requests."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

REFERRALS = "/v1.0/engagements/referrals"


def test_one_session_makes_many_requests_over_one_tls_connection(emu, api) -> None:
    emu.reset_stats()
    referral = emu.referrals()[3]
    for _ in range(25):
        assert api.list(top="2", select="id").status_code == 200
    assert api.get(f"{REFERRALS}/{referral['id']}").status_code == 200
    patched = api.request(
        "PATCH",
        f"{REFERRALS}/{referral['id']}",
        json=[{"op": "replace", "path": "/details/notes", "value": "kept alive"}],
    )
    assert patched.status_code == 204
    # An error answer keeps the connection too.
    assert api.get(f"{REFERRALS}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert emu.stats()["requests"] == {"list": 25, "get": 2, "update": 1}
    assert emu.handshakes() == 1
    assert "close" not in api.list(top="1").headers.get("Connection", "").lower()


def test_clients_without_a_session_pay_one_handshake_per_request(emu, api) -> None:
    emu.reset_stats()
    for _ in range(3):
        response = requests.get(
            emu.info["referrals_url"],
            params={"$top": "1"},
            headers={"Authorization": f"Bearer {api.token}"},
            verify=emu.info["ca_bundle"],
            timeout=10,
        )
        assert response.status_code == 200
    assert emu.handshakes() == 3


def test_stop_is_fast_and_closes_idle_keep_alive_connections(emulator_factory, make_api, tmp_path) -> None:
    emu = emulator_factory(referrals=50, seed=7)
    api = make_api(emu)
    assert api.list(top="1").status_code == 200
    # stop() removes the throwaway CA file; the request after it still needs one to try.
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(emu.info["ca_bundle"]).read_bytes())
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(requests.ConnectionError):
        api.session.get(emu.info["referrals_url"], verify=str(ca), timeout=5)


def test_stop_does_not_wait_out_a_slow_page(emulator_factory, make_api) -> None:
    emu = emulator_factory(referrals=50, seed=7, latency_per_page=30)
    api = make_api(emu)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(
            emu.info["referrals_url"],
            headers={"Authorization": f"Bearer {api.token}", "Connection": "keep-alive"},
            verify=emu.info["ca_bundle"],
            timeout=0.3,
        )
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 1.5


def test_a_request_whose_client_left_is_abandoned(emulator_factory, make_api) -> None:
    emu = emulator_factory(referrals=50, seed=7, latency_per_page=30)
    api = make_api(emu)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        api.session.get(
            emu.info["referrals_url"],
            headers={"Authorization": f"Bearer {api.token}"},
            verify=emu.info["ca_bundle"],
            timeout=0.3,
        )
    # requests drops a connection that timed out: the emulator sees the FIN and stops waiting.
    api.session.close()
    assert emu.wait_for_abandoned(1, timeout=5)
    assert emu.abandoned() == 1
    assert time.monotonic() - started < 5
    assert emu.stats()["pages_served"] == 0


def _raw_get(emu, path: str, token: str) -> bytes:
    """One HTTP/1.1 request on a raw TLS socket; everything the server sends until it closes."""
    context = ssl.create_default_context(cafile=emu.info["ca_bundle"])
    host, port = emu.info["api_url"].removeprefix("https://").rsplit(":", 1)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    received = b""
    with (
        socket.create_connection((host, int(port)), timeout=10) as tcp,
        context.wrap_socket(tcp, server_hostname=host) as tls,
    ):
        tls.sendall(request.encode())
        # A keep-alive server would leave this read waiting (until the 10 s timeout raises).
        while chunk := tls.recv(65536):
            received += chunk
    return received


def test_close_connections_closes_every_connection_after_its_response(emulator_factory, make_api) -> None:
    emu = emulator_factory(referrals=50, seed=7, close_connections=True)
    api = make_api(emu)
    emu.reset_stats()
    for _ in range(4):
        response = api.list(top="2", select="id")
        assert response.status_code == 200
        assert response.headers["Connection"] == "close"
    # Errors close theirs too.
    assert api.get(f"{REFERRALS}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert emu.handshakes() == 5
    # The server itself closes the connection: the raw read ends with the response.
    raw = _raw_get(emu, f"{REFERRALS}?$top=1", api.token)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in raw
    assert raw.endswith(b"}")

    emu.configure(close_connections=False)
    emu.reset_stats()
    for _ in range(3):
        assert "close" not in api.list(top="1").headers.get("Connection", "").lower()
    assert emu.handshakes() == 1


def test_slow_pages_are_served_concurrently(emulator_factory, make_api) -> None:
    # Eight slices of a parallel extraction each wait for their page at the same time.
    emu = emulator_factory(referrals=50, seed=7, latency_per_page=1.0)
    api = make_api(emu)
    barrier = threading.Barrier(8)

    def one_page(_: int) -> int:
        session = requests.Session()
        barrier.wait(timeout=10)
        with session:
            return session.get(
                emu.info["referrals_url"],
                headers={"Authorization": f"Bearer {api.token}"},
                verify=emu.info["ca_bundle"],
                timeout=30,
            ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one_page, range(8))) == [200] * 8
    # One after another they would take 8 s; together, about one latency.
    assert time.monotonic() - started < 4.0
    assert emu.stats()["pages_served"] == 8
