"""Lag and calendar features shared by the tree models (``boosting``, ``forest``).

One row per ``(origin, series)``, every feature divided by a robust per-series
level known at the origin (``scale``: the mean of the last day up to the origin,
floored), so one global model serves big and small pairs alike:
recent lags, rolling means over several windows, rolling standard deviations, the
value at the target's time of day one and two days earlier and its neighbours,
its median and mean over the last week, the
ratio of the current level to yesterday's at the same time, the target's time of
day (sin/cos), a weekend flag and ``log(scale)``. Day-of-week as a category is left
out on purpose: a 10-day fit span sees each weekday once or twice, which a tree
would memorise. Every feature reads only ``values[: origin + 1]``; ``features()``
works on the tail of history that the deepest feature needs, so a single-origin
forecast (the live service) costs one small matrix and one ``predict`` call.

``training_rows`` draws a model's training set for one horizon (direct strategy):
rows are drawn with probability proportional to ``scale``, so a model fitted on
normalised targets minimises the error in Mbit/s that backtests report.
"""

from __future__ import annotations

import warnings

import numpy as np

from predictors.models.base import ModelError
from predictors.panel import Panel

_LAGS = (0, 1, 2, 3, 5, 8)
_MEAN_HOURS = (0.25, 0.5, 1, 3, 6, 12)  # rolling-mean windows, in hours
_STD_HOURS = (1, 6)
_SEASONAL_OFFSETS = (-3, -1, 0, 1, 3)  # steps around the same time yesterday
_SCALE_FLOOR_MBPS = 0.05
_WEEK_DAYS = 7  # seasonal median/mean over this many days
CLIP = 50.0  # normalised features beyond this are noise


def _steps(hours: float, step_s: int) -> int:
    return max(1, round(hours * 3600 / step_s))


def _prefix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prefix sums of values, squares and counts (NaN-aware), with a leading zero row."""
    ok = ~np.isnan(values)
    v = np.where(ok, values, 0.0)
    zero = np.zeros((1, values.shape[1]))
    return (
        np.vstack([zero, np.cumsum(v, axis=0)]),
        np.vstack([zero, np.cumsum(v * v, axis=0)]),
        np.vstack([zero, np.cumsum(ok, axis=0)]),
    )


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
    values = panel.values[start : int(origins.max()) + 1] if origins.size else panel.values[:0]
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
        cols.append(np.clip(block / scale, -CLIP, CLIP))
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
    week = np.stack(
        [
            _take(values, o + horizon - period * (int(np.ceil(horizon / period)) + d), o)
            for d in range(_WEEK_DAYS)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN early origins
        add("season_week_median", np.nanmedian(week, axis=0))
        add("season_week_mean", np.nanmean(week, axis=0))
    n_series = values.shape[1]
    target_t = panel.times[origins] + horizon * step_s
    tod = 2 * np.pi * (target_t % 86400) / 86400
    weekend = ((target_t // 86400 + 3) % 7 >= 5).astype(float)  # 1970-01-01 was a Thursday
    for name, col in (("tod_sin", np.sin(tod)), ("tod_cos", np.cos(tod)), ("weekend", weekend)):
        cols.append(np.repeat(col[:, None], n_series, axis=1))
        names.append(name)
    cols.append(np.log(scale))
    names.append("log_scale")
    X = np.stack(cols, axis=-1).reshape(len(origins) * n_series, len(cols))
    return X, scale, names


def training_rows(
    panel: Panel, horizon: int, min_history_days: float, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """X [R, F] and normalised targets y [R] for one horizon, R <= ``max_rows`` rows.

    Origins start after half of ``min_history_days``; rows with a missing target are
    dropped. Importance sampling by scale instead of sample_weight: the same expected
    objective, and sklearn's weighted binning is ~15x slower."""
    first = min(len(panel) - 1, round(min_history_days * panel.period_steps() / 2))
    origins = np.arange(first, len(panel) - horizon)
    if origins.size < 2:
        raise ModelError(f"panel of {len(panel)} rows is too short to fit horizon {horizon}")
    X, scale, _ = features(panel, origins, horizon)
    y = (panel.values[origins + horizon] / scale).reshape(-1)
    w = scale.reshape(-1)
    keep = np.flatnonzero(np.isfinite(y))
    keep = np.sort(rng.choice(keep, min(max_rows, keep.size), replace=True, p=w[keep] / w[keep].sum()))
    return X[keep], np.clip(y[keep], -CLIP, CLIP)
