"""Hooks of the Microsoft Partner Center provider."""
