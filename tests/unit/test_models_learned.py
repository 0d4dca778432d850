import numpy as np

from predictors.models.base import Forecaster
from predictors.models.boosting import BoostingForecaster
from predictors.models.smoothing import SmoothingForecaster
from tests.lib.synthetic import DAY, make_panel, sinusoid

def _small_boost():
    return BoostingForecaster(max_rows=5000, max_iter=60, learning_rate=0.2)


def test_smoothing_follows_a_linear_trend():
    t = np.arange(300, dtype=float)
    panel = make_panel(np.stack([5 + 0.5 * t, 100 - 0.2 * t], axis=1))
    model = SmoothingForecaster(trend=True).fit(panel.slice(0, 200), [1, 10])
    origins = np.arange(220, 280)
    for h in (1, 10):
        err = np.abs(model.predict(panel, origins, h) - panel.values[origins + h])
        assert err.mean() < 0.1 * h + 0.05


def test_simple_smoothing_settles_after_a_step():
    panel = make_panel(np.r_[np.full(100, 2.0), np.full(100, 9.0)])
    model = SmoothingForecaster(trend=False).fit(panel.slice(0, 150), [1])
    assert abs(model.predict(panel, np.array([190]), 1)[0, 0] - 9.0) < 0.05


def test_smoothing_single_origin_matches_batch():
    panel = sinusoid(days=20)
    model = SmoothingForecaster().fit(panel.slice(0, 200), [3])
    origins = np.arange(300, 470, 7)
    batch = model.predict(panel, origins, 3)
    singles = np.vstack([model.predict(panel, np.array([o]), 3) for o in origins])
    np.testing.assert_allclose(batch, singles, rtol=1e-6, atol=1e-6)


def test_boosting_learns_a_daily_pattern():
    panel = sinusoid(days=14, n=6)
    model = _small_boost().fit(panel.slice(0, 10 * DAY), [1, 6])
    origins = np.arange(10 * DAY, 14 * DAY - 6)
    for h in (1, 6):
        pred = model.predict(panel, origins, h)
        naive = panel.values[origins]
        actual = panel.values[origins + h]
        assert np.abs(pred - actual).mean() < 0.5 * np.abs(naive - actual).mean()


def test_learned_models_do_not_look_ahead(tmp_path):
    panel = sinusoid(days=12)
    changed = panel.values.copy()
    changed[201:] *= 3
    other = make_panel(changed)
    origins = np.array([150, 180, 200])
    for model in (SmoothingForecaster().fit(panel.slice(0, 120), [2]),
                  _small_boost().fit(panel.slice(0, 120), [2])):
        np.testing.assert_array_equal(model.predict(panel, origins, 2), model.predict(other, origins, 2))
        model.save(tmp_path / model.name)
        again = Forecaster.load(tmp_path / model.name)
        np.testing.assert_array_equal(again.predict(panel, origins, 2), model.predict(panel, origins, 2))
