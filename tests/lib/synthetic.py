"""Synthetic panels with known answers, shared by the forecasting tests."""

import numpy as np

from predictors.panel import Panel

STEP_S = 3600          # hourly: a day is 24 steps, so tests stay small
DAY = 24


def make_panel(values: np.ndarray, step_s: int = STEP_S) -> Panel:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    times = 1_078_099_200 + step_s * np.arange(values.shape[0], dtype=np.int64)
    return Panel(values, times, step_s, tuple(f"s{i}" for i in range(values.shape[1])))


def sinusoid(days: int = 12, n: int = 3) -> Panel:
    t = np.arange(days * DAY)
    return make_panel(np.stack([10 * (i + 1) + 5 * np.sin(2 * np.pi * t / DAY + i) for i in range(n)],
                               axis=1))


def random_walk(days: int = 12, n: int = 4, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    return make_panel(100 + np.cumsum(rng.normal(0, 3, size=(days * DAY, n)), axis=0))
