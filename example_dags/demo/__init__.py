"""
The parts of ``make demo`` (``example_dags/run_demo.py``); not DAGs, not the provider.

``deployment`` runs Airflow's processes, ``emulator`` the emulator's, ``scenario`` drives the
DAGs through Airflow's REST API, ``ui`` stores the connections and checks what the UI shows (the
Test button, the pages, the log view) and ``summary`` reports what they did (the soak of
``benchmarks/soak/`` reuses ``deployment``).

It lives in a sub-folder so that whatever copies or links ``example_dags/*.py`` into a dags
folder (the test suites do) never picks it up, and ``example_dags/.airflowignore`` keeps it out
of a DAG bag built from ``example_dags/`` itself.
"""
