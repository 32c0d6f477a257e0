"""Measure the emulator on this machine: start-up time and pages served per second.

Run: ``.venv/bin/python emulator/tests/measure.py [--referrals 200000] [--pages 300]``.
Prints one JSON object. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import json
import time

import requests

from partner_center_emulator import Emulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    started = time.perf_counter()
    with Emulator(referrals=args.referrals, seed=7) as emu:
        startup = time.perf_counter() - started
        info = emu.info
        token = requests.post(
            info["authority"] + "/oauth2/v2.0/token",
            data={"grant_type": "refresh_token", "client_id": info["client_id"],
                  "client_secret": info["client_secret"], "refresh_token": info["refresh_token"],
                  "scope": "https://api.partner.microsoft.com/.default"},
            verify=info["ca_bundle"], timeout=30,
        ).json()["access_token"]  # fmt: skip
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}

        def page_through(params: dict[str, str]) -> tuple[float, float, int]:
            t = time.perf_counter()
            response = session.get(
                info["referrals_url"], params=params, headers=headers, verify=info["ca_bundle"]
            )
            first = time.perf_counter() - t
            body = response.json()
            served = 1
            while "@odata.nextLink" in body and served < args.pages:
                body = session.get(body["@odata.nextLink"], headers=headers, verify=info["ca_bundle"]).json()
                served += 1
            return first, served / (time.perf_counter() - t), served

        def probe_seconds(where: str) -> float:
            """A count probe (as balanced slices send): the best of 5, one request each."""
            params = {"$filter": where, "$top": "1", "$select": "id", "$count": "true"}
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                session.get(info["referrals_url"], params=params, headers=headers, verify=info["ca_bundle"])
                best = min(best, time.perf_counter() - t)
            return best

        full_first, full_rate, full_pages = page_through({"$orderby": "updatedDateTime desc"})
        ids_first, ids_rate, ids_pages = page_through({"$select": "id", "$filter": "direction eq 'Incoming'"})
        # The same half of the data: served from the createdDateTime order, then by a scan
        # (an "or" term keeps the index out).
        half = (
            "createdDateTime ge 2026-01-01T00:00:00Z and createdDateTime lt "
            + emu.referrals()[args.referrals // 2]["createdDateTime"]
        )
        indexed = probe_seconds(half)
        scanned = probe_seconds(f"({half}) or id eq 'none'")
    print(json.dumps({
        "referrals": args.referrals,
        "startup_s": round(startup, 2),
        "full_records": {"first_page_s": round(full_first, 3), "pages_per_s": round(full_rate, 1),
                         "pages": full_pages, "page_size": 100},
        "select_id_filtered": {"first_page_s": round(ids_first, 3), "pages_per_s": round(ids_rate, 1),
                               "pages": ids_pages, "page_size": 100},
        "count_probe_half_s": {"created_range": round(indexed, 4), "scan": round(scanned, 4)},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
