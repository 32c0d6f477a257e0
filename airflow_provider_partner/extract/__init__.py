"""
The extraction engine: reading the referrals of a window, below the Airflow operators.

- :mod:`~airflow_provider_partner.extract.window`: the run's window (shared by operator and sensor);
- :mod:`~airflow_provider_partner.extract.slices`: the plan (``$filter``, order, slices);
- :mod:`~airflow_provider_partner.extract.fetch`: paging one or more slices concurrently;
- :mod:`~airflow_provider_partner.extract.spool`: each referral once, on local disk;
- :mod:`~airflow_provider_partner.extract.writers` and :mod:`~airflow_provider_partner.extract.parquet`:
  output formats, published atomically;
- :mod:`~airflow_provider_partner.extract.engine`: :class:`Extraction`, the one entry point;
- :mod:`~airflow_provider_partner.extract.new_referrals`: the cheap check behind the sensor and
  the triggers.

Nothing is imported here: DAG files import the operator at parse time.
"""
