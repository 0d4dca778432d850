"""Needs from forecast quantiles: the probability of exceeding a capacity, the expected
unmet demand, the time to impact, checked against brute force on the same distribution."""

from __future__ import annotations

import numpy as np
import pytest

from apps.provisioning.needs import NeedsError, Point, Resource, assess, expected_unmet, p_exceed, value_at

QS = ((0.1, 8.0), (0.5, 10.0), (0.9, 13.0), (0.95, 14.0))
POINT = Point(900, 10.0, QS)


def sample(point: Point, n: int = 400_000, seed: int = 1) -> np.ndarray:
    """Draws from the distribution the module assumes: the quantile function, piecewise
    linear through the quantiles, tails extended at the slope of the nearest pair."""
    rng = np.random.default_rng(seed)
    return np.array([value_at(point, u) for u in rng.uniform(0, 1, n // 100)])


def test_p_exceed_is_one_minus_the_level_at_each_quantile_and_monotone():
    for q, v in QS:
        assert p_exceed(POINT, v) == pytest.approx(1 - q)
    caps = np.linspace(0, 20, 81)
    probs = [p_exceed(POINT, c) for c in caps]
    assert all(a >= b for a, b in zip(probs, probs[1:]))
    assert probs[0] == 1.0 and probs[-1] == 0.0


@pytest.mark.parametrize("capacity", [7.0, 9.0, 10.0, 12.5, 13.8, 15.0])
def test_p_exceed_and_expected_unmet_match_brute_force(capacity):
    draws = sample(POINT)
    assert p_exceed(POINT, capacity) == pytest.approx(np.mean(draws > capacity), abs=0.02)
    assert expected_unmet(POINT, capacity) == pytest.approx(
        np.mean(np.maximum(draws - capacity, 0)), abs=0.05
    )


def test_crossed_quantiles_are_sorted_not_refused():
    crossed = Point(300, 10, ((0.1, 9.0), (0.5, 8.0), (0.9, 12.0)))
    assert 0 < p_exceed(crossed, 10.0) < 0.5


def test_a_need_takes_the_first_horizon_at_the_threshold_and_interpolates_the_crossing():
    r = Resource("slice", "web", 10.0, "slice:web")
    below = Point(300, 8.0, ((0.1, 7.0), (0.5, 8.0), (0.9, 9.5)))  # P(exceed) 0
    above = Point(900, 12.0, ((0.1, 9.0), (0.5, 12.0), (0.9, 14.0)))  # P(exceed) ~ 0.87
    need = assess(r, [above, below], now=1000.0, threshold=0.5, service_quantile=0.9, horizon_s=3600)
    p = p_exceed(above, 10.0)
    assert need.deadline_s == pytest.approx(300 + (0.5 / p) * 600)
    assert need.crossing == pytest.approx(1000.0 + need.deadline_s)
    assert need.confidence == pytest.approx(p)
    assert need.need_mbps == pytest.approx(14.0)
    assert need.unmet_mbps == pytest.approx(expected_unmet(above, 10.0))
    assert assess(r, [below], now=0, threshold=0.5, service_quantile=0.9, horizon_s=3600) is None
    # Horizons beyond reach do not count.
    assert assess(r, [below, above], now=0, threshold=0.5, service_quantile=0.9, horizon_s=600) is None


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(point=Point(300, 1, ((0.5, 1.0),))), "at least two quantiles"),
        (dict(point=Point(300, 1, ((0.0, 1.0), (0.5, 2.0)))), "in \\(0, 1\\)"),
        (dict(point=Point(300, 1, ((0.1, float("nan")), (0.5, 2.0)))), "finite"),
    ],
)
def test_unreadable_forecasts_are_refused_naming_the_series(bad, match):
    with pytest.raises(NeedsError, match=match):
        p_exceed(bad["point"], 1.0, series="slice:web")


def test_resources_refuse_a_bad_kind_or_capacity():
    with pytest.raises(NeedsError, match="kind 'disk'"):
        Resource("disk", "x", 1.0, "s")
    with pytest.raises(NeedsError, match="capacity_mbps must be > 0"):
        Resource("slice", "x", 0.0, "s")
