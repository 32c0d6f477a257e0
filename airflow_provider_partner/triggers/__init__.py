"""Triggers of the Microsoft Partner Center provider."""
