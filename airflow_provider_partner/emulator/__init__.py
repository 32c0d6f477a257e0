"""A local emulator of the Partner Center Referrals API and of Entra ID (never imported by the provider)."""
