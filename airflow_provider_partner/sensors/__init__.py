"""Sensors of the Microsoft Partner Center provider."""
