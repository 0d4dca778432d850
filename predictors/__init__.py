"""Foresight forecasting: models behind one interface, calibration, model
selection, backtests on real traffic, and the prediction gRPC service."""
