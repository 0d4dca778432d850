"""Prediction intervals from held-out residuals (split conformal).

A model's point forecasts say nothing about their uncertainty; the selector keeps
its validation residuals ``actual - point`` per (origin, series) and a
``Calibrator`` turns them into quantiles. Residuals are divided by a scale known at
the origin (``local_scale``: a blend of the last hour's and the last day's mean
level), so a quiet night gets a narrow band and a busy afternoon a wide one; the
quantile value is ``point + scale * z_q`` where ``z_q`` is a quantile of the
normalised residuals.

Online recalibration: traffic shifts (a weekend, a new customer) make residuals
from one held-out day a poor guide a few days later. ``observe`` feeds the
calibrator residuals as their targets become known: the table is refitted on the
last ``window`` of them (the validation residuals first, then realised ones), and
adaptive conformal inference (Gibbs & Candès, 2021) nudges the level looked up
for each nominal quantile by ``gamma * (q - realised share below)``, pooled over
series, so a band that covered too little widens until it covers as promised.
Nothing here looks ahead: a residual enters only once its target has been
observed. ``walk_forward`` replays that on a span of points, as the service does
live, which is how backtests score intervals.

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

_GRID = np.round(np.concatenate([[0.001, 0.0025, 0.005], np.arange(0.01, 1.0, 0.01),
                                 [0.995, 0.9975, 0.999]]), 4)
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
    """Per-series residual quantiles, shrunk towards the pooled ones, kept up to date online."""

    def __init__(self, shrink: float = 500.0, window: int | None = None, gamma: float = 0.005):
        if window is not None and window < 1:
            raise CalibrationError(f"window must be at least 1 residual row, got {window}")
        if not 0.0 <= gamma < 1.0:
            raise CalibrationError(f"gamma must lie in [0, 1), got {gamma}")
        self.shrink = float(shrink)
        self.window = window                        # residual rows kept; None: what fit() got
        self.gamma = float(gamma)
        self.levels: np.ndarray | None = None      # [Q] sorted quantile levels
        self.table: np.ndarray | None = None       # [Q, N] normalised residual quantiles
        self.effective: np.ndarray | None = None   # [Q] level looked up for each nominal level
        self.z: np.ndarray | None = None           # [T, N] normalised residuals in the table (float32)
        self.observed = 0                          # residual rows fed in by observe()
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
        if not np.isfinite(z).any():
            raise CalibrationError("no finite residuals to calibrate on")
        self.levels = np.unique(np.concatenate([_GRID, np.asarray(quantiles, dtype=np.float64)]))
        self.effective = self.levels.copy()
        self.window = self.window or len(z)
        self.z = z[-self.window:].astype(np.float32)
        self.scaled = scale is not None
        self._refit()
        return self

    def _refit(self) -> None:
        z, levels = self.z.astype(np.float64), self.levels
        finite = np.isfinite(z)
        pooled = np.quantile(z[finite], levels)                           # [Q]
        n = finite.sum(axis=0)                                             # [N]
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                own = np.nanquantile(np.where(finite, z, np.nan), levels, axis=0)   # [Q, N]
        own = np.where(np.isfinite(own), own, pooled[:, None])
        w = n / (n + self.shrink)
        table = w * own + (1 - w) * pooled[:, None]
        self.table = np.maximum.accumulate(table, axis=0)                 # monotone in the level

    def observe(self, residuals: np.ndarray, scale: np.ndarray | None, block: int = 12) -> None:
        """Realised residuals ``actual - point`` [T, N] in time order, once their targets are known.

        Rows are taken ``block`` at a time, refitting the table after each block, so a
        long catch-up (after a restart) corrects levels against an up-to-date table
        rather than piling every correction onto a stale one."""
        if self.table is None:
            raise CalibrationError("calibrator used before fit")
        residuals = np.atleast_2d(np.asarray(residuals, dtype=np.float64))
        if residuals.shape[1] != self.table.shape[1]:
            raise CalibrationError(f"residuals must be [T, {self.table.shape[1]}], "
                                   f"got shape {residuals.shape}")
        if (scale is not None) != self.scaled:
            raise CalibrationError("pass a scale exactly when the calibrator was fitted with one")
        z = residuals / np.asarray(scale) if scale is not None else residuals
        z = z[np.isfinite(z).any(axis=1)]
        for start in range(0, len(z), max(1, block)):
            self._observe_block(z[start:start + max(1, block)])

    def _observe_block(self, z: np.ndarray) -> None:
        if self.gamma > 0:
            effective = self.effective.copy()
            for row in z:
                ok = np.isfinite(row)
                below = (row[ok][None, :] <= self._table_at(effective)[:, ok]).mean(axis=1)
                effective = np.clip(effective + self.gamma * (self.levels - below), 0.0005, 0.9995)
                effective = np.maximum.accumulate(effective)
            self.effective = effective
        self.z = np.vstack([self.z, z.astype(np.float32)])[-self.window:]
        self.observed += len(z)
        self._refit()

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
        """[N] normalised residual at a nominal level (through the online level correction)."""
        level = float(np.interp(quantile, self.levels, self.effective))
        return self._table_at(np.array([level]))[0]

    def _table_at(self, levels: np.ndarray) -> np.ndarray:
        """[len(levels), N] table rows interpolated at arbitrary levels."""
        i = np.clip(np.searchsorted(self.levels, levels), 1, len(self.levels) - 1)
        lo, hi = self.levels[i - 1], self.levels[i]
        f = np.clip((levels - lo) / (hi - lo), 0.0, 1.0)[:, None]
        return (1 - f) * self.table[i - 1] + f * self.table[i]

    def copy(self) -> "Calibrator":
        out = Calibrator(self.shrink, self.window, self.gamma)
        out.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                             for k, v in self.__dict__.items()})
        return out


def walk_forward(calibrator: Calibrator, points: np.ndarray, scale: np.ndarray, actual: np.ndarray,
                 horizon: int, quantiles: Sequence[float], every: int) -> np.ndarray:
    """Quantiles [Q, M, N] for points at M consecutive origins, recalibrating every ``every`` origins.

    At origin ``m`` the calibrator has seen the residuals of origins up to
    ``m - horizon`` (their targets are at or before ``m``), never later ones: the
    service does the same live. The calibrator passed in is left unchanged."""
    cal = calibrator.copy()
    m_total = len(points)
    out = np.full((len(quantiles), m_total, points.shape[1]), np.nan)
    seen = 0                                      # residual rows already observed
    for start in range(0, m_total, max(1, every)):
        known = max(0, start - horizon + 1)       # origins 0..start-horizon have known targets
        if known > seen:
            cal.observe(actual[seen:known] - points[seen:known], scale[seen:known] if cal.scaled else None)
            seen = known
        stop = min(m_total, start + max(1, every))
        for j, q in enumerate(quantiles):
            out[j, start:stop] = cal.interval(points[start:stop],
                                              scale[start:stop] if cal.scaled else None, q)
    return out


def _check_levels(quantiles: Sequence[float]) -> None:
    for q in quantiles:
        if not 0.0 < float(q) < 1.0:
            raise CalibrationError(f"quantile {q} must lie strictly between 0 and 1")
