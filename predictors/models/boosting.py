"""Gradient boosting on lag and calendar features: one global model per horizon.

Direct strategy: for every fitted horizon ``h`` a single
``HistGradientBoostingRegressor`` is trained on rows ``(origin, series)`` pooled
across all series, predicting ``values[o + h] / scale`` where ``scale`` is a robust
per-series level computed from history only (the mean of the last day up to the
origin, floored). Rows are drawn with probability proportional to ``scale`` and the loss is absolute
error, so the fitted objective is the MAE in Mbit/s that backtests report.

The features and the row sampling are ``predictors.models.features`` (shared with
the random forest).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from predictors.models.base import Forecaster, ModelError, check_origins
from predictors.models.features import features, training_rows
from predictors.panel import Panel

log = logging.getLogger(__name__)


class BoostingForecaster(Forecaster):
    """One ``HistGradientBoostingRegressor`` per horizon over all series (direct strategy)."""

    name = "boosting"
    learned = True

    def __init__(self, max_rows: int = 200_000, max_iter: int = 300, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 31, min_history_days: float = 1.0, seed: int = 0):
        super().__init__()
        self.max_rows, self.max_iter, self.learning_rate = max_rows, max_iter, learning_rate
        self.max_leaf_nodes, self.min_history_days, self.seed = max_leaf_nodes, min_history_days, seed
        self.models: dict[int, HistGradientBoostingRegressor] = {}

    def min_history(self, panel: Panel) -> int:
        return 1

    def fit(self, panel: Panel, horizons: Sequence[int]) -> "BoostingForecaster":
        super().fit(panel, horizons)
        rng = np.random.default_rng(self.seed)
        self.models = {}
        for h in self.fitted_horizons:
            X, y = training_rows(panel, h, self.min_history_days, self.max_rows, rng)
            model = HistGradientBoostingRegressor(
                loss="absolute_error", learning_rate=self.learning_rate, max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=50, l2_regularization=1.0,
                early_stopping=False, random_state=self.seed)
            X[:, np.isnan(X).all(axis=0)] = 0.0       # sklearn cannot bin an all-missing column
            model.fit(X, y)
            self.models[h] = model
            log.info("boosting: horizon %d fitted on %d rows", h, len(y))
        self.fit_info["rows_per_horizon"] = min(self.max_rows, len(panel) * panel.n_series)
        return self

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        model = self.models.get(int(horizon))
        if model is None:
            raise ModelError(f"boosting was not fitted for horizon {horizon}; fitted: {self.fitted_horizons}")
        if origins.size == 0:
            return np.zeros((0, panel.n_series))
        X, scale, _ = features(panel, origins, horizon)
        pred = model.predict(X).reshape(len(origins), panel.n_series) * scale
        return np.maximum(pred, 0.0)
