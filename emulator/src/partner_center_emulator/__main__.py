"""
Command line: ``python -m partner_center_emulator --port 0 --referrals N --seed S``.

Prints ``Emulator.info`` as ONE JSON line on stdout once it serves (``admin_token`` included: the
admin endpoints' bearer token, known only to whoever reads that line), then runs until SIGINT or
SIGTERM, and stops cleanly (removing its throwaway CA file unless ``--state-dir`` keeps it).
Warnings (e.g. a non-loopback ``--host``) go to stderr. Also installed as ``partner-center-emulator``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from types import FrameType

from partner_center_emulator.clock import TICKS_PER_SECOND, parse_to_ticks


def _parse_now(text: str) -> datetime:
    try:
        ticks = parse_to_ticks(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return datetime.fromtimestamp(ticks / TICKS_PER_SECOND, tz=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's options."""
    parser = argparse.ArgumentParser(
        prog="python -m partner_center_emulator",
        description="Run the local Partner Center Referrals API + Entra ID emulator over https.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--referrals", type=int, default=2000, help="referrals to generate (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--period-days", type=float, default=60, help="days the data spans (default 60)")
    parser.add_argument("--page-size", type=int, default=100, help="largest page served (default 100)")
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime, s (default 3600)")
    parser.add_argument(
        "--access-token-bytes",
        type=int,
        default=0,
        metavar="N",
        help="every access token exactly N characters (>= 50; JWT-shaped when long enough, as "
        "Entra's ~1.5 KB ones); default 0: 50-character opaque tokens",
    )
    parser.add_argument(
        "--revoke-used-refresh-tokens",
        action="store_true",
        help="enforce rotation: a refresh token works once, then invalid_grant (AADSTS50173)",
    )
    parser.add_argument(
        "--now", type=_parse_now, default=None, help="fixed start time, e.g. 2026-11-01T00:00:00Z"
    )
    parser.add_argument(
        "--state-dir", default=None, help="keep CA, secrets, tokens and writes across restarts"
    )
    parser.add_argument(
        "--arrivals-per-second",
        type=float,
        default=0.0,
        help="live incoming referrals per second (default 0)",
    )
    parser.add_argument(
        "--close-connections",
        action="store_true",
        help="close the connection after every response (one TLS handshake per request)",
    )
    parser.add_argument(
        "--latency-per-page", type=float, default=0.0, help="seconds added to every list page (default 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM."""
    args = build_parser().parse_args(argv)
    # stdout carries only the JSON line; everything logged goes to stderr.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="partner-center-emulator: %(levelname)s: %(message)s"
    )
    from partner_center_emulator import Emulator

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emulator = Emulator(
            referrals=args.referrals,
            seed=args.seed,
            period_days=args.period_days,
            page_size=args.page_size,
            token_ttl=args.token_ttl,
            access_token_bytes=args.access_token_bytes,
            revoke_used_refresh_tokens=args.revoke_used_refresh_tokens,
            host=args.host,
            port=args.port,
            now=args.now,
            state_dir=args.state_dir,
            arrivals_per_second=args.arrivals_per_second,
            close_connections=args.close_connections,
            latency_per_page=args.latency_per_page,
        ).start()
    except (OSError, ValueError) as err:
        print(f"error: could not start the emulator: {err}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(json.dumps(emulator.info) + "\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        emulator.stop()
    return 0


def run() -> None:
    """The ``partner-center-emulator`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
