"""Pytest fixtures that run the emulator in-process (placeholder until the emulator lands)."""
