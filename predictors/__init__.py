"""Foresight predictors (filled in by later capabilities)."""
