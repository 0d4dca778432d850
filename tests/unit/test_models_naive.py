import numpy as np
import pytest

from predictors.models.base import ModelError
from predictors.models.naive import MeanOfLast, Persistence, SeasonalMedian, SeasonalNaive, baselines
from tests.lib.synthetic import DAY, make_panel, sinusoid

def test_seasonal_naive_is_exact_on_a_daily_sinusoid():
    panel = sinusoid()
    origins = np.arange(2 * DAY, len(panel) - DAY)
    for h in (1, 5, DAY):
        pred = SeasonalNaive().predict(panel, origins, h)
        np.testing.assert_allclose(pred, panel.values[origins + h], atol=1e-9)
        np.testing.assert_allclose(SeasonalMedian(3).predict(panel, origins, h), panel.values[origins + h],
                                   atol=1e-9)


def test_persistence_and_mean_on_a_step():
    values = np.r_[np.zeros(30), np.full(30, 7.0)]
    panel = make_panel(values)
    np.testing.assert_array_equal(Persistence().predict(panel, np.array([29, 30, 40]), 3)[:, 0], [0, 7, 7])
    np.testing.assert_allclose(MeanOfLast(4).predict(panel, np.array([31]), 1)[:, 0], [3.5])


def test_no_look_ahead():
    panel = sinusoid()
    origins = np.array([50, 100, 150])
    changed = panel.values.copy()
    changed[151:] += 1000
    other = make_panel(changed)
    for model in baselines(panel.step_s):
        np.testing.assert_array_equal(model.predict(panel, origins, 6), model.predict(other, origins, 6))


def test_bad_arguments_are_named():
    panel = sinusoid()
    with pytest.raises(ModelError, match="horizon"):
        Persistence().predict(panel, np.array([1]), 0)
    with pytest.raises(ModelError, match="origins"):
        Persistence().predict(panel, np.array([len(panel)]), 1)
