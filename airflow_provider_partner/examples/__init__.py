"""
Helpers of the example DAGs, shipped with the provider so the DAGs run from any dags folder.

- :mod:`airflow_provider_partner.examples.warehouse`: upsert JSONL referral files into a small
  SQLite warehouse (table ``referrals``), idempotently.
- :mod:`airflow_provider_partner.examples.followup`: accept an incoming referral with
  ``If-Match`` (a 412 is re-read and retried once) and record outcomes (table
  ``referral_followups``).

They sit above the hook and operators and import only from them (never from ``example_dags``).
"""
