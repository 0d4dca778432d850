"""Selection: choosing, calibrating, forecasting fast, and saving (synthetic panels, no recurrent models)."""

import numpy as np
import pytest

from predictors.models.base import ModelError
from predictors.models.boosting import BoostingForecaster
from predictors.models.naive import MeanOfLast, Persistence, SeasonalNaive
from predictors.models.smoothing import SmoothingForecaster
from predictors.selection import Selection, default_candidates, train
from tests.lib.synthetic import DAY, make_panel, sinusoid, random_walk

def _naive():
    return [Persistence(), MeanOfLast(3), SeasonalNaive()]


def test_seasonal_series_picks_the_seasonal_model():
    panel = sinusoid(days=8, n=4)
    selection, report = train(panel, [1, 6], candidates=_naive(), validation_steps=2 * DAY)
    for h in (1, 6):
        assert report.global_best[h] == "seasonal_naive"
        assert set(report.chosen[h]) == {"seasonal_naive"}
        assert report.validation_mae["seasonal_naive"][h] < 1e-9


def test_random_walk_picks_persistence():
    panel = random_walk(days=10, n=6)
    _, report = train(panel, [1], candidates=_naive(), validation_steps=3 * DAY)
    assert report.global_best[1].split("+")[0] == "persistence"


def test_forecast_shapes_errors_and_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    panel = make_panel(sinusoid(days=10, n=5).values + rng.normal(0, 0.5, size=(10 * DAY, 5)))
    candidates = _naive() + [SmoothingForecaster(), BoostingForecaster(max_rows=4000, max_iter=40)]
    calls = []
    selection, report = train(panel, [1, 4], candidates=candidates, validation_steps=2 * DAY,
                              progress=lambda f, m: calls.append(f))
    assert calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls)
    mean, q, models = selection.forecast(panel, [0, 2], 4, (0.1, 0.5, 0.9))
    assert mean.shape == (2,) and q.shape == (2, 3) and len(models) == 2
    assert np.all(q[:, 0] <= q[:, 2])
    with pytest.raises(ModelError, match="horizon_steps 5"):
        selection.forecast(panel, [0], 5, (0.5,))
    selection.save(tmp_path / selection.version)
    again = Selection.load(tmp_path / selection.version)
    origins = np.arange(100, len(panel) - 4)
    for a, b in zip(selection.forecast_many(panel, origins, 4, (0.1, 0.9)),
                    again.forecast_many(panel, origins, 4, (0.1, 0.9))):
        np.testing.assert_array_equal(a, b)
    meta = Selection.read_metadata(tmp_path / selection.version)
    assert meta["version"] == selection.version and "validation_mae" in meta
    assert meta["training_span"]["end_s"] == float(panel.times[-1])


def test_intervals_cover_on_noisy_seasonal_series():
    rng = np.random.default_rng(4)
    base = sinusoid(days=30, n=8).values
    panel = make_panel(base + rng.normal(0, 1.0, size=base.shape))
    fit = panel.slice(0, 20 * DAY)
    selection, _ = train(fit, [1], candidates=[SeasonalNaive(), Persistence()], validation_steps=8 * DAY)
    origins = np.arange(20 * DAY, 30 * DAY - 1)
    _, q, _ = selection.forecast_many(panel, origins, 1, (0.1, 0.9))
    actual = panel.values[origins + 1]
    coverage = np.mean((actual >= q[0]) & (actual <= q[1]))
    assert 0.74 < coverage < 0.86


def test_env_var_restricts_candidates(monkeypatch):
    monkeypatch.setenv("FORESIGHT_MODELS", "persistence,boosting")
    assert [m.name for m in default_candidates(300)] == ["persistence", "boosting"]
    monkeypatch.setenv("FORESIGHT_MODELS", "nothing")
    with pytest.raises(ModelError, match="FORESIGHT_MODELS"):
        default_candidates(300)


def test_per_series_switching_when_series_differ():
    seasonal = sinusoid(days=10, n=3).values
    walk = random_walk(days=10, n=3, seed=7).values
    panel = make_panel(np.hstack([seasonal, walk]))
    _, report = train(panel, [1], candidates=_naive(), validation_steps=3 * DAY, per_series=True, pairs=True)
    chosen = report.chosen[1]
    assert all("seasonal_naive" == c for c in chosen[:3]) or report.global_best[1] == "seasonal_naive"
    assert all("persistence" in c or "mean_last" in c for c in chosen[3:])
