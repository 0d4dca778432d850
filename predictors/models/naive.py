"""Naive baselines, first-class models: persistence, mean of the last k, seasonal
naive (same time one period ago), seasonal median over several periods, and the
blend of a recent mean with the seasonal value. Vectorised over origins and series.
"""

from __future__ import annotations

import numpy as np

from predictors.models.base import Forecaster, check_origins
from predictors.panel import Panel


def _window_mean(values: np.ndarray, origins: np.ndarray, k: int) -> np.ndarray:
    """Mean of values[o-k+1 .. o] for each origin (shorter at the start), NaN-aware."""
    csum = np.nancumsum(values, axis=0)
    count = np.cumsum(~np.isnan(values), axis=0)
    csum = np.vstack([np.zeros((1, values.shape[1])), csum])
    count = np.vstack([np.zeros((1, values.shape[1])), count])
    hi = origins + 1
    lo = np.maximum(hi - k, 0)
    n = count[hi] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[hi] - csum[lo]) / np.maximum(n, 1), np.nan)


def _seasonal_index(origins: np.ndarray, horizon: int, period: int, lag_periods: int = 1) -> np.ndarray:
    """Index of the value one (or lag_periods) period(s) before the target, never after the origin."""
    back = period * (int(np.ceil(horizon / period)) + lag_periods - 1)
    return origins + horizon - back


class Persistence(Forecaster):
    name = "persistence"

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        return panel.values[origins].copy()


class MeanOfLast(Forecaster):
    def __init__(self, k: int):
        super().__init__()
        self.k = int(k)
        self.name = f"mean_last_{self.k}"

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        return _window_mean(panel.values, origins, self.k)


class SeasonalNaive(Forecaster):
    """The value at the same time of day one period before the target."""

    def __init__(self, period_s: int = 86400):
        super().__init__()
        self.period_s = period_s
        self.name = "seasonal_naive"

    def min_history(self, panel: Panel) -> int:
        return panel.period_steps(self.period_s)

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        period = panel.period_steps(self.period_s)
        idx = _seasonal_index(origins, horizon, period)
        out = np.full((len(origins), panel.n_series), np.nan)
        ok = idx >= 0
        out[ok] = panel.values[idx[ok]]
        # Not enough history yet: fall back to persistence.
        out[~ok] = panel.values[origins[~ok]]
        return out


class SeasonalMedian(Forecaster):
    """Median of the same time of day over the last ``periods`` periods."""

    def __init__(self, periods: int = 7, period_s: int = 86400):
        super().__init__()
        self.periods = periods
        self.period_s = period_s
        self.name = f"seasonal_median_{periods}"

    def min_history(self, panel: Panel) -> int:
        return panel.period_steps(self.period_s)

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        origins = check_origins(panel, origins, horizon)
        period = panel.period_steps(self.period_s)
        stack = []
        for lag in range(1, self.periods + 1):
            idx = _seasonal_index(origins, horizon, period, lag)
            vals = np.full((len(origins), panel.n_series), np.nan)
            ok = idx >= 0
            vals[ok] = panel.values[idx[ok]]
            stack.append(vals)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = np.nanmedian(np.stack(stack), axis=0)
        missing = np.isnan(out)
        out[missing] = panel.values[origins][missing]
        return out


class RecentSeasonalBlend(Forecaster):
    """``w * mean of the last k + (1 - w) * seasonal naive``."""

    def __init__(self, k: int = 12, weight: float = 0.5, period_s: int = 86400):
        super().__init__()
        self.k, self.weight, self.period_s = k, weight, period_s
        self.name = f"blend_mean{k}_seasonal"
        self._mean = MeanOfLast(k)
        self._seasonal = SeasonalNaive(period_s)

    def min_history(self, panel: Panel) -> int:
        return panel.period_steps(self.period_s)

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        return (self.weight * self._mean.predict(panel, origins, horizon)
                + (1 - self.weight) * self._seasonal.predict(panel, origins, horizon))


def baselines(step_s: int) -> list[Forecaster]:
    """The naive family every selection includes, sized to the sampling step."""
    hour = max(1, round(3600 / step_s))
    return [Persistence(), MeanOfLast(max(2, hour // 2)), MeanOfLast(hour), SeasonalNaive(),
            SeasonalMedian(7), RecentSeasonalBlend(k=hour)]
