"""Resources beyond the apps' own capacities: links (their load from the port counters,
their capacity from the topology metadata) and QoS classes (their busiest meter), the
series the provisioning app sends the predictor for them, and how much a link is
relieved by the others (``relief``). Judged by what an operator sees: which resources
are assessed, the queue, the samples the predictor receives."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from apps.provisioning.relief import best_spare, offered_mbps, relief_mbps
from tests.lib.predictor_service import served_predictor
from tests.lib.provisioning_net import build, forecast

# The ring s1 - s2 - s3 - s4 - s1 of tests.lib.provisioning_net (ports: s1:1-s2:1, s2:2-s3:1, ...).
RING_CAPACITY = {(1, 2): 100.0, (2, 3): 100.0, (3, 4): 40.0, (1, 4): 100.0}
QOS = dict(classes=[dict(name="ef", dscp=[46], rank=0, rate_mbps=8), dict(name="rest", rank=1, default=True)])


def ring_links(rates: dict | None = None):
    """Both directions of a ring 1-2-3-4-1 with ``RING_CAPACITY`` and ``rates``."""
    rates = rates or {}
    out = []
    for (a, b), cap in RING_CAPACITY.items():
        out += [(a, b, cap, rates.get((a, b), 0.0)), (b, a, cap, rates.get((b, a), 0.0))]
    return out


# ---- relief: the other ways round, at their room -------------------------------------------


def test_the_relief_of_a_ring_link_is_the_room_left_the_other_way_round():
    # 1->2 has the way 1->4->3->2 besides: its narrowest link (3-4, 40) minus what 4->3 carries.
    assert relief_mbps(ring_links(), 1, 2) == pytest.approx(40.0)
    assert relief_mbps(ring_links({(4, 3): 25.0}), 1, 2) == pytest.approx(15.0)
    assert relief_mbps(ring_links({(4, 3): 60.0}), 1, 2) == 0.0  # over capacity: no room, not negative
    assert offered_mbps(ring_links({(4, 3): 25.0}), 1, 2) == pytest.approx(115.0)
    # The link itself is not its own relief; a switch not on the graph has none.
    assert relief_mbps([(1, 2, 100.0, 0.0)], 1, 2) == 0.0
    assert relief_mbps(ring_links(), 1, 9) == 0.0


def test_the_best_spare_is_the_one_that_opens_the_widest_way():
    links = ring_links({(4, 3): 30.0})  # 1->2's other way has 10 of room
    spares = [("s1-s3", 1, 3, 50.0), ("s2-s4", 2, 4, 50.0), ("s4-s3", 4, 3, 50.0)]
    # s1-s3 opens 1->3->2 (+50, the spare's capacity); s2-s4 opens 1->4->2 (+50 as well):
    # a tie goes to the first name.
    spare, gain = best_spare(links, 1, 2, spares)
    assert (spare[0], gain) == ("s1-s3", pytest.approx(50.0))
    # A spare parallel to the narrow link widens the way round by what the rest allows.
    spare, gain = best_spare(links, 1, 2, [("s4-s3", 4, 3, 50.0)])
    assert gain == pytest.approx(50.0)
    # A spare that opens nothing (both ends beyond the link's far side) is not chosen.
    assert best_spare(links, 1, 2, [("s3-s9", 3, 9, 50.0)]) is None


# ---- links as resources --------------------------------------------------------------------


def set_rates(net, rates: dict[tuple[int, int], float]) -> None:
    """Port counters as the telemetry would set them: the tx rate of each link's source port."""
    with net.core.lock:
        for (a, b), mbps in rates.items():
            port = next(lk.src_port for lk in net.core.topology.links() if (lk.src_dp, lk.dst_dp) == (a, b))
            net.core.topology.set_port_rates(a, {port: (mbps, 0.0)})


@pytest.fixture
def net(tmp_path):
    net = build(tmp_path, capacities=RING_CAPACITY, qos=QOS)
    yield net
    net.app.close()


def test_links_with_a_stated_capacity_are_resources_with_their_own_series(net):
    links = {r.name: r for r in net.engine.resources() if r.kind == "link"}
    assert sorted(links) == ["s1-s2", "s1-s4", "s2-s1", "s2-s3", "s3-s2", "s3-s4", "s4-s1", "s4-s3"]
    assert links["s3-s4"].capacity_mbps == 40.0 and links["s3-s4"].series_id == "link:s3-s4"
    assert links["s3-s4"].switches == ("s3", "s4")
    set_rates(net, {(3, 4): 31.5})
    assert net.engine.measured()["link:s3-s4"] == pytest.approx(31.5)


def test_without_stated_capacities_or_with_link_needs_off_no_link_is_assessed(tmp_path):
    bare = build(tmp_path)
    off = build(tmp_path, store_path=tmp_path / "off.sqlite", capacities=RING_CAPACITY, link_needs="off")
    try:
        assert [r for r in bare.engine.resources() if r.kind == "link"] == []
        assert [r for r in off.engine.resources() if r.kind == "link"] == []
        assert "link:s3-s4" not in off.engine.measured()
    finally:
        bare.app.close()
        off.app.close()


def test_a_link_forecast_over_its_capacity_is_a_need_in_the_queue(net):
    # Without a template that can relieve it (no spare link here) the need is shown as
    # assessed but nothing is recommended; the slices' needs still are.
    recs = net.engine.evaluate(
        net.clock.now, {"link:s3-s4": forecast({300: 30, 900: 48}), "slice:web": forecast({300: 14})}
    )
    assert [r.resource for r in recs] == ["slice:web"]


# ---- QoS classes as resources --------------------------------------------------------------


def meter_stat(meter_id: int, byte_in: int) -> parser.OFPMeterStats:
    return parser.OFPMeterStats(
        meter_id=meter_id, flow_count=1, packet_in_count=0, byte_in_count=byte_in, duration_sec=0,
        duration_nsec=0, band_stats=[parser.OFPMeterBandStats(0, 0)],
    )


def test_a_metered_class_is_a_resource_measured_at_its_busiest_switch(net):
    ef = next(c for c in net.qos.classes if c.name == "ef").meter_id
    net.core.meter_stats(1, [meter_stat(ef, 0)], 10.0)
    net.core.meter_stats(2, [meter_stat(ef, 0)], 10.0)
    # 2 s later: s1 offered 6 Mbit/s, s2 2 Mbit/s: the per-switch rate must cover 6, not 8.
    net.core.meter_stats(1, [meter_stat(ef, 1_500_000)], 12.0)
    net.core.meter_stats(2, [meter_stat(ef, 500_000)], 12.0)
    meters = {r.name: r for r in net.engine.resources() if r.kind == "meter"}
    assert list(meters) == ["ef"]  # the unmetered class has no capacity to run out of
    assert meters["ef"].capacity_mbps == 8 and meters["ef"].series_id == "qos:ef"
    assert net.engine.measured()["meter:ef"] == pytest.approx(6.0)
    assert net.qos.rates()["ef"].offered_mbps == pytest.approx(8.0)  # the class's total is unchanged


def test_a_meter_need_is_answered_with_the_class_rate_and_deployed_to_the_meters(net):
    recs = net.engine.evaluate(net.clock.now, {"qos:ef": forecast({300: 7, 900: 12})})
    assert [r.id for r in recs] == ["meter:ef/meter_rate"]
    rate = recs[0].params["rate_mbps"]
    assert rate >= 12 / 0.9
    change = net.engine.from_recommendation(recs[0].id)
    net.engine.stage(change.id)
    assert net.engine.deploy(change.id).state == "DEPLOYED"
    ef = next(c for c in net.qos.classes if c.name == "ef")
    assert ef.rate_mbps == rate
    assert {net.switches[dp].meter_rate_kbps(ef.meter_id) for dp in net.switches} == {round(rate * 1000)}


# ---- the samples the app sends -------------------------------------------------------------


def test_the_app_sends_the_predictor_the_links_and_classes_demand(tmp_path):
    with served_predictor(tmp_path / "predictor") as predictor:
        net = build(tmp_path, capacities=RING_CAPACITY, qos=QOS, predictor=predictor.client)
        try:
            set_rates(net, {(3, 4): 12.0})
            assert net.app.feed() == 9  # 8 link directions and the metered class
            store = predictor.service.store
            assert {"link:s3-s4", "link:s1-s2", "qos:ef"} <= set(store.names())
            assert "slice:web" not in store.names()  # the slices app sends its own
            last = store.panel(["link:s3-s4", "link:s1-s2"], rows=1).values[-1]
            assert list(last) == pytest.approx([12.0, 0.0])
        finally:
            net.app.close()
