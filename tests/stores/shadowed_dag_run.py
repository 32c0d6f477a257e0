"""Run the ``shadowed_token_cache`` DAG once with ``dag.test()`` in this process; print its state.

A process of its own, because a task process reads ``[secrets] backend`` once: the test sets it
(``AIRFLOW__SECRETS__BACKEND`` and friends) in this process's environment only.
Usage: ``python shadowed_dag_run.py <DAG file>``; the last line of stdout is ``STATE <state>``.
"""

from __future__ import annotations

import sys

from dag_loading import load_dag


def main() -> int:
    run = load_dag("shadowed_token_cache", sys.argv[1]).test()
    sys.stdout.write(f"STATE {run.state}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
