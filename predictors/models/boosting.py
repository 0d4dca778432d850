"""Gradient boosting on lag and calendar features: one global model per horizon.

Direct strategy: for every fitted horizon ``h`` a single
``HistGradientBoostingRegressor`` is trained on rows ``(origin, series)`` pooled
across all series, predicting ``values[o + h] / scale`` where ``scale`` is a robust
per-series level computed from history only (the mean of the last day up to the
origin, floored). Rows are drawn with probability proportional to ``scale`` and the loss is absolute
error, so the fitted objective is the MAE in Mbit/s that backtests report.

Features (all divided by the same scale, so one model serves big and small pairs):
recent lags, rolling means over several windows, rolling standard deviations, the
value at the target's time of day one and two days earlier and its neighbours,
its median and mean over the last week, the
ratio of the current level to yesterday's at the same time, the target's time of
day (sin/cos), a weekend flag and ``log(scale)``. Day-of-week as a category is left
out on purpose: a 10-day fit span sees each weekday once or twice, which a tree
would memorise. Every feature reads only ``values[: origin + 1]``; ``features()``
works on the tail of history that the deepest feature needs, so a single-origin
forecast (the live service) costs one small matrix and one ``predict`` call.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from predictors.models.base import Forecaster, ModelError, check_origins
from predictors.panel import Panel

log = logging.getLogger(__name__)

_LAGS = (0, 1, 2, 3, 5, 8)
_MEAN_HOURS = (0.25, 0.5, 1, 3, 6, 12)       # rolling-mean windows, in hours
_STD_HOURS = (1, 6)
_SEASONAL_OFFSETS = (-3, -1, 0, 1, 3)          # steps around the same time yesterday
_SCALE_FLOOR_MBPS = 0.05
_WEEK_DAYS = 7                                   # seasonal median/mean over this many days
_CLIP = 50.0                                     # normalised features beyond this are noise


def _steps(hours: float, step_s: int) -> int:
    return max(1, round(hours * 3600 / step_s))


def _prefix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prefix sums of values, squares and counts (NaN-aware), with a leading zero row."""
    ok = ~np.isnan(values)
    v = np.where(ok, values, 0.0)
    zero = np.zeros((1, values.shape[1]))
    return (np.vstack([zero, np.cumsum(v, axis=0)]), np.vstack([zero, np.cumsum(v * v, axis=0)]),
            np.vstack([zero, np.cumsum(ok, axis=0)]))


def _window(pre, origins: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of values[o-k+1 .. o] per origin (shorter at the start)."""
    s1, s2, cnt = pre
    hi = origins + 1
    lo = np.maximum(hi - k, 0)
    n = cnt[hi] - cnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (s1[hi] - s1[lo]) / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, (s2[hi] - s2[lo]) / np.maximum(n, 1) - mean * mean, np.nan)
    return mean, np.sqrt(np.maximum(var, 0.0))


def _take(values: np.ndarray, idx: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """values[idx] per origin, NaN where idx is before the start or after the origin."""
    ok = (idx >= 0) & (idx <= origins)
    out = np.full((len(idx), values.shape[1]), np.nan)
    out[ok] = values[idx[ok]]
    return out


def features(panel: Panel, origins: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature rows for every (origin, series): X [len(origins) * N, F], scale [len(origins), N]."""
    step_s, period = panel.step_s, panel.period_steps()
    lookback = (_WEEK_DAYS + 1) * period + max(_SEASONAL_OFFSETS) + 1
    start = max(0, int(origins.min()) - lookback) if origins.size else 0
    values = panel.values[start: int(origins.max()) + 1] if origins.size else panel.values[:0]
    o = origins - start
    # Rolling windows reach back at most a day: prefix sums over that tail only (the
    # seasonal features index further back directly), which keeps one origin cheap.
    pre_start = max(0, int(o.min()) - period - 1) if o.size else 0
    pre = _prefix(values[pre_start:])

    def window(k: int) -> tuple[np.ndarray, np.ndarray]:
        return _window(pre, o - pre_start, k)

    scale = np.maximum(np.nan_to_num(window(period)[0], nan=0.0), _SCALE_FLOOR_MBPS)
    cols, names = [], []

    def add(name: str, block: np.ndarray):
        cols.append(np.clip(block / scale, -_CLIP, _CLIP))
        names.append(name)

    for k in _LAGS:
        add(f"lag_{k}", _take(values, o - k, o))
    for hours in _MEAN_HOURS:
        add(f"mean_{hours}h", window(_steps(hours, step_s))[0])
    for hours in _STD_HOURS:
        add(f"std_{hours}h", window(_steps(hours, step_s))[1])
    for days in (1, 2):
        for j in _SEASONAL_OFFSETS if days == 1 else (0,):
            # whole periods back so that the neighbour is never after the origin
            back_j = period * (int(np.ceil((horizon + j) / period)) + days - 1)
            add(f"season_{days}d_{j:+d}", _take(values, o + horizon - back_j + j, o))
        back = period * (int(np.ceil(horizon / period)) + days - 1)
        end = o + horizon - back + 3
        last = np.clip(end, 0, o)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            seas_mean = np.nanmean([_take(values, last - i, o) for i in range(7)], axis=0)
        seas_mean[end - 6 < 0] = np.nan
        add(f"season_{days}d_mean7", seas_mean)
    add("lag_0_yesterday", _take(values, o - period, o))
    week = np.stack([_take(values, o + horizon - period * (int(np.ceil(horizon / period)) + d), o)
                     for d in range(_WEEK_DAYS)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN early origins
        add("season_week_median", np.nanmedian(week, axis=0))
        add("season_week_mean", np.nanmean(week, axis=0))
    n_series = values.shape[1]
    target_t = panel.times[origins] + horizon * step_s
    tod = 2 * np.pi * (target_t % 86400) / 86400
    weekend = ((target_t // 86400 + 3) % 7 >= 5).astype(float)      # 1970-01-01 was a Thursday
    for name, col in (("tod_sin", np.sin(tod)), ("tod_cos", np.cos(tod)), ("weekend", weekend)):
        cols.append(np.repeat(col[:, None], n_series, axis=1))
        names.append(name)
    cols.append(np.log(scale))
    names.append("log_scale")
    X = np.stack(cols, axis=-1).reshape(len(origins) * n_series, len(cols))
    return X, scale, names


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
        first = min(len(panel) - 1, round(self.min_history_days * panel.period_steps() / 2))
        self.models = {}
        for h in self.fitted_horizons:
            origins = np.arange(first, len(panel) - h)
            if origins.size < 2:
                raise ModelError(f"panel of {len(panel)} rows is too short to fit horizon {h}")
            X, scale, _ = features(panel, origins, h)
            y = (panel.values[origins + h] / scale).reshape(-1)
            w = scale.reshape(-1)
            keep = np.flatnonzero(np.isfinite(y))
            # Importance sampling by scale instead of sample_weight: the same expected
            # objective, and sklearn's weighted binning is ~15x slower.
            keep = np.sort(rng.choice(keep, min(self.max_rows, keep.size), replace=True,
                                      p=w[keep] / w[keep].sum()))
            model = HistGradientBoostingRegressor(
                loss="absolute_error", learning_rate=self.learning_rate, max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=50, l2_regularization=1.0,
                early_stopping=False, random_state=self.seed)
            X = X[keep]
            X[:, np.isnan(X).all(axis=0)] = 0.0       # sklearn cannot bin an all-missing column
            model.fit(X, np.clip(y[keep], -_CLIP, _CLIP))
            self.models[h] = model
            log.info("boosting: horizon %d fitted on %d rows", h, keep.size)
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
