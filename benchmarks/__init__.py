"""
Benchmarks of the provider against the floor and its peers (``make bench``; see docs/performance.md).

Not a test suite: pytest only collects ``tests/``. Runs in its own environment (``.venv-bench``) so
the peers (``apache-airflow-providers-http``, ``dlt``) never become dependencies of the provider.
"""
