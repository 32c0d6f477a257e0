"""
A local emulator of the Partner Center Referrals API and of Entra ID (never imports the provider).

``from partner_center_emulator import Emulator``; see ``docs/emulator.md``.
"""

from __future__ import annotations

from partner_center_emulator.server import Emulator

__version__ = "0.1.0"

__all__ = ["Emulator", "__version__"]
