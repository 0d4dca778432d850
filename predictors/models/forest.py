"""Quantile regression forest on lag and calendar features: one global forest per horizon.

Same framing as ``boosting``: direct strategy, one ``RandomForestRegressor`` per
fitted horizon over rows ``(origin, series)`` pooled across series, predicting
``values[o + h] / scale``, with the features and the scale-weighted row sampling
of ``predictors.models.features``.

Quantiles come from the forest as a quantile regression forest (Meinshausen,
JMLR 2006): a tree's leaf holds the training targets that fell into it, and the
forest's conditional distribution at ``x`` is the mixture of the leaves ``x``
reaches. After fitting, every leaf of every tree stores the empirical quantiles of
its training targets (all fitted rows, in-bag or not, as Meinshausen does) at the
model's ``quantiles``; a forecast averages the leaf quantiles of its leaves over
the trees. That is quantile averaging, a cheaper variant of Meinshausen's estimator
(which pools the leaves' targets, weighted, and takes one quantile of the pool): it
keeps the quantiles ordered, stores Q numbers per leaf instead of every target, and
costs one gather per tree. The spread of per-tree *means* would be the wrong thing: it measures how
unsure the forest is of the mean, not how much traffic varies around it.

The point forecast is the 0.5 quantile, not the forest's mean: backtests score
MAE, which the conditional median minimises (boosting fits absolute error for the
same reason), and normalised traffic has a long upper tail that drags a mean up.
As with every model, the service's intervals come from ``predictors.calibration``;
``predict_quantiles`` is the forest's own view, like the recurrent model's.

Cost: the machines have two cores. 32 trees of at most 14 levels and at least 40
rows per leaf, each grown on a bootstrap sample of half of at most 60,000 rows per
horizon, each split looking at a third of the features (Breiman's choice for
regression). On Abilene's days 1-8 that fits in ~30 s (boosting: ~38 s), pickles to
~9 MB, and forecasts one origin for 132 pairs in ~8 ms; 48 trees on every row
changed the MAE on days 9-10 by about 1 % for three times the fit. A single-origin
forecast runs in one thread: fanning out costs more than it saves on 132 rows.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from joblib import parallel_config
from sklearn.ensemble import RandomForestRegressor

from predictors.models.base import Forecaster, ModelError, check_origins
from predictors.models.features import features, training_rows
from predictors.panel import Panel

log = logging.getLogger(__name__)

_PARALLEL_ROWS = 20_000  # below this many rows a forecast runs in one thread


class ForestForecaster(Forecaster):
    """One ``RandomForestRegressor`` per horizon over all series, read as a quantile regression forest."""

    name = "forest"
    learned = True

    def __init__(
        self,
        n_estimators: int = 32,
        max_depth: int = 14,
        min_samples_leaf: int = 40,
        max_features: float = 1 / 3,
        max_samples: float = 0.5,
        max_rows: int = 60_000,
        quantiles: Sequence[float] = (0.025, 0.1, 0.5, 0.9, 0.975),
        min_history_days: float = 1.0,
        n_jobs: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        quantiles = tuple(sorted({float(q) for q in quantiles}))
        if 0.5 not in quantiles or not all(0.0 < q < 1.0 for q in quantiles):
            raise ModelError(f"quantiles must lie in (0, 1) and include 0.5, got {quantiles}")
        for name, value in (
            ("n_estimators", n_estimators),
            ("min_samples_leaf", min_samples_leaf),
            ("max_rows", max_rows),
            ("n_jobs", n_jobs),
        ):
            if int(value) < 1:
                raise ModelError(f"{name} must be at least 1, got {value}")
        self.n_estimators, self.max_depth = int(n_estimators), max_depth
        self.min_samples_leaf, self.max_features = int(min_samples_leaf), max_features
        self.max_samples, self.max_rows = max_samples, int(max_rows)
        self.quantiles, self.min_history_days = quantiles, min_history_days
        self.n_jobs, self.seed = int(n_jobs), int(seed)
        self.models: dict[int, RandomForestRegressor] = {}
        # horizon -> per tree, [n_nodes, Q] quantiles of the normalised targets in each leaf (NaN elsewhere)
        self.leaf_quantiles: dict[int, list[np.ndarray]] = {}

    def fit(self, panel: Panel, horizons: Sequence[int]) -> "ForestForecaster":
        super().fit(panel, horizons)
        rng = np.random.default_rng(self.seed)
        levels = np.asarray(self.quantiles)
        self.models, self.leaf_quantiles = {}, {}
        for h in self.fitted_horizons:
            X, y = training_rows(panel, h, self.min_history_days, self.max_rows, rng)
            forest = RandomForestRegressor(
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                max_samples=self.max_samples,
                bootstrap=True,
                random_state=self.seed,
            )
            with parallel_config(n_jobs=self.n_jobs):
                forest.fit(X, y)
                leaves = forest.apply(X)
            self.models[h] = forest
            self.leaf_quantiles[h] = [
                _leaf_quantiles(leaves[:, t], y, tree.tree_.node_count, levels)
                for t, tree in enumerate(forest.estimators_)
            ]
            log.info("forest: horizon %d fitted on %d rows", h, len(y))
        self.fit_info["rows_per_horizon"] = min(self.max_rows, len(panel) * panel.n_series)
        return self

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Point forecasts: the forest's conditional median."""
        return self.predict_quantiles(panel, origins, horizon, (0.5,))[0]

    def predict_quantiles(
        self, panel: Panel, origins: np.ndarray, horizon: int, quantiles: Sequence[float] | None = None
    ) -> np.ndarray:
        """[len(quantiles), len(origins), N] forecasts for quantiles the model was fitted with."""
        origins = check_origins(panel, origins, horizon)
        forest = self.models.get(int(horizon))
        if forest is None:
            raise ModelError(f"forest was not fitted for horizon {horizon}; fitted: {self.fitted_horizons}")
        quantiles = self.quantiles if quantiles is None else tuple(float(q) for q in quantiles)
        unknown = [q for q in quantiles if q not in self.quantiles]
        if unknown:
            raise ModelError(f"quantiles {unknown} were not fitted; available: {list(self.quantiles)}")
        if origins.size == 0:
            return np.zeros((len(quantiles), 0, panel.n_series))
        X, scale, _ = features(panel, origins, horizon)
        with parallel_config(n_jobs=self.n_jobs if len(X) >= _PARALLEL_ROWS else 1):
            leaves = forest.apply(X)
        cols = [self.quantiles.index(q) for q in quantiles]
        table = self.leaf_quantiles[int(horizon)]
        z = np.zeros((len(X), len(cols)))
        for t in range(leaves.shape[1]):
            z += table[t][:, cols][leaves[:, t]]
        out = (z / leaves.shape[1]).T.reshape(len(quantiles), len(origins), panel.n_series) * scale
        return np.maximum(out, 0.0)


def _leaf_quantiles(leaf: np.ndarray, y: np.ndarray, n_nodes: int, levels: np.ndarray) -> np.ndarray:
    """[n_nodes, Q] quantiles of ``y`` among the rows in each leaf (numpy's linear method), float32."""
    order = np.lexsort((y, leaf))
    ids, start, count = np.unique(leaf[order], return_index=True, return_counts=True)
    ys = y[order]
    pos = levels[None, :] * (count[:, None] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, count[:, None] - 1)
    frac = pos - lo
    out = np.full((n_nodes, len(levels)), np.nan, dtype=np.float32)
    out[ids] = ys[start[:, None] + lo] * (1 - frac) + ys[start[:, None] + hi] * frac
    return out
