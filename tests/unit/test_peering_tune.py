"""The fit-span replay that chooses the predictive scheme's parameters: it reads only
the fit span, and on a window where it knows the coming hour the predictive plan keeps
less on transit than plain BGP, overloading nothing."""

from __future__ import annotations

import pytest

from apps.peering.planner import BestPath, Predictive
from labs.peering_plan import Scenario, build
from labs.peering_tune import STEP_S, Day, day_rates, held_out_days, replay
from predictors.panel import SPLITS, load_dataset


@pytest.fixture(scope="module")
def setting():
    scn = Scenario(warmup=4, samples=24)
    panel = load_dataset(scn.dataset)
    return scn, panel, build(scn, panel)


def test_held_out_days_are_the_last_fit_days_at_the_labs_time_of_day(setting):
    scn, panel, plan = setting
    per_day = panel.period_steps()
    rows = held_out_days(scn, panel, plan, 2)
    fit_end = SPLITS[scn.dataset].fit_end
    assert rows == sorted(rows) and rows[-1] + scn.warmup + scn.samples <= fit_end
    lab_offset = (plan.start - scn.warmup) % per_day
    assert all(r % per_day == lab_offset for r in rows)
    assert rows[0] // per_day == fit_end // per_day - 2


def _knowing_day(scn, panel, plan, first) -> Day:
    steps = scn.warmup + scn.samples
    rates = day_rates(scn, panel, plan, first, steps + 12)
    forecasts = [
        {g: {h: {0.9: max(r[k : k + int(h // STEP_S) + 1])} for h in (300.0, 900.0, 1800.0, 3600.0)}
         for g, r in rates.items()}
        for k in range(steps)
    ]
    return Day(first, {g: r[:steps] for g, r in rates.items()}, forecasts,
               [float(panel.times[first + k]) for k in range(steps)])


def test_knowing_the_hour_the_plan_beats_plain_bgp_without_overload(setting):
    scn, panel, plan = setting
    day = _knowing_day(scn, panel, plan, held_out_days(scn, panel, plan, 1)[0])
    plain = replay(BestPath(), day, plan, scn, 0.9)
    predictive = replay(Predictive(lookahead_s=3600.0, interval_s=STEP_S, billing_window_s=24 * STEP_S),
                        day, plan, scn, 0.9)
    assert plain["changes_per_group_day"] == 0.0
    assert predictive["overload_steps"] == 0
    assert predictive["transit_p95_mbps"] < plain["transit_p95_mbps"]
