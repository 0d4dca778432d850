"""Exponential smoothing (damped additive trend, ETS(A,Ad,N)) as a Forecaster.

Choice: parameters are estimated once per series by statsmodels'
``ExponentialSmoothing(trend="add", damped_trend=True)`` on the tail of the fit
span; forecasting then runs the same recursions in numpy, vectorised over
series, instead of refitting statsmodels at every origin (132–462 series times
~1000 origins would take hours):

    level_t = alpha * y_t + (1 - alpha) * (level_{t-1} + phi * trend_{t-1})
    trend_t = beta * (level_t - level_{t-1}) + (1 - beta) * phi * trend_{t-1}
    y_hat(t + h) = level_t + (phi + phi^2 + ... + phi^h) * trend_t

The state at an origin is rebuilt from a warm-up window just before it (long
enough that the start value's weight ``(1 - alpha)^k`` has decayed to 1e-4,
capped at two days), so a single-origin forecast for the live service touches a
few hundred rows, not the whole history. No seasonal term: with 10 days of
5-minute data a 288-step Holt-Winters season per pair is noisier than the
seasonal baselines and the boosting model's seasonal features. ``trend=False``
gives simple exponential smoothing.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import numpy as np

from predictors.models.base import Forecaster, ModelError, check_origins
from predictors.panel import Panel

log = logging.getLogger(__name__)

_DEFAULT = {"alpha": 0.5, "beta": 0.05, "phi": 0.9}
_DECAY = 1e-4


def _estimate(y: np.ndarray, trend: bool) -> dict:
    """Per-series smoothing parameters from statsmodels; defaults when it cannot fit."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = y[np.isfinite(y)]
    if y.size < 10 or np.ptp(y) == 0:
        return dict(_DEFAULT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(y, trend="add" if trend else None, damped_trend=trend,
                                         initialization_method="estimated")
            res = model.fit(optimized=True)
        p = res.params
        out = {"alpha": float(p["smoothing_level"]),
               "beta": float(p.get("smoothing_trend", 0.0) or 0.0) if trend else 0.0,
               "phi": float(p.get("damping_trend", 0.0) or 0.0) if trend else 0.0}
        if not all(np.isfinite(list(out.values()))):
            return dict(_DEFAULT)
        out["alpha"] = float(np.clip(out["alpha"], 0.01, 1.0))
        return out
    except Exception as exc:      # statsmodels raises a variety of numerical errors
        log.debug("smoothing: statsmodels fit failed (%s); using defaults", exc)
        return dict(_DEFAULT)


class SmoothingForecaster(Forecaster):
    """Damped-trend (or simple) exponential smoothing, one parameter set per series."""

    learned = True

    def __init__(self, trend: bool = True, fit_rows: int | None = 864, max_warmup: int | None = None):
        super().__init__()
        self.trend = trend
        self.fit_rows = fit_rows
        self.max_warmup = max_warmup
        self.name = "smoothing_damped" if trend else "smoothing_simple"
        self.alpha = self.beta = self.phi = None

    def fit(self, panel: Panel, horizons: Sequence[int]) -> "SmoothingForecaster":
        super().fit(panel, horizons)
        tail = panel.values[-self.fit_rows:] if self.fit_rows else panel.values
        params = [_estimate(tail[:, n], self.trend) for n in range(panel.n_series)]
        self.alpha = np.array([p["alpha"] for p in params])
        self.beta = np.array([p["beta"] for p in params]) if self.trend else np.zeros(panel.n_series)
        self.phi = np.array([p["phi"] for p in params]) if self.trend else np.zeros(panel.n_series)
        self.fit_info["alpha_median"] = float(np.median(self.alpha))
        return self

    def _warmup(self, panel: Panel) -> int:
        cap = self.max_warmup or 2 * panel.period_steps()
        slowest = max(float(self.alpha.min()), 1e-3)
        need = np.log(_DECAY) / np.log1p(-slowest) if slowest < 1 else 1
        return int(min(cap, max(10, np.ceil(need))))

    def states(self, panel: Panel, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(level, trend) [len(origins), N] after observing values[: origin + 1]."""
        if self.alpha is None:
            raise ModelError(f"{self.name} used before fit")
        if self.alpha.shape[0] != panel.n_series:
            raise ModelError(f"{self.name} was fitted on {self.alpha.shape[0]} series, "
                             f"panel has {panel.n_series}")
        warm = self._warmup(panel)
        level = np.empty((len(origins), panel.n_series))
        trend = np.empty_like(level)
        # Origins close together share one pass; each pass starts `warm` rows back.
        order = np.argsort(origins)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and origins[order[j + 1]] - origins[order[j]] <= warm:
                j += 1
            batch = order[i: j + 1]
            self._run(panel.values, origins[batch], warm, level, trend, batch)
            i = j + 1
        return level, trend

    def _run(self, values, origins, warm, level_out, trend_out, rows):
        a, b, phi = self.alpha, self.beta, self.phi
        start = max(0, int(origins.min()) - warm)
        first = values[start]
        level = np.where(np.isfinite(first), first, 0.0)
        trend = np.zeros_like(level)
        want = {int(o): k for k, o in zip(rows, origins)}
        if start in want:
            level_out[want[start]], trend_out[want[start]] = level, trend
        for t in range(start + 1, int(origins.max()) + 1):
            y = values[t]
            prev = level
            pred = level + phi * trend
            level = np.where(np.isfinite(y), a * y + (1 - a) * pred, pred)
            trend = b * (level - prev) + (1 - b) * phi * trend
            k = want.get(t)
            if k is not None:
                level_out[k], trend_out[k] = level, trend
        # Several origins can share a time index; copy to all of them.
        for k, o in zip(rows, origins):
            kk = want[int(o)]
            if kk != k:
                level_out[k], trend_out[k] = level_out[kk], trend_out[kk]

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        if origins.size == 0:
            return np.zeros((0, panel.n_series))
        level, trend = self.states(panel, origins)
        phi = self.phi
        damp = np.where(phi == 1, horizon, phi * (1 - phi ** horizon) / np.where(phi == 1, 1, 1 - phi))
        return np.maximum(level + damp * trend, 0.0)
