"""Forecasting models behind one interface (``base.Forecaster``)."""
