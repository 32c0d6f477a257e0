"""
A worker process of the token coordination test: k threads, each a "task" with its own hook.

Protocol (no sleeps, no polling): the test writes ``go`` on stdin to start a round; the worker
starts its threads together (a barrier), each reads one page, and it answers one line
``RESULT {"ok": n, "failures": [...], "token_requests": n}`` on stdout. ``quit`` ends it.
"""

from __future__ import annotations

import json
import sys
import threading

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook


def run_round(conn_id: str, threads: int) -> dict[str, object]:
    barrier = threading.Barrier(threads)
    failures: list[str] = []
    ok: list[int] = []
    requests: list[int] = []
    lock = threading.Lock()

    def task() -> None:
        hook = PartnerCenterHook(conn_id)
        barrier.wait(timeout=60)
        try:
            records = len(next(iter(hook.iter_pages(top=2))).records)
        except Exception as err:  # noqa: BLE001 - every failure is reported to the test
            with lock:
                failures.append(f"{type(err).__name__}: {err}")
            return
        with lock:
            ok.append(records)
            requests.append(hook.tokens.token_requests)

    workers = [threading.Thread(target=task) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return {"ok": len(ok), "failures": failures, "token_requests": sum(requests)}


def main() -> int:
    conn_id, threads = sys.argv[1], int(sys.argv[2])
    for line in sys.stdin:
        if line.strip() != "go":
            return 0
        sys.stdout.write("RESULT " + json.dumps(run_round(conn_id, threads)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
