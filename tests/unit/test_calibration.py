import numpy as np
import pytest

from predictors.calibration import CalibrationError, Calibrator, local_scale
from synthetic import make_panel, sinusoid

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
