"""RecurrentForecaster on a small synthetic panel: skill, no look-ahead, short histories,
quantile order, save/load, and the GRU variant. Tiny networks so the file runs in seconds."""

import pickle

import numpy as np
import pytest

# predictors.models.recurrent imports TensorFlow lazily, so these imports work without it.
from predictors.models.base import Forecaster, ModelError
from predictors.models.naive import Persistence
from predictors.models.recurrent import RecurrentForecaster
from predictors.panel import Panel

pytest.importorskip("tensorflow")
# Keras' own .keras writer trips a NumPy 2 deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

STEP_S = 3600           # hourly, so a day is 24 steps
FIT_ROWS = 480
HORIZONS = (1, 6)
TINY = dict(units=8, epochs=4, batch_size=128, max_train_samples=3000)


def _panel(rows: int = 600, n: int = 6, seed: int = 1) -> Panel:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    level = rng.uniform(5, 50, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    daily = 1 + 0.6 * np.sin(2 * np.pi * t[:, None] / 24 + phase)
    values = level * daily * (1 + 0.05 * rng.standard_normal((rows, n)))
    return Panel(values, 1_100_000_000 + STEP_S * t, STEP_S, tuple(f"s{i}" for i in range(n)))


@pytest.fixture(scope="module")
def panel():
    return _panel()


@pytest.fixture(scope="module")
def lstm(panel):
    return RecurrentForecaster(cell="lstm", **TINY).fit(panel.slice(0, FIT_ROWS), HORIZONS)


def test_beats_persistence_at_multi_step_horizon(panel, lstm):
    h = 6
    origins = np.arange(FIT_ROWS, len(panel) - h)
    truth = panel.values[origins + h]
    mae = np.mean(np.abs(lstm.predict(panel, origins, h) - truth))
    mae_persistence = np.mean(np.abs(Persistence().predict(panel, origins, h) - truth))
    assert mae < 0.7 * mae_persistence


def test_predict_shape_and_no_look_ahead(panel, lstm):
    origin = 520
    base = lstm.predict(panel, np.array([origin]), 6)
    assert base.shape == (1, panel.n_series)
    future = panel.values.copy()
    future[origin + 1:] *= 10.0
    changed = Panel(future, panel.times, panel.step_s, panel.names)
    # A different origin set, so nothing can be served from a cache of the first call.
    again = lstm.predict(changed, np.array([origin, origin + 2]), 6)
    np.testing.assert_array_equal(again[0], base[0])
    assert not np.allclose(again[1], lstm.predict(panel, np.array([origin + 2]), 6)[0])


def test_short_history_gives_finite_forecasts(panel, lstm):
    origins = np.array([0, 1, 3, 7])       # less history than the window
    for h in HORIZONS:
        fc = lstm.predict(panel, origins, h)
        assert fc.shape == (4, panel.n_series)
        assert np.isfinite(fc).all()


def test_quantiles_ordered_and_median_is_point(panel, lstm):
    origins = np.arange(FIT_ROWS, FIT_ROWS + 50)
    q = lstm.predict_quantiles(panel, origins, 6, (0.1, 0.5, 0.9))
    assert q.shape == (3, 50, panel.n_series)
    assert np.mean((q[0] <= q[1]) & (q[1] <= q[2])) > 0.95
    np.testing.assert_array_equal(q[1], lstm.predict(panel, origins, 6))
    with pytest.raises(ModelError):
        lstm.predict_quantiles(panel, origins, 6, (0.25,))


def test_unfitted_horizon_is_rejected(panel, lstm):
    with pytest.raises(ModelError):
        lstm.predict(panel, np.array([500]), 3)


def test_save_load_round_trip(panel, lstm, tmp_path):
    origins = np.arange(FIT_ROWS, FIT_ROWS + 40)
    lstm.save(tmp_path)
    loaded = Forecaster.load(tmp_path)
    assert isinstance(loaded, RecurrentForecaster)
    assert loaded.fitted_horizons == HORIZONS
    for h in HORIZONS:
        np.testing.assert_array_equal(loaded.predict(panel, origins, h), lstm.predict(panel, origins, h))


def test_pickle_round_trip(panel, lstm):
    origins = np.arange(FIT_ROWS, FIT_ROWS + 10)
    copy = pickle.loads(pickle.dumps(lstm))
    np.testing.assert_array_equal(copy.predict(panel, origins, 1), lstm.predict(panel, origins, 1))


def test_gru_variant(panel):
    gru = RecurrentForecaster(cell="gru", window=4, **{**TINY, "epochs": 1, "max_train_samples": 2000})
    assert gru.name == "gru"
    gru.fit(panel.slice(0, FIT_ROWS), (2,))
    fc = gru.predict(panel, np.arange(FIT_ROWS, FIT_ROWS + 10), 2)
    assert fc.shape == (10, panel.n_series) and np.isfinite(fc).all()


def test_bad_arguments():
    with pytest.raises(ModelError):
        RecurrentForecaster(cell="rnn")
    with pytest.raises(ModelError):
        RecurrentForecaster(quantiles=(0.1, 0.9))
