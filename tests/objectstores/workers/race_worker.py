"""
A worker process of the credential-store race: reads Partner Center for a while, counting failures.

It says ``READY`` once imported and waits for ``go`` on stdin (so all workers start together),
then reads one page (``$top=2``) after another through a new hook each time, as back-to-back
tasks do, until ``seconds`` have passed; it answers one line
``RESULT {"reads": n, "failures": [...], "leases": {...}}`` (``leases``: reads after a refresh
under each guarantee of the store's lease).
"""

from __future__ import annotations

import collections
import json
import sys
import time

from airflow_provider_partner.hooks.partner_center import PartnerCenterHook


def main() -> int:
    conn_id, seconds = sys.argv[1], float(sys.argv[2])
    hook = PartnerCenterHook(conn_id)
    # Read the connection and the store once (no lease, no token): the imports of the store's
    # client (boto3, azure, google) are not left to the timed reads.
    assert hook.tokens.store is not None
    hook.tokens.store.load()
    # Airflow's masker imports the Task SDK's models on its first secret (seconds of CPU each,
    # eight processes at once on two cores): that too happens before the timed reads.
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    sys.stdout.write("READY\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 1
    reads, failures, slowest = 0, [], 0.0
    leases: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hook = PartnerCenterHook(conn_id)
        began = time.monotonic()
        try:
            next(iter(hook.iter_pages(top=2)))
        except Exception as err:  # noqa: BLE001 - every failure is reported to the test
            failures.append(f"{type(err).__name__}: {err}")
        else:
            reads += 1
        slowest = max(slowest, time.monotonic() - began)
        if hook.tokens.last_lease is not None:  # the guarantee of this process's latest refresh
            leases[hook.tokens.last_lease.value] += 1
    sys.stdout.write(
        "RESULT "
        + json.dumps({"reads": reads, "failures": failures, "leases": leases, "slowest": slowest})
        + "\n"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
