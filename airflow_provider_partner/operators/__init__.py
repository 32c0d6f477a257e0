"""Operators of the Microsoft Partner Center provider."""
