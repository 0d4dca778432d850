import numpy as np
import pytest

from predictors.calibration import CalibrationError, Calibrator, local_scale
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
    return make_panel(np.stack([10 * (i + 1) + 5 * np.sin(2 * np.pi * t / DAY + i) for i in range(n)], axis=1))


def random_walk(days: int = 12, n: int = 4, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    return make_panel(100 + np.cumsum(rng.normal(0, 3, size=(days * DAY, n)), axis=0))


def test_coverage_on_gaussian_noise_with_scale():
    rng = np.random.default_rng(0)
    scale_fit = rng.uniform(1, 20, size=(400, 30))
    cal = Calibrator().fit(rng.normal(size=scale_fit.shape) * scale_fit, scale_fit, (0.1, 0.9, 0.025, 0.975))
    scale = rng.uniform(1, 20, size=(2000, 30))
    actual = rng.normal(size=scale.shape) * scale
    point = np.zeros_like(actual)
    for lo, hi, nominal in ((0.1, 0.9, 0.8), (0.025, 0.975, 0.95)):
        inside = (actual >= cal.interval(point, scale, lo)) & (actual <= cal.interval(point, scale, hi))
        assert abs(inside.mean() - nominal) < 0.02


def test_thin_series_are_pooled_and_levels_interpolate():
    rng = np.random.default_rng(1)
    res = rng.normal(size=(10, 5))
    cal = Calibrator(shrink=500).fit(res, None, (0.1, 0.9))
    z = cal.interval(np.zeros((1, 5)), None, 0.9)[0]
    assert np.ptp(z) < 0.1                     # 10 residuals per series: close to the pooled value
    mid = cal.interval(np.zeros((1, 5)), None, 0.905)
    assert np.all(mid >= z - 1e-12)


def test_errors_are_named():
    cal = Calibrator()
    with pytest.raises(CalibrationError, match="before fit"):
        cal.interval(np.zeros((1, 2)), None, 0.5)
    with pytest.raises(CalibrationError, match="quantile"):
        cal.fit(np.zeros((5, 2)), None, (1.5,))
    with pytest.raises(CalibrationError, match="scale"):
        cal.fit(np.zeros((5, 2)), np.ones((4, 2)), (0.5,))


def test_local_scale_uses_history_only():
    panel = sinusoid()
    s = local_scale(panel, np.array([100]))
    changed = panel.values.copy()
    changed[101:] = 1e6
    np.testing.assert_array_equal(s, local_scale(make_panel(changed), np.array([100])))
