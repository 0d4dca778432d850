"""Traffic engineering through the core and fake switches: OD plans become weighted
select groups and labelled routes that really carry frames; measured and forecast
utilisation over the threshold re-splits traffic; dead routes fall out at once;
priority pairs keep their headroom. Frames are judged by where they go."""

from __future__ import annotations

import collections
from types import SimpleNamespace

import grpc
import pytest
from os_ken.lib.packet.ether_types import ETH_TYPE_IP

from apps.te import dataplane
from apps.te.engineer import TrafficEngineer
from apps.te.config import TeConfig
from controller.config import ClockConfig, ConfigError, parse

from tests.lib.fakeoftable import diamond, ipv4_frame


def _engineer(net, predictor=None, **settings) -> TrafficEngineer:
    te = TrafficEngineer(net.core.view, lambda: net.deliver(net.core.resync(net.now)),
                         TeConfig(**{"threshold": 0.5, **settings}), predictor, wall=lambda: net.now,
                         poll_interval_s=1.0)
    net.core.add_provider(te)
    return te


@pytest.fixture
def net():
    net = diamond(capacities={(1, 2): 10, (1, 3): 10, (2, 4): 10, (3, 4): 10})
    net.announce("h1", "h4")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))   # the controller learns h1 -> h4
    net.clear_inboxes()
    return net


def _path(net, udp_src: int) -> list[int]:
    h1, h4 = net.host("h1"), net.host("h4")
    fields = {"eth_src": h1.mac, "eth_dst": h4.mac, "eth_type": ETH_TYPE_IP, "ipv4_src": h1.ip,
              "ipv4_dst": h4.ip, "ip_proto": 17, "udp_src": udp_src, "udp_dst": 9}
    walk = net.walk(h1.dp_id, h1.port_no, fields)
    assert walk.delivered == ["h4"], f"UDP port {udp_src}: {walk}"
    (_, headers), = walk.packets
    assert headers.get("vlan_vid", 0) == 0, "delivered without the route label"
    return [dp for dp, _ in walk.entered]


def _group_stats(te, net, mbps_by_od: dict, seconds: float = 1.0):
    """Feed route-group counters as the switches would report them after ``seconds``
    with the ODs' traffic at these rates (split over the routes by their fractions)."""
    for (src, dst), mbps in mbps_by_od.items():
        stats = []
        for r in te.plans[(src, dst)]:
            gid = dataplane.group_id(r.label)
            counter = te._counters.get(gid)
            if counter is None:
                te.group_stats(src, [SimpleNamespace(group_id=gid, byte_count=0)], net.now)
            before = te._counters[gid].samples[-1][1]
            stats.append(SimpleNamespace(group_id=gid,
                                         byte_count=before + int(r.fraction * mbps * 1e6 / 8 * seconds)))
        net.now += seconds
        te.group_stats(src, stats, net.now)


def _route_groups(net, te, od=(1, 4)):
    gids = {dataplane.group_id(r.label) for r in te.plans[od]}
    return [g for g in net.switches[od[0]].group_specs() if g.group_id in gids]


def test_a_new_od_gets_its_shortest_path_as_a_labelled_route(net):
    te = _engineer(net)
    record = te.step(net.now)
    assert record.action == "new_ods" and record.ods == 1
    routes, = te.plans.values()
    assert [(r.path, r.fraction) for r in routes] == [((1, 2, 4), 1.0)]
    assert {tuple(_path(net, port)) for port in range(1000, 1020)} == {(1, 2, 4)}
    assert net.out_of_sync() == {}
    (group,) = _route_groups(net, te)
    assert group.type == "indirect" and group.buckets[0].actions[-1] == ("output", 1)


def test_measured_utilisation_over_the_threshold_splits_the_od(net):
    te = _engineer(net)
    te.step(net.now)
    _group_stats(te, net, {(1, 4): 8.0})
    assert te.measured(net.now) == {(1, 4): pytest.approx(8.0)}
    record = te.step(net.now)
    assert record.source == "measured" and record.predicted_mlu == pytest.approx(0.8)
    assert record.action == "replan" and record.planned_mlu == pytest.approx(0.4)
    assert record.moved == {"s1-s4": [["s1-s2-s4", 0.5], ["s1-s3-s4", 0.5]]}
    assert len(_route_groups(net, te)) == 2
    paths = collections.Counter(tuple(_path(net, port)) for port in range(1000, 1064))
    assert paths == {(1, 2, 4): 32, (1, 3, 4): 32}, "the OD's flows split by source port, half each"
    assert net.out_of_sync() == {}
    assert net.core.counters["te_replans"] == 1


def test_under_the_threshold_the_plan_holds(net):
    te = _engineer(net)
    te.step(net.now)
    _group_stats(te, net, {(1, 4): 3.0})
    record = te.step(net.now)
    assert (record.action, record.predicted_mlu) == ("hold", pytest.approx(0.3))
    routes, = te.plans.values()
    assert len(routes) == 1


def test_a_route_over_a_dead_link_falls_out_and_the_rest_carry_everything(net):
    te = _engineer(net)
    te.step(net.now)
    _group_stats(te, net, {(1, 4): 8.0})
    te.step(net.now)
    net.link_down(2, 2)                     # s2-s4
    net.run(1.0)
    paths = {tuple(_path(net, port)) for port in range(1000, 1032)}
    assert paths == {(1, 3, 4)}


def test_a_forecast_over_the_threshold_replans_before_the_load_arrives(net):
    class Forecasting:
        """A prediction service whose model sees 9 Mbit/s coming on every OD."""

        def __init__(self):
            self.samples = []

        def ingest(self, samples, labels=None):
            self.samples += list(samples)

        def forecast(self, series_ids, horizons_s, quantiles=()):
            return SimpleNamespace(forecasts=[
                SimpleNamespace(series_id=s, mean=7.0, horizon_s=horizons_s[0],
                                quantiles=[SimpleNamespace(quantile=q, value=9.0) for q in quantiles])
                for s in series_ids])

    predictor = Forecasting()
    clock = ClockConfig(time_scale=150, virtual_origin_s=3_000_000, real_origin_s=0)
    te = _engineer(net, predictor)
    te.clock = clock
    record = te.step(net.now)            # no traffic measured yet: 0 Mbit/s
    assert record.source == "forecast" and record.measured_mlu == 0
    assert record.predicted_mlu == pytest.approx(0.9) and record.action == "replan"
    assert record.moved == {"s1-s4": [["s1-s2-s4", 0.5], ["s1-s3-s4", 0.5]]}
    assert predictor.samples == [("od:s1-s4", clock.virtual(net.now), 0.0)]
    assert te.mode == "predictive"
    _group_stats(te, net, {(1, 4): 2.0})
    record = te.step(net.now)
    assert (record.predicted_mlu, record.action) == (pytest.approx(0.45), "hold")
    assert predictor.samples[-1] == ("od:s1-s4", clock.virtual(net.now), pytest.approx(2.0))


def test_a_dead_predictor_means_measured_rates_and_the_step_says_so(net):
    class Dead:
        def ingest(self, samples, labels=None):
            raise _Unavailable()

        def forecast(self, *args):
            raise AssertionError("not reached")

    te = _engineer(net, Dead())
    te.step(net.now)
    _group_stats(te, net, {(1, 4): 8.0})
    record = te.step(net.now)
    assert (record.source, record.action, te.mode) == ("measured", "replan", "reactive")


class _Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection refused"


def test_priority_pairs_are_placed_first_and_keep_their_headroom():
    net = diamond(capacities={(1, 2): 10, (1, 3): 10, (2, 4): 10, (3, 4): 10})
    te = TrafficEngineer(net.core.view, lambda: None, TeConfig(priority_pairs=[("s1", "s4")], headroom=0.3),
                         None, wall=lambda: net.now)
    graph = te._graph()
    from apps.te.lp import PathSet, mlu
    pathset = PathSet(graph, {(1, 4): [(1, 2, 4), (1, 3, 4)], (2, 4): [(2, 4), (2, 1, 3, 4)]})
    tm = {(1, 4): 6.0, (2, 4): 6.0}
    x = te._solve(pathset, tm)
    splits = pathset.splits(x)
    prio_on = dict(splits[(1, 4)])
    # Priority first: 6 Mbit/s over two 10 Mbit/s routes at <= 70 % each.
    assert prio_on[(1, 2, 4)] == pytest.approx(0.5) and prio_on[(1, 3, 4)] == pytest.approx(0.5)
    load = dict(zip(pathset.links, pathset.loads_mbps(x, tm)))
    # s2-s4 carries 3 of priority: best effort may add at most 4 there (70 % of 10 in all).
    assert load[(2, 4)] <= 7.0 + 1e-6
    assert mlu(pathset, x, tm) <= 1.0


@pytest.mark.parametrize("text, where", [
    ("te: {threshold: 0}", "te.threshold"),
    ("te: {k: 0}", "te.k"),
    ("te: {quantile: 1.5}", "te.quantile"),
    ("te: {headroom: 1}", "te.headroom"),
    ("te: {priority_pairs: [[s1]]}", "te.priority_pairs"),
    ("te: {bogus: 1}", "te.bogus: unknown key"),
])
def test_bad_te_config_is_refused_naming_the_key(text, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse(text)


def test_measured_rates_smooth_batched_counters_and_survive_a_reset(net):
    te = _engineer(net)
    te.step(net.now)
    gid = dataplane.group_id(te.plans[(1, 4)][0].label)
    # 4 Mbit/s for 3 s, but the switch pushes its counters only every other 0.5 s poll.
    pushed = [0, 0, 500_000, 500_000, 1_000_000, 1_000_000, 1_500_000]
    for count in pushed:
        te.group_stats(1, [SimpleNamespace(group_id=gid, byte_count=count)], net.now)
        net.now += 0.5
    net.now -= 0.5
    assert te.measured(net.now)[(1, 4)] == pytest.approx(4.0)
    net.now += 0.5
    te.group_stats(1, [SimpleNamespace(group_id=gid, byte_count=1000)], net.now)    # re-created group
    assert te.measured(net.now)[(1, 4)] == 0.0
    net.now += 1.0
    te.group_stats(1, [SimpleNamespace(group_id=gid, byte_count=1000 + 250_000)], net.now)
    assert te.measured(net.now)[(1, 4)] == pytest.approx(2.0)


def test_metrics_show_the_last_step_and_each_od(net):
    te = _engineer(net)
    te.step(net.now)
    _group_stats(te, net, {(1, 4): 8.0})
    te.step(net.now)
    families = {f.name: f for f in te.metric_families()}
    mlu = {s.labels["measure"]: s.value for s in families["foresight_te_mlu"].samples}
    assert mlu == {"predicted": pytest.approx(0.8), "measured": 0.0}
    assert [(s.labels["od"], s.value) for s in families["foresight_te_od_demand_mbps"].samples] == \
        [("s1-s4", pytest.approx(8.0))]
    assert [(s.labels["od"], s.value) for s in families["foresight_te_od_routes"].samples] == [("s1-s4", 2)]


def test_no_step_runs_once_the_controller_is_stopping(net):
    te = _engineer(net)
    te.stopping()
    assert te.step(net.now) is None
    assert te.plans == {} and net.core.counters["te_steps"] == 0


@pytest.mark.parametrize("fractions", [[1.0], [0.5, 0.5], [0.7, 0.3], [0.61, 0.2, 0.19],
                                       [0.97, 0.01, 0.01, 0.01]])
def test_slot_blocks_cover_every_slot_once_in_proportion(fractions):
    counts = dataplane.slot_counts(fractions)
    assert sum(counts) == dataplane.SLOTS and min(counts) >= 1
    assert all(abs(c - f * dataplane.SLOTS) < len(fractions) + 1 for c, f in zip(counts, fractions))
    owner = {}
    for i, value, mask in dataplane.slot_blocks(counts):
        assert value & ~mask == 0, "a block is aligned: one masked match"
        for slot in range(dataplane.SLOTS):
            if slot & mask == value:
                assert slot not in owner, f"slot {slot} in two blocks"
                owner[slot] = i
    assert sorted(owner) == list(range(dataplane.SLOTS))
    assert [list(owner.values()).count(i) for i in range(len(counts))] == counts
