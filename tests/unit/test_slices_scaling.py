"""Scaling decisions: ahead of a forecast ramp, no flapping around a member boundary, measured-load
fallback, dissolving idle slices, and timers that survive a restart."""

from __future__ import annotations

import json

import pytest

from apps.slices.model import InvalidSlice, Slice
from apps.slices.scaling import Forecast, ScalingPolicy

HORIZON_S = 600.0


def _slice(**changes) -> Slice:
    data = {"name": "web", "client": "ACME", "vip_cidr": "10.20.0.0/24", "bandwidth_mbps": 100,
            "per_member_mbps": 10, "pool": "edge", "min_members": 1, "max_members": 4}
    data.update(changes)
    return Slice(**data)


def _run(policy, slice_, members, samples, step_s=10.0, start=0.0):
    """Feed (forecast_mbps | None, measured_mbps) samples every step_s, applying each decision."""
    decisions = []
    for i, (predicted, measured) in enumerate(samples):
        forecast = None if predicted is None else Forecast(predicted, HORIZON_S)
        d = policy.decide(start + i * step_s, slice_, members, forecast, measured)
        members = d.target_members
        decisions.append(d)
    return decisions, members


def test_a_demand_ramp_scales_up_ahead_with_the_horizon_as_lead_time():
    s = _slice()
    policy = ScalingPolicy()
    # The forecast for +600 s climbs 5 Mbit/s per tick; the measured load is still low.
    ramp = [(5.0 + 5.0 * i, 4.0) for i in range(8)]
    decisions, members = _run(policy, s, 1, ramp)
    ups = [d for d in decisions if d.action == "scale_up"]
    assert [d.target_members for d in ups] == [2, 3, 4]
    assert all(d.basis == "forecast" and d.lead_time_s == HORIZON_S for d in ups)
    assert all(d.target_members * s.per_member_mbps >= d.demand_mbps for d in ups)
    assert members == 4                       # while the measured 4 Mbit/s alone needs one member


def test_the_reason_shows_the_numbers():
    d = ScalingPolicy().decide(0.0, _slice(), 2, Forecast(23.4, HORIZON_S), 12.0)
    assert (d.action, d.target_members, d.demand_mbps) == ("scale_up", 3, 23.4)
    assert d.reason.startswith("forecast q0.9 at +600 s = 23.4 Mbit/s (measured now 12 Mbit/s) -> "
                               "ceil(23.4/10)=3 member(s) (min 1, max 4); scale up from 2 to 3")


@pytest.mark.parametrize("swing", [0.05, 0.15])
def test_a_demand_oscillating_around_a_member_boundary_for_10_minutes_never_scales_down(swing):
    s = _slice()
    policy = ScalingPolicy()
    wobble = [(30.0 * (1 + swing if i % 2 else 1 - swing), 20.0) for i in range(120)]   # 10 min at 5 s
    decisions, members = _run(policy, s, 3, wobble, step_s=5.0)
    actions = [d.action for d in decisions]
    assert "scale_down" not in actions
    assert actions.count("scale_up") == 1 and members == 4
    low_pct = round(100 * (1 - swing))
    assert f"would run at {low_pct}% of capacity, a scale-down needs <= 80%" in decisions[-2].reason


def test_measured_load_wobbling_around_a_boundary_does_not_flap_either():
    decisions, members = _run(ScalingPolicy(), _slice(), 2, [(None, 20.0 + (1 if i % 2 else -1))
                                                             for i in range(60)])
    assert [d.action for d in decisions].count("scale_up") == 1
    assert "scale_down" not in [d.action for d in decisions] and members == 3


def test_no_forecast_falls_back_to_measured_load_and_says_so():
    d = ScalingPolicy().decide(0.0, _slice(), 1, None, 25.0)
    assert (d.basis, d.lead_time_s, d.demand_mbps, d.target_members) == ("measured", 0.0, 25.0, 3)
    assert (d.forecast_mbps, d.measured_mbps, d.forecast_horizon_s) == (None, 25.0, 0.0)
    assert d.reason.startswith("no forecast: using measured load = 25 Mbit/s -> ceil(25/10)=3 member(s)")
    broken = ScalingPolicy().decide(0.0, _slice(), 1, Forecast(float("nan"), HORIZON_S), 25.0)
    assert broken.basis == "measured" and broken.reason.startswith("forecast unusable (nan): using measured")


def test_a_forecast_below_the_present_load_does_not_shrink_the_slice():
    d = ScalingPolicy().decide(0.0, _slice(), 3, Forecast(5.0, HORIZON_S), 28.0)
    assert (d.action, d.basis, d.target_members, d.lead_time_s) == ("hold", "measured", 3, 0.0)
    # The decision keeps both numbers it weighed, whichever won.
    assert ((d.decided_at_s, d.forecast_mbps, d.forecast_horizon_s, d.measured_mbps)
            == (0.0, 5.0, HORIZON_S, 28.0))
    assert d.reason.startswith("measured load 28 Mbit/s exceeds forecast q0.9 at +600 s = 5 Mbit/s")


def test_scale_down_waits_for_the_lower_target_to_hold_continuously():
    s = _slice()
    policy = ScalingPolicy(scale_down_after_s=60)
    low = (12.0, 5.0)                             # 2 members would do, with headroom
    decisions, members = _run(policy, s, 4, [low] * 5 + [(25.0, 5.0)] + [low] * 7)
    # The tick at 25 Mbit/s (4 members with headroom) restarts the wait.
    assert [d.action for d in decisions[:6]] == ["hold"] * 6
    assert "held 40 s of 60 s" in decisions[4].reason
    assert [d.action for d in decisions[6:12]] == ["hold"] * 6
    assert decisions[12].action == "scale_down" and decisions[12].target_members == 2 and members == 2
    assert "2 member(s) had 20% headroom for 60 s (>= 60 s): scale down from 4 to 2" in decisions[12].reason
    # An up-tick is served at once, whatever the timers.
    up = policy.decide(200.0, s, 2, Forecast(31.0, HORIZON_S), 5.0)
    assert (up.action, up.target_members) == ("scale_up", 4)


def test_scale_down_goes_to_the_highest_lower_target_seen_while_waiting():
    policy = ScalingPolicy(scale_down_after_s=30)
    samples = [(5.0, 0.0), (20.0, 0.0), (5.0, 0.0), (5.0, 0.0)]      # 1, 3, 1, 1 members with headroom
    decisions, members = _run(policy, _slice(), 4, samples)
    assert decisions[-1].action == "scale_down" and members == 3


def test_members_stay_within_min_and_max():
    s = _slice(min_members=2, max_members=4)
    policy = ScalingPolicy(scale_down_after_s=0)
    idle = policy.decide(0.0, s, 3, Forecast(0.0, HORIZON_S), 0.0)
    assert (idle.action, idle.target_members) == ("scale_down", 2)
    assert "ceil(0/10)=0 -> 2 member(s) (min 2, max 4)" in idle.reason
    flood = policy.decide(10.0, s, 2, Forecast(500.0, HORIZON_S), 0.0)
    assert (flood.action, flood.target_members) == ("scale_up", 4)
    shrunk = policy.decide(20.0, _slice(max_members=2), 4, Forecast(500.0, HORIZON_S), 0.0)
    assert (shrunk.action, shrunk.target_members) == ("scale_down", 2)
    assert "4 exceeds max_members" in shrunk.reason


def test_an_idle_slice_dissolves_after_dissolve_after_s_of_zero_demand():
    s = _slice(dissolve_after_s=300)
    policy = ScalingPolicy()
    zero = [(0.0, 0.0)] * 31
    decisions, _ = _run(policy, s, 1, zero[:20] + [(0.0, 2.0)] + zero)       # traffic at t=200 s
    assert all(d.action != "dissolve" for d in decisions[:50])
    last = decisions[-1]
    assert (last.action, last.target_members) == ("dissolve", 0)
    assert "below 0.01 Mbit/s for 300 s (dissolve_after_s 300): dissolve" in last.reason


def test_dissolve_after_zero_means_never():
    decisions, members = _run(ScalingPolicy(), _slice(dissolve_after_s=0), 1, [(0.0, 0.0)] * 100,
                              step_s=3600)
    assert {d.action for d in decisions} == {"hold"} and members == 1


def test_restored_state_gives_the_same_next_decision():
    s = _slice(dissolve_after_s=120)
    policy = ScalingPolicy(scale_down_after_s=60)
    _run(policy, s, 4, [(0.0, 0.0)] * 5)                         # both timers running for 40 s
    saved = json.loads(json.dumps(policy.to_dict()))             # as a store would keep it
    restored = ScalingPolicy.from_dict(saved)
    assert restored.to_dict() == policy.to_dict()
    for now in (50.0, 60.0, 130.0):
        assert restored.decide(now, s, 4, Forecast(0.0, HORIZON_S), 0.0) == \
            policy.decide(now, s, 4, Forecast(0.0, HORIZON_S), 0.0)
    fresh = ScalingPolicy(scale_down_after_s=60).decide(50.0, s, 4, Forecast(0.0, HORIZON_S), 0.0)
    assert fresh.action == "hold"                                # without the state it would wait again


def test_from_dict_takes_configuration_overrides_and_refuses_bad_state():
    policy = ScalingPolicy(scale_down_after_s=60)
    policy.decide(0.0, _slice(), 4, None, 1.0)
    restored = ScalingPolicy.from_dict(policy.to_dict(), scale_down_after_s=10)
    assert restored.scale_down_after_s == 10
    assert restored.decide(10.0, _slice(), 4, None, 1.0).action == "scale_down"
    with pytest.raises(InvalidSlice, match=r"^policy.version: expected 1, got 9$"):
        ScalingPolicy.from_dict({**policy.to_dict(), "version": 9})
    bad = policy.to_dict()
    bad["slices"]["web"]["down_since"] = "yesterday"
    with pytest.raises(InvalidSlice, match=r"^policy.slices.web.down_since: must be a number"):
        ScalingPolicy.from_dict(bad)
    with pytest.raises(InvalidSlice, match=r"^scale_up_after_s: not a scaling policy parameter$"):
        ScalingPolicy.from_dict(policy.to_dict(), scale_up_after_s=1)


def test_only_running_timers_are_state():
    policy = ScalingPolicy()
    policy.decide(0.0, _slice(), 2, Forecast(15.0, HORIZON_S), 0.0)      # steady: no timer
    assert policy.to_dict()["slices"] == {}
    policy.decide(10.0, _slice(), 3, Forecast(15.0, HORIZON_S), 0.0)     # a lower target appears
    assert policy.to_dict()["slices"] == {"web": {"down_since": 10.0, "down_target": 2, "zero_since": None}}
    policy.forget("web")
    assert policy.to_dict()["slices"] == {}


def test_a_clock_that_goes_back_restarts_the_wait_instead_of_scaling_down():
    policy = ScalingPolicy(scale_down_after_s=60)
    policy.decide(1000.0, _slice(), 4, None, 1.0)
    d = policy.decide(10.0, _slice(), 4, None, 1.0)
    assert d.action == "hold" and "held 0 s of 60 s" in d.reason


def test_bad_inputs_and_parameters_name_the_field():
    with pytest.raises(InvalidSlice, match=r"^down_margin: must be < 1, got 1$"):
        ScalingPolicy(down_margin=1.0)
    with pytest.raises(InvalidSlice, match=r"^scale_down_after_s: must be >= 0, got -1$"):
        ScalingPolicy(scale_down_after_s=-1)
    with pytest.raises(InvalidSlice, match=r"^measured_mbps: must be finite"):
        ScalingPolicy().decide(0.0, _slice(), 1, None, float("nan"))
    with pytest.raises(InvalidSlice, match=r"^current_members: must be >= 0, got -1$"):
        ScalingPolicy().decide(0.0, _slice(), -1, None, 1.0)
    with pytest.raises(InvalidSlice, match=r"^horizon_s: must be >= 0, got -600$"):
        Forecast(10.0, -600.0)
