"""The whole peering app (RIB, planner, sessions, steering, counters) on a replayed
day of real Abilene demand, in-process: the lab's scenario (``labs.peering_plan``) on
the core and a fake edge switch, a fake speaker announcing the lab's routes, and a
predictor that knows the next hour (the measured series' peak, +10 % at q0.9). With
forecasts that good, the predictive scheme must keep every exit under capacity at
every step and leave less on transit than BGP's own best paths would."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.peering import dataplane
from apps.peering.config import PeeringConfig
from labs.peering_lab import neighbour_specs
from labs.peering_plan import Scenario, build, reach
from predictors.panel import load_dataset
from tests.lib.fakebgp import FakeSpeaker
from tests.lib.peering_edge import manager_on
from tests.lib.fakeoftable import FakeHost, FakeNetwork

STEPS = 24


class KnowsTheHour:
    def __init__(self, rates: dict[str, list[float]]):
        self.rates = rates
        self.t = 0

    def ingest(self, samples, labels=None):
        pass

    def forecast(self, series_ids, horizons_s, quantiles=()):
        rows = []
        for sid in series_ids:
            series = self.rates[sid.split(":", 1)[1]]
            for h in horizons_s:
                peak = max(series[self.t : min(self.t + int(h // 300), len(series) - 1) + 1])
                rows.append(
                    SimpleNamespace(
                        series_id=sid,
                        horizon_s=h,
                        degraded=False,
                        quantiles=[
                            SimpleNamespace(quantile=q, value=peak * (1.1 if q > 0.5 else 1.0))
                            for q in quantiles
                        ],
                    )
                )
        return SimpleNamespace(forecasts=rows)


@pytest.fixture(scope="module")
def scenario():
    scn = Scenario()
    return scn, build(scn, load_dataset("abilene"))


def test_predictive_keeps_every_exit_under_capacity_and_transit_below_best_path(scenario):
    scn, plan = scenario
    hosts = [FakeHost("src", 1, 1, "00:00:00:00:00:01", "10.0.0.1")] + [
        FakeHost(n.name, 1, 3 + k, f"00:00:00:00:01:{k + 2:02x}", n.address)
        for k, n in enumerate(plan.neighbours)
    ]
    net = FakeNetwork([], hosts).start()
    net.announce(*[h.name for h in hosts])
    specs = neighbour_specs(scn, plan)
    speaker = FakeSpeaker(
        {
            s.config["address"]: (s.config["asn"], [(p, (s.config["asn"], *path)) for p, path in s.announces])
            for s in specs
        }
    )
    rates = {g: r[scn.warmup :] for g, r in plan.rates.items()}
    predictor = KnowsTheHour(rates)
    settings = PeeringConfig(
        scheme="predictive",
        edge_switch="1",
        step_s=300.0,
        min_dwell_s=1800.0,
        horizons_s=(300.0, 900.0, 1800.0, 3600.0),
        billing_window_s=scn.samples * 300.0,
        neighbours=[s.config for s in specs],
    )
    app = manager_on(net, settings, speaker, predictor)
    with app.lock:
        app._request("transit", 0.0, "always up")
    app._connect()
    speaker.pump(app)
    caps = {n.name: n.capacity_mbps for n in plan.neighbours}
    counted: dict[int, int] = {}
    transit, best_path = [], []
    for t in range(STEPS):
        predictor.t = t
        for g in app.rib.groups():
            gid = dataplane.group_id(app._number(g.name))
            counted[gid] = counted.get(gid, 0) + int(rates[g.name][t] * 1e6 / 8 * 300)
            app.group_stats(1, [SimpleNamespace(group_id=gid, byte_count=counted[gid])], net.now + 300)
        net.now += 300
        app.step(net.now)
        speaker.pump(app)
        if t < 2:
            continue  # the peers' sessions come up at the first step
        load = dict.fromkeys(caps, 0.0)
        for g in app.rib.groups():
            load[app.exit_order(g)[0]] += rates[g.name][t]
        for name, mbps in load.items():
            assert mbps < 0.95 * caps[name], f"step {t}: {name} carries {mbps:.2f} of {caps[name]} Mbit/s"
        transit.append(load["transit"])
        best_path.append(
            sum(
                rates[f"as{g.origin}"][t]
                for g in plan.groups
                if min(reach(g.series).items(), key=lambda kv: (kv[1], kv[0]))[0] == "transit"
            )
        )
    assert {n for n, s in app.sessions.items() if s.established} == set(caps)
    assert max(transit) < min(best_path), (transit, best_path)
