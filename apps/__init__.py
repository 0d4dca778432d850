"""Foresight apps (filled in by later capabilities)."""
