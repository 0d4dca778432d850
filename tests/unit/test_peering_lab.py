"""The peering lab's scenario (chosen on the fit span alone) and its report's arithmetic
on synthetic counters."""

from __future__ import annotations

import numpy as np
import pytest

from labs import peering_report as report
from labs.peering_plan import Scenario, build, reach
from predictors.panel import SPLITS, Panel


def _panel(seed: int = 1, eval_factor: float = 1.0) -> Panel:
    rng = np.random.default_rng(seed)
    names = [
        f"{a}->{b}" for a in ("STTLng", "NYCMng", "KSCYng") for b in ("LOSAng", "WASHng", "HSTNng") if a != b
    ]
    t = np.arange(4032)
    day = 1.5 + np.sin(2 * np.pi * t / 288)
    values = np.stack([day * (1 + i) + rng.random(len(t)) for i in range(len(names))], axis=1)
    values[SPLITS["abilene"].fit_end :] *= eval_factor
    return Panel(values, 1078099200 + 300 * t, 300, tuple(names))


def test_every_network_has_transit_and_the_peer_of_its_destinations_region():
    assert reach("STTLng->LOSAng")["transit"] == 3
    assert set(reach("STTLng->LOSAng")) >= {"transit", "west"}
    assert reach("NYCMng->WASHng").get("east") in (2, 4)


def test_scale_and_capacities_come_from_the_fit_span_alone():
    scn = Scenario(samples=24)
    a, b = build(scn, _panel()), build(scn, _panel(eval_factor=3.0))
    assert a.demand_scale == b.demand_scale
    assert [n.capacity_mbps for n in a.neighbours] == [n.capacity_mbps for n in b.neighbours]
    assert a.rates != b.rates  # the replay is the evaluation span
    assert a.start >= SPLITS["abilene"].fit_end


def test_the_plan_gives_each_network_its_prefixes_and_every_neighbour_what_it_announces():
    scn = Scenario(samples=24, prefixes_per_group=4)
    p = build(scn, _panel())
    prefixes = [pfx for g in p.groups for pfx in g.prefixes]
    assert len(prefixes) == len(set(prefixes)) == 4 * len(p.groups)
    transit = p.neighbours[0]
    assert transit.kind == "transit" and len(transit.announces) == len(prefixes)
    assert all(path[-1] == g.origin for g in p.groups for pfx, path in transit.announces if pfx in g.prefixes)


def _sample(t, sent_bytes, drops=0, backlog=0, groups=None):
    return {"t": t, "qdisc": {"transit": [sent_bytes, drops, backlog]}, "groups": groups or {}}


def test_offered_counts_sent_dropped_and_queued_bytes():
    samples = [_sample(0.0, 0), _sample(1.0, 1_000_000, drops=100, backlog=50_000)]
    (mbps,) = report.offered(samples, {"transit": 10.0})["transit"]
    assert mbps == pytest.approx((1_000_000 + 100 * report.FRAME + 50_000) * 8 / 1e6)


def test_exit_changes_count_groups_pointing_elsewhere_between_steps():
    samples = [
        _sample(0, 0, groups={"1": 1, "2": 2}),
        _sample(1, 0, groups={"1": 2, "2": 2}),
        _sample(2, 0, groups={"1": 2, "2": 1, "3": 1}),
    ]
    assert report.exit_changes(samples) == 2


def test_the_loss_window_merges_what_every_receiver_got():
    sent = {"sent": 1000, "interval_s": 0.001}
    peer = {"received": 400, "last_seq": 399, "gaps": []}
    transit = {"received": 550, "last_seq": 999, "gaps": [[-1, 450, 0.0, 0.0]]}
    assert report.merged_loss(sent, {"west": peer, "transit": transit}) == {
        "probes": 1000,
        "lost": 50,
        "failover_loss_ms": 50.0,
    }
    assert report.merged_loss(sent, {"west": {"received": 1000, "last_seq": 999, "gaps": []}})["lost"] == 0
