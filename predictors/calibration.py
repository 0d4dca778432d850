"""Prediction intervals from held-out residuals (split conformal).

A model's point forecasts say nothing about their uncertainty; the selector keeps
its validation residuals ``actual - point`` per (origin, series) and a
``Calibrator`` turns them into quantiles. Residuals are divided by a scale known at
the origin (``local_scale``: a blend of the last hour's and the last day's mean
level), so a quiet night gets a narrow band and a busy afternoon a wide one; the
quantile value is ``point + scale * z_q`` where ``z_q`` is a quantile of the
normalised residuals.

Pooling: 288 validation residuals per series make a 2.5% quantile rest on ~7
points. Each series' quantile is therefore shrunk towards the quantile pooled over
all series, with weight ``n / (n + shrink)`` on the series' own (``shrink`` = 500
residuals by default). Quantiles are stored on a fine grid, so ``interval`` can
answer any level in (0, 1) by interpolation, and the levels the caller asked for at
fit time are stored exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from predictors.panel import Panel

_GRID = np.round(np.concatenate([[0.001, 0.0025, 0.005], np.arange(0.01, 1.0, 0.01), [0.995, 0.9975, 0.999]]), 4)
_SCALE_FLOOR_MBPS = 0.05


class CalibrationError(ValueError):
    """Bad arguments to a calibrator (the message names which) or use before fit."""


def local_scale(panel: Panel, origins: np.ndarray) -> np.ndarray:
    """[len(origins), N] level known at each origin: ½ mean of the last hour + ½ of the last day."""
    from predictors.models.naive import _window_mean

    origins = np.asarray(origins, dtype=np.int64)
    if origins.size == 0:
        return np.zeros((0, panel.n_series))
    day = panel.period_steps()
    hour = max(1, round(3600 / panel.step_s))
    start = max(0, int(origins.min()) - day)
    values = panel.values[start: int(origins.max()) + 1]
    o = origins - start
    level = 0.5 * _window_mean(values, o, hour) + 0.5 * _window_mean(values, o, day)
    return np.maximum(np.nan_to_num(level, nan=0.0), _SCALE_FLOOR_MBPS)


class Calibrator:
    """Per-series residual quantiles, shrunk towards the pooled ones."""

    def __init__(self, shrink: float = 500.0):
        self.shrink = float(shrink)
        self.levels: np.ndarray | None = None      # [Q] sorted quantile levels
        self.table: np.ndarray | None = None       # [Q, N] normalised residual quantiles
        self.scaled = False

    def fit(self, residuals: np.ndarray, scale: np.ndarray | None,
            quantiles: Sequence[float] = (0.025, 0.1, 0.5, 0.9, 0.975)) -> "Calibrator":
        residuals = np.asarray(residuals, dtype=np.float64)
        if residuals.ndim != 2:
            raise CalibrationError(f"residuals must be [T, N], got shape {residuals.shape}")
        if scale is not None:
            scale = np.asarray(scale, dtype=np.float64)
            if scale.shape != residuals.shape:
                raise CalibrationError(f"scale has shape {scale.shape}, residuals {residuals.shape}")
            if np.any(scale[np.isfinite(scale)] <= 0):
                raise CalibrationError("scale must be positive")
        _check_levels(quantiles)
        z = residuals / scale if scale is not None else residuals
        levels = np.unique(np.concatenate([_GRID, np.asarray(quantiles, dtype=np.float64)]))
        finite = np.isfinite(z)
        if not finite.any():
            raise CalibrationError("no finite residuals to calibrate on")
        pooled = np.quantile(z[finite], levels)                           # [Q]
        n = finite.sum(axis=0)                                             # [N]
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                own = np.nanquantile(np.where(finite, z, np.nan), levels, axis=0)   # [Q, N]
        own = np.where(np.isfinite(own), own, pooled[:, None])
        w = n / (n + self.shrink)
        self.table = w * own + (1 - w) * pooled[:, None]
        self.table = np.maximum.accumulate(self.table, axis=0)           # monotone in the level
        self.levels = levels
        self.scaled = scale is not None
        return self

    def interval(self, point: np.ndarray, scale: np.ndarray | None, quantile: float) -> np.ndarray:
        """[M, N] value at ``quantile`` around point forecasts ``point`` [M, N]."""
        if self.table is None:
            raise CalibrationError("calibrator used before fit")
        _check_levels([quantile])
        point = np.asarray(point, dtype=np.float64)
        if point.ndim != 2 or point.shape[1] != self.table.shape[1]:
            raise CalibrationError(f"point must be [M, {self.table.shape[1]}], got shape {point.shape}")
        z = self._z(quantile)
        if self.scaled:
            if scale is None:
                raise CalibrationError("this calibrator was fitted with a scale; pass one")
            return point + np.asarray(scale) * z
        return point + z

    def _z(self, quantile: float) -> np.ndarray:
        hit = np.flatnonzero(np.isclose(self.levels, quantile))
        if hit.size:
            return self.table[hit[0]]
        i = int(np.clip(np.searchsorted(self.levels, quantile), 1, len(self.levels) - 1))
        lo, hi = self.levels[i - 1], self.levels[i]
        f = float(np.clip((quantile - lo) / (hi - lo), 0.0, 1.0))
        return (1 - f) * self.table[i - 1] + f * self.table[i]

    def subset(self, columns: Sequence[int]) -> "Calibrator":
        """A calibrator for a subset of the series (same levels)."""
        out = Calibrator(self.shrink)
        out.levels, out.table, out.scaled = self.levels, self.table[:, list(columns)], self.scaled
        return out


def _check_levels(quantiles: Sequence[float]) -> None:
    for q in quantiles:
        if not 0.0 < float(q) < 1.0:
            raise CalibrationError(f"quantile {q} must lie strictly between 0 and 1")
