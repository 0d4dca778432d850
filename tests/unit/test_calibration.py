import numpy as np
import pytest

from predictors.calibration import CalibrationError, Calibrator, local_scale, walk_forward
from tests.lib.synthetic import make_panel, sinusoid

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


def _cover(cal, actual, scale=None):
    lo = cal.interval(np.zeros_like(actual), scale, 0.1)
    hi = cal.interval(np.zeros_like(actual), scale, 0.9)
    return float(np.mean((actual >= lo) & (actual <= hi)))


def test_observed_residuals_widen_a_band_that_became_too_narrow():
    rng = np.random.default_rng(5)
    cal = Calibrator(window=200).fit(rng.normal(0, 1, size=(200, 20)), None, (0.1, 0.9))
    wider = rng.normal(0, 3, size=(2000, 20))          # the traffic got three times noisier
    assert _cover(cal, wider) < 0.45
    cal.observe(rng.normal(0, 3, size=(300, 20)), None)
    assert cal.observed == 300
    assert 0.76 < _cover(cal, wider) < 0.86      # from under 45 % back to about the nominal 80 %


def test_adaptive_levels_fix_coverage_that_the_window_alone_would_miss():
    rng = np.random.default_rng(6)
    fitted = rng.normal(0, 1, size=(400, 10))
    stale = Calibrator(window=400, gamma=0.0).fit(fitted, None, (0.1, 0.9))
    adaptive = Calibrator(window=400, gamma=0.01).fit(fitted, None, (0.1, 0.9))
    shifted = rng.normal(0, 2, size=(150, 10))        # fewer rows than the window: the table lags
    stale.observe(shifted, None)
    adaptive.observe(shifted, None)
    test = rng.normal(0, 2, size=(3000, 10))
    assert _cover(adaptive, test) - 0.8 > -0.06
    assert _cover(adaptive, test) > _cover(stale, test) + 0.05


def test_walk_forward_uses_only_targets_known_at_each_origin():
    rng = np.random.default_rng(7)
    cal = Calibrator(window=48).fit(rng.normal(size=(48, 4)), None, (0.1, 0.9))
    horizon, m = 3, 120
    points = np.zeros((m, 4))
    actual = rng.normal(size=(m, 4))
    scale = np.ones((m, 4))
    before = walk_forward(cal, points, scale, actual, horizon, (0.1, 0.9), every=5)
    changed = actual.copy()
    k = 60
    changed[k:] *= 50.0                                 # wild targets from origin k on
    after = walk_forward(cal, points, scale, changed, horizon, (0.1, 0.9), every=5)
    # an origin m sees residuals of origins <= m - horizon only: nothing before k + horizon moves
    np.testing.assert_array_equal(before[:, :k + horizon], after[:, :k + horizon])
    assert not np.array_equal(before[:, k + horizon + 5:], after[:, k + horizon + 5:])
    assert cal.observed == 0                            # the calibrator passed in is untouched


def test_observe_rejects_mismatched_input():
    cal = Calibrator().fit(np.zeros((5, 2)) + np.arange(5)[:, None], None, (0.5,))
    with pytest.raises(CalibrationError, match=r"\[T, 2\]"):
        cal.observe(np.zeros((3, 4)), None)
    with pytest.raises(CalibrationError, match="scale"):
        cal.observe(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(CalibrationError, match="window"):
        Calibrator(window=0)
