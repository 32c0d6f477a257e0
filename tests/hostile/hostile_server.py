"""
A hostile API on 127.0.0.1 (TLS with its own throwaway CA): crafted answers, bounded loops.

Each request's behaviour comes from ``HostileServer.mode`` (set by the test). Every loop the
server runs is bounded in count and time, and stops when the client goes away, so a test that
fails never leaves a thread busy.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import trustme

REFERRAL = {"id": "r-1", "updatedDateTime": "2026-11-01T10:00:00.0000000Z", "name": "x" * 200}
_MB = 1_000_000
_SECONDS_MAX = 30.0


def gzip_bomb(inflated_mb: int) -> bytes:
    """A gzip body (a few hundred kB) that inflates to ``inflated_mb`` MB of a JSON-looking page."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    parts = [compressor.compress(b'{"value": [], "pad": "')]
    block = b" " * _MB
    parts.extend(compressor.compress(block) for _ in range(inflated_mb))
    parts.append(compressor.compress(b'"}'))
    parts.append(compressor.flush())
    return b"".join(parts)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the test asserts what it needs

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        getattr(self, f"_mode_{self.server.mode}")()

    def do_POST(self) -> None:
        # Writes get the same crafted answers, once their body is read.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_PATCH(self) -> None:
        self.do_POST()

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _mode_big(self) -> None:
        # 100 MB of a page, streamed: the server holds one MB at a time.
        size = 100 * _MB
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self._send_padding(b'{"value": [], "pad": "', size)

    def _mode_big_chunked(self) -> None:
        # The same without Content-Length (chunked): the cap must hold while reading.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b" " * _MB
        try:
            for _ in range(100):
                self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            return  # the client stopped reading: good

    def _send_padding(self, head: bytes, size: int) -> None:
        try:
            self.wfile.write(head)
            sent = len(head)
            block = b" " * _MB
            while sent + len(block) < size - 2:
                self.wfile.write(block)
                sent += len(block)
            self.wfile.write(b" " * (size - 2 - sent) + b'"}')
        except OSError:
            return

    def _mode_bomb(self) -> None:
        body = self.server.bomb
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            return

    def _mode_trickle(self) -> None:
        # Headers at once, then the body one byte at a time: every socket read succeeds.
        self._trickle_page(keep_alive=True)

    def _mode_trickle_close(self) -> None:
        # The same with Connection: close, where http.client hands the socket to the response.
        self._trickle_page(keep_alive=False)

    def _trickle_page(self, *, keep_alive: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        if not keep_alive:
            self.send_header("Connection", "close")
        self.end_headers()
        self._trickle(b'{"value": [' + b" " * 99_990)

    def _mode_trickle_headers(self) -> None:
        self._trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 10_000)

    def _trickle(self, data: bytes) -> None:
        started = time.monotonic()
        for byte in data:
            if time.monotonic() - started > _SECONDS_MAX:
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client hung up
            time.sleep(self.server.trickle_interval)

    def _mode_fresh_skiptoken(self) -> None:
        self.server.pages += 1
        value = [REFERRAL] if self.server.repeat_records else []
        link = f"{self.server.url}/v1.0/engagements/referrals?$skiptoken=t{self.server.pages}"
        self._json({"value": value, "@odata.nextLink": link})

    def _mode_next_link(self) -> None:
        self._json({"value": [REFERRAL], "@odata.nextLink": self.server.next_link})

    def _mode_deep(self) -> None:
        depth = 100_000
        data = b'{"value": [], "x": ' + b"[" * depth + b"]" * depth + b"}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authority(self, token_body: bytes) -> None:
        # An Entra ID look-alike whose discovery answers well and whose token answer is broken.
        if self.path.endswith("/.well-known/openid-configuration"):
            base = f"{self.server.url}/{self.path.strip('/').split('/')[0]}"
            self._json(
                {
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                }
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(token_body)))
        self.end_headers()
        self.wfile.write(token_body)

    def _mode_token_cut(self) -> None:
        # A token answer cut off by a proxy: the new tokens are in what did arrive.
        self._authority(
            b'{"token_type": "Bearer", "expires_in": 3599, "access_token": "'
            + self.server.cut_access_token.encode()
            + b'", "refresh_token": "'
            + self.server.cut_refresh_token.encode()
        )

    def _mode_token_deep(self) -> None:
        depth = 100_000
        self._authority(b'{"access_token": ' + b"[" * depth + b"]" * depth + b"}")

    def _mode_echo(self) -> None:
        # A broken proxy answering 400 with the request it received, headers included.
        echoed = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
        data = f"Bad request. You sent:\n{echoed}".encode()
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    mode = "big"
    url = ""
    next_link = ""
    repeat_records = False
    trickle_interval = 0.2
    bomb = b""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[str] = []
        self.authorizations: list[str] = []
        self.pages = 0


class HostileServer:
    """The server, its CA file, and what it was asked (``requests``, ``authorizations``)."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_pem = directory / "hostile-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        host, port = self._server.server_address[:2]
        self.url = self._server.url = f"https://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def configure(self, **settings: Any) -> None:
        """Set ``mode``, ``next_link``, ``repeat_records``, ``trickle_interval``, ``bomb``."""
        for name, value in settings.items():
            setattr(self._server, name, value)

    def start(self) -> HostileServer:
        self._thread.start()
        # Ready when it accepts a TCP connection (the socket listens before serve_forever runs).
        with socket.create_connection(self._server.server_address[:2], timeout=5):
            pass
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
