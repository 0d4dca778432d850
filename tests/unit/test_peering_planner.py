"""The peering planner on hand-worked examples: billing's p95, plain BGP, the reactive
Edge Fabric baseline and the predictive MILP planner.

Prices: 720 per Mbit/s of p95 per 30-day window is 1 per Mbit/s per hour
(``hourly_price``), so the per-hour numbers below can be checked by eye."""

import random

import pytest

from apps.peering.billing import expected_p95, hourly_price, p95, transit_saving
from apps.peering.planner import (BestPath, Decision, Exit, Group, PeeringError, Predictive, Reactive,
                                  State)

NOW = 100_000.0


def transit(capacity=1000.0, cost=720.0, latency=0.0):
    return Exit("transit", "transit", capacity, cost, latency_ms=latency)


def peer(name="peer1", capacity=100.0, cost=360.0, hour_cost=1.0, lead=600.0, latency=0.0):
    return Exit(name, "peer", capacity, cost, hour_cost=hour_cost, latency_ms=latency, lead_s=lead)


def group(name, mbps, reach=("transit", "peer1"), forecast=None):
    return Group(name, 1, {e: 2 for e in reach}, mbps, forecast or {})


def only(decision: Decision, action: str, target: str):
    found = [r for r in decision.reasons if r.action == action and r.target == target]
    assert len(found) == 1, [str(r) for r in decision.reasons]
    return found[0]


# ---- billing -------------------------------------------------------------------------------------


def test_p95_of_20_samples_drops_the_largest_one():
    samples = [float(v) for v in range(1, 21)]
    random.Random(3).shuffle(samples)
    assert p95(samples) == 19.0              # 20 // 20 = 1 dropped (the 20)
    assert p95([10.0] * 19 + [500.0]) == 10.0    # one 5-minute burst is free


def test_p95_of_40_samples_drops_the_two_largest():
    assert p95([float(v) for v in range(40, 0, -1)]) == 38.0
    assert p95([10.0] * 38 + [500.0, 400.0]) == 10.0
    assert p95([10.0] * 37 + [500.0, 400.0, 300.0]) == 300.0   # the third burst is billed


def test_p95_of_short_or_empty_windows():
    assert p95([]) == 0.0
    assert p95([1.0, 7.0, 3.0]) == 7.0       # under 20 samples nothing is dropped


def test_expected_p95_appends_the_forecast():
    history = [10.0] * 19
    assert expected_p95(history, [50.0]) == 10.0          # 20 samples: the 50 is dropped
    assert expected_p95(history, [50.0, 50.0]) == 50.0    # 21 samples: still 1 dropped
    assert expected_p95([99.0] + history, [50.0], window_samples=20) == 10.0   # the 99 rolled out


def test_transit_saving_at_the_forecast_peak():
    s = transit_saving([10.0] * 18, [50.0, 60.0], 20.0, cost_per_mbps=2.0)
    # before: 10 x18, 50, 60 -> 60 dropped -> 50; after: 10 x18, 30, 40 -> 40 dropped -> 30
    assert (s.p95_before_mbps, s.p95_after_mbps, s.saved_mbps, s.saved_cost) == (50.0, 30.0, 20.0, 40.0)
    assert hourly_price(720.0) == pytest.approx(1.0)


def test_billing_rejects_negative_samples():
    with pytest.raises(ValueError, match="samples_mbps"):
        p95([1.0, -2.0])


# ---- validation ----------------------------------------------------------------------------------


def test_negative_capacity_names_the_field():
    with pytest.raises(ValueError, match="capacity_mbps"):
        Exit("t", "transit", -1.0, 1.0)


def test_negative_demand_names_the_field():
    with pytest.raises(ValueError, match="measured_mbps"):
        group("g", -5.0)
    with pytest.raises(ValueError, match="forecast"):
        group("g", 5.0, forecast={300.0: {0.9: -1.0}})


def test_unknown_exit_in_reach_names_the_field():
    with pytest.raises(PeeringError, match="reach.*nowhere"):
        BestPath().decide(NOW, [group("g", 1.0, reach=("transit", "nowhere"))], [transit()],
                          State(established={"transit"}))


def test_lookahead_shorter_than_a_lead_time_is_refused():
    with pytest.raises(PeeringError, match="lookahead_s"):
        Predictive(lookahead_s=300.0).decide(NOW, [], [transit(), peer(lead=600.0)], State())


# ---- plain BGP -----------------------------------------------------------------------------------


def test_best_path_takes_the_shortest_as_path_ties_to_the_lowest_name():
    exits = [transit(), peer("peerB"), peer("peerA")]
    g = Group("g", 4, {"transit": 3, "peerB": 2, "peerA": 2}, 10.0)
    up = State(established={"transit", "peerA", "peerB"}, assignment={"g": "transit"})
    d = BestPath().decide(NOW, [g], exits, up)
    assert d.assignment == {"g": "peerA"} and d.bring_up == ()
    assert only(d, "move", "g").numbers == {"as_path_len": 2, "as_path_len_before": 3}
    # peerA not up: peerB, and plain BGP asks for every session
    d = BestPath().decide(NOW, [g], exits, State(established={"transit", "peerB"}))
    assert d.assignment == {"g": "peerB"} and d.bring_up == ("peerA",)


# ---- reactive ------------------------------------------------------------------------------------


def reactive_state(**assignment):
    return State(established={"transit", "peer1"}, assignment=assignment)


def test_reactive_detours_above_80_percent_not_below():
    exits = [transit(), peer()]
    d = Reactive().decide(NOW, [group("a", 50.0), group("b", 31.0)], exits,
                          reactive_state(a="peer1", b="peer1"))
    assert d.assignment == {"a": "transit", "b": "peer1"}      # largest first
    nums = only(d, "detour", "a").numbers
    assert (nums["util_before"], nums["util_after"]) == (0.81, 0.31)
    d = Reactive().decide(NOW, [group("a", 50.0), group("b", 29.0)], exits,
                          reactive_state(a="peer1", b="peer1"))
    assert d.assignment == {"a": "peer1", "b": "peer1"} and d.reasons == ()


def test_reactive_restores_only_below_65_percent():
    exits = [transit(), peer()]
    for b_mbps, back in ((20.0, False), (15.0, False), (10.0, True)):     # 0.70, 0.65, 0.60
        d = Reactive().decide(NOW, [group("a", 50.0), group("b", b_mbps)], exits,
                              reactive_state(a="transit", b="peer1"))
        assert (d.assignment["a"] == "peer1") is back, b_mbps
    assert only(d, "restore", "a").numbers["util_after"] == 0.6


def test_reactive_requests_the_peer_reaching_most_of_the_overload():
    exits = [transit(capacity=100.0), peer("p1"), peer("p2")]
    groups = [group("a", 50.0, reach=("transit", "p1", "p2")), group("b", 40.0, reach=("transit", "p2"))]
    state = State(established={"transit"}, assignment={"a": "transit", "b": "transit"})
    d = Reactive().decide(NOW, groups, exits, state)
    assert d.bring_up == ("p2",)
    assert only(d, "bring_up", "p2").numbers["reached_mbps"] == 90.0
    # p2 pending: its traffic is on the way, no second request
    assert Reactive().decide(NOW, groups, exits, state.after(d, NOW)).bring_up == ()


def test_reactive_withdraws_an_idle_peer_after_min_dwell():
    exits = [transit(), peer()]
    groups = [group("a", 50.0)]
    state = reactive_state(a="peer1")
    first = Reactive().decide(NOW, groups, exits, state)
    assert first.withdraw == () and first.withdrawable_since == {"peer1": NOW}
    later = Reactive().decide(NOW + 900.0, groups, exits, state.after(first, NOW))
    assert later.withdraw == ("peer1",) and later.assignment == {"a": "transit"}
    assert only(later, "drain", "a")


def test_reactive_fails_over_from_a_gone_exit():
    d = Reactive().decide(NOW, [group("a", 50.0)], [transit(), peer()],
                          State(established={"transit"}, assignment={"a": "peer1"}, moved_at={"a": NOW}))
    assert d.assignment == {"a": "transit"} and only(d, "failover", "a")


# ---- predictive ----------------------------------------------------------------------------------


def test_predictive_puts_the_larger_group_that_fits_on_the_cheaper_peer():
    exits = [transit(), peer(capacity=100.0)]       # the peer takes 85 Mbit/s at 85 % headroom
    state = State(established={"transit", "peer1"}, assignment={"a": "transit", "b": "transit"})
    d = Predictive().decide(NOW, [group("a", 60.0), group("b", 70.0)], exits, state)
    assert d.assignment == {"a": "transit", "b": "peer1"}
    nums = only(d, "move", "b").numbers
    assert nums["demand_mbps"] == 70.0 and nums["saving_per_h"] == 35.0     # (1 - 0.5) per Mbit/s-h
    assert (nums["to_util_before"], nums["to_util_after"]) == (0.0, 0.7)
    assert (nums["from_util_before"], nums["from_util_after"]) == (0.13, 0.06)


@pytest.mark.parametrize("peer_cost, moved_s_ago, moves", [
    (719.64, 300.0, False),         # saves 0.005/h, under min_saving, one interval after a move
    (719.64, 5000.0, False),        # ... and long after: hysteresis alone keeps it
    (360.0, 300.0, False),          # a big saving waits out the dwell
    (360.0, 5000.0, True),
])
def test_predictive_dwell_and_min_saving(peer_cost, moved_s_ago, moves):
    exits = [transit(), peer(cost=peer_cost)]
    state = State(established={"transit", "peer1"}, assignment={"g": "transit"},
                  moved_at={"g": NOW - moved_s_ago})
    d = Predictive().decide(NOW, [group("g", 10.0)], exits, state)
    assert (d.assignment["g"] == "peer1") is moves


def surge(peak_at_s, base=50.0, peak=150.0):
    return {h: {0.5: base * 0.8, 0.9: (peak if h >= peak_at_s else base)}
            for h in (300.0, 600.0, 900.0, 1200.0, 1800.0)}


def test_predictive_brings_a_peer_up_lead_time_ahead_of_a_peak_transit_cannot_carry():
    exits = [transit(capacity=100.0), peer(capacity=1000.0, hour_cost=100.0, lead=600.0)]
    state = State(established={"transit"}, assignment={"g": "transit"})
    # The peak is 1800 s out: a request now would idle 1200 s; the due horizons are 600-900 s.
    early = Predictive().decide(NOW, [group("g", 50.0, forecast=surge(1800.0))], exits, state)
    assert early.bring_up == ()
    d = Predictive().decide(NOW, [group("g", 50.0, forecast=surge(900.0))], exits, state)
    assert d.bring_up == ("peer1",) and d.assignment == {"g": "transit"}    # not up yet
    nums = only(d, "bring_up", "peer1").numbers
    assert nums["overload_before_mbps"] == 65.0 and nums["overload_after_mbps"] == 0.0   # 150 - 85
    assert nums["horizon_s"] == 900.0 and nums["lead_s"] == 600.0 and nums["quantile"] == 0.9
    assert nums["peer_util_after"] == 0.15
    assert nums["transit_p95_before_mbps"] == 150.0 and nums["transit_p95_after_mbps"] == 0.0


@pytest.mark.parametrize("hour_cost, up", [(30.0, False), (20.0, True)])
def test_predictive_brings_a_peer_up_only_when_it_saves_more_than_it_costs(hour_cost, up):
    # 50 Mbit/s on the peer saves 25/h; with 20 % hysteresis it must beat 1.2 x hour_cost
    exits = [transit(), peer(capacity=1000.0, hour_cost=hour_cost)]
    state = State(established={"transit"}, assignment={"g": "transit"})
    d = Predictive().decide(NOW, [group("g", 50.0, forecast=surge(10_000.0))], exits, state)
    assert (d.bring_up == ("peer1",)) is up
    if up:
        nums = only(d, "bring_up", "peer1").numbers
        assert nums["saving_per_h"] == 25.0 and nums["hour_cost"] == 20.0


@pytest.mark.parametrize("up_for_s, withdrawn", [(600.0, False), (1000.0, True)])
def test_predictive_withdraws_after_demand_falls_not_before_min_dwell(up_for_s, withdrawn):
    exits = [transit(), peer(capacity=1000.0, hour_cost=20.0)]
    state = State(established={"transit", "peer1"}, assignment={"g": "peer1"},
                  session_changed_at={"peer1": NOW - up_for_s})
    d = Predictive().decide(NOW, [group("g", 5.0)], exits, state)      # saves 2.5/h < 16/h
    assert (d.withdraw == ("peer1",)) is withdrawn
    if withdrawn:
        assert d.assignment == {"g": "transit"} and only(d, "drain", "g")
        assert only(d, "withdraw", "peer1").numbers["extra_cost_per_h"] == 2.5
    else:
        assert d.assignment == {"g": "peer1"}


def test_predictive_keeps_a_peer_the_forecast_still_needs():
    exits = [transit(capacity=100.0), peer(capacity=1000.0, hour_cost=20.0)]
    state = State(established={"transit", "peer1"}, assignment={"g": "peer1"})
    d = Predictive().decide(NOW, [group("g", 5.0, forecast=surge(1800.0))], exits, state)
    assert d.withdraw == ()


def test_predictive_fails_over_when_an_exit_is_gone():
    exits = [transit(), peer()]
    state = State(established={"transit"}, assignment={"g": "peer1"}, moved_at={"g": NOW})
    d = Predictive().decide(NOW, [group("g", 10.0)], exits, state)
    assert d.assignment == {"g": "transit"}
    assert only(d, "failover", "g").numbers["demand_mbps"] == 10.0


def test_predictive_infeasible_demand_overloads_least():
    # limits at 85 %: transit 85, peer 42.5. a->peer, b->transit overloads by 17.5 only
    # (both on transit: 45; b on the peer: 27.5).
    exits = [transit(capacity=100.0), peer(capacity=50.0)]
    state = State(established={"transit", "peer1"}, assignment={"a": "transit", "b": "transit"})
    d = Predictive().decide(NOW, [group("a", 60.0), group("b", 70.0)], exits, state)
    assert d.assignment == {"a": "peer1", "b": "transit"}
    nums = only(d, "overload", "peer1").numbers
    assert (nums["load_mbps"], nums["limit_mbps"]) == (60.0, 42.5)


def test_predictive_goes_through_a_bring_up_and_uses_the_peer_once_established():
    exits = [transit(capacity=100.0), peer(capacity=1000.0, hour_cost=100.0, lead=600.0)]
    groups = [group("g", 50.0, forecast=surge(900.0))]
    state = State(established={"transit"}, assignment={"g": "transit"})
    d = Predictive().decide(NOW, groups, exits, state)
    state = state.after(d, NOW).establish("peer1", NOW + 600.0)
    # 600 s later the peak is 300 s away; the group moves for capacity, dwell or not
    d = Predictive().decide(NOW + 600.0, [group("g", 50.0, forecast=surge(300.0))], exits, state)
    assert d.assignment == {"g": "peer1"} and "over 85%" in only(d, "move", "g").text


def test_predictive_150_groups_on_4_exits_returns_a_valid_assignment():
    rng = random.Random(14)
    exits = [transit(capacity=20_000.0), peer("p1", 3000.0, 360.0), peer("p2", 2000.0, 300.0),
             peer("p3", 1500.0, 200.0)]
    groups = []
    for i in range(150):
        reach = ["transit"] + [p.name for p in exits[1:] if rng.random() < 0.5]
        base = rng.uniform(1.0, 80.0)
        forecast = {h: {0.9: base * rng.uniform(0.8, 1.6)} for h in (300.0, 900.0, 1800.0, 3600.0)}
        groups.append(Group(f"as{64500 + i}", rng.randint(1, 50), {e: rng.randint(1, 5) for e in reach},
                            base, forecast))
    state = State(established={"transit", "p1", "p2"},
                  assignment={g.name: "transit" for g in groups})
    d = Predictive().decide(NOW, groups, exits, state)
    assert set(d.assignment) == {g.name for g in groups}
    for g in groups:
        assert d.assignment[g.name] in g.reach and d.assignment[g.name] in state.established
    assert Predictive().decide(NOW, groups, exits, state) == d           # deterministic


def test_a_group_no_established_exit_reaches_is_left_out_and_said():
    state = State(established={"transit"}, assignment={"g": "peer1"})
    for scheme in (BestPath(), Reactive(), Predictive()):
        d = scheme.decide(NOW, [group("g", 10.0, reach=("peer1",))], [transit(), peer()], state)
        assert d.assignment == {} and only(d, "unreachable", "g"), scheme.name


@pytest.mark.parametrize("fit_ahead_s, on_peer",
                         [(None, False), (3600.0, False), (900.0, True), (300.0, True)])
def test_predictive_holds_the_assignment_only_as_far_as_fit_ahead_s(fit_ahead_s, on_peer):
    """70 Mbit/s now and at +15 min, 120 at +1 h: a peer of 100 fits it until the rise,
    so with fit_ahead_s under an hour it carries the group (a later decision moves it in time)."""
    exits = [transit(), peer(capacity=100.0)]
    state = State(established={"transit", "peer1"}, assignment={"g": "transit"})
    forecast = {300.0: {0.9: 70.0}, 900.0: {0.9: 70.0}, 3600.0: {0.9: 120.0}}
    d = Predictive(fit_ahead_s=fit_ahead_s).decide(NOW, [group("g", 70.0, forecast=forecast)], exits, state)
    assert (d.assignment["g"] == "peer1") is on_peer


def test_predictive_refuses_a_hold_that_is_not_positive():
    with pytest.raises(PeeringError, match="fit_ahead_s"):
        Predictive(fit_ahead_s=0.0)


def test_a_first_placement_starts_no_dwell_a_move_does():
    """Groups placed on transit before a peer is up can go to it as soon as it is: only
    a change of exit starts the dwell that keeps a group from flapping back."""
    exits = [transit(), peer(cost=360.0)]
    placed = State(established={"transit"}).after(
        Decision("foresight", NOW, {"g": "transit", "h": "transit"}), NOW)
    assert dict(placed.moved_at) == {}
    moved = placed.after(Decision("foresight", NOW + 300, {"g": "transit", "h": "peer1"}), NOW + 300)
    assert dict(moved.moved_at) == {"h": NOW + 300}
    up = State(established={"transit", "peer1"}, assignment={"g": "transit", "h": "transit"},
               moved_at=dict(moved.moved_at))
    d = Predictive().decide(NOW + 600, [group("g", 10.0), group("h", 10.0)], exits, up)
    assert d.assignment["g"] == "peer1"         # placed, never moved: free to go
    assert d.assignment["h"] == "transit"       # moved 300 s ago: waits out its dwell
