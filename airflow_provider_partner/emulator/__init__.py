"""
A local emulator of the Partner Center Referrals API and of Entra ID (never imported by the provider).

``from airflow_provider_partner.emulator import Emulator``; see ``docs/emulator.md``.
"""

from __future__ import annotations

from airflow_provider_partner.emulator.server import Emulator

__all__ = ["Emulator"]
