"""QoS classes in a fake OpenFlow network: the controller core with the QoS provider
(and, where it matters, the slices one), fake switches running what it installs.
Judged by what happens to frames: which meters they pass, and where."""

from __future__ import annotations

import logging

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser
from prometheus_client import generate_latest

from tests.lib import fakeoftable
from apps.qos import app, dataplane
from apps.slices import dataplane as slices_dataplane
from apps.slices.manager import SliceManager
from apps.slices.vips import virtual_mac
from controller import cookies, desired
from apps.qos.config import QosConfig
from controller.flows import ETH_TYPE_IP, IP_PROTO_UDP
from controller.metrics import registry_for
from tests.lib.fakeoftable import FakeNetwork, config_for, hosts_on, ipv4_frame

LINKS = fakeoftable.DIAMOND_LINKS          # s1 -> s2 or s3 -> s4
CLASSES = {"classes": [
    {"name": "ef", "dscp": [46], "rank": 0},
    {"name": "best-effort", "dscp": [0], "rank": 2, "rate_mbps": 6},
]}


def start(qos: dict, *extra_hosts) -> FakeNetwork:
    """h1, h2 on s1 (ports 3, 4), h4 on s4 (port 3); the QoS provider registered and synced."""
    hosts = hosts_on(("h1", 1, 3), ("h2", 1, 4), ("h4", 4, 3), *extra_hosts)
    config = config_for(LINKS).model_copy(update={"qos": QosConfig.model_validate(qos)})
    net = FakeNetwork(LINKS, hosts, config).start()
    net.qos = app.provider(net.core.view, lambda: net.deliver(net.core.resync(net.now)))
    net.core.add_provider(net.qos)
    net.deliver(net.core.resync(net.now))
    names = [h.name for h in hosts]
    net.announce(*names)
    for src in ("h1", "h2"):
        net.send(src, ipv4_frame(net.host(src), net.host("h4")))       # installs the pair's path
        net.send("h4", ipv4_frame(net.host("h4"), net.host(src)))
    net.clear_inboxes()
    return net


@pytest.fixture
def net() -> FakeNetwork:
    return start(CLASSES)


def ids(net) -> dict[str, int]:
    return {c.name: c.meter_id for c in net.qos.classes}


def udp(net, src: str, dst: str, dscp: int, dst_ip: str | None = None, dst_mac: str | None = None) -> dict:
    s, d = net.host(src), net.host(dst)
    return {"eth_src": s.mac, "eth_dst": dst_mac or d.mac, "eth_type": ETH_TYPE_IP, "ipv4_src": s.ip,
            "ipv4_dst": dst_ip or d.ip, "ip_proto": IP_PROTO_UDP, "ip_dscp": dscp, "udp_src": 40000,
            "udp_dst": 5201}


def walk(net, src: str, fields: dict):
    host = net.host(src)
    result = net.walk(host.dp_id, host.port_no, fields)
    assert not result.to_controller and not result.dropped, result
    return result


def qos_flows(net, dp_id: int) -> list:
    return [s for s in net.switches[dp_id].specs() if cookies.owner_of(s.cookie) == "qos"]


def qos_meters(net, dp_id: int) -> dict:
    return {m.meter_id: m for m in net.switches[dp_id].meter_specs() if cookies.id_owner(m.meter_id) == "qos"}


def test_each_class_is_metered_once_by_its_own_meter_at_the_ingress_switch(net):
    m = ids(net)
    for dscp, meter in ((46, m["ef"]), (0, m["best-effort"])):
        there = walk(net, "h1", udp(net, "h1", "h4", dscp))
        assert there.delivered == ["h4"]
        assert len(there.entered) == 3                           # s1, a transit switch, s4
        assert there.meters == {(1, meter)}, "metered at s1 only: not in transit, not at s4"
        back = walk(net, "h4", udp(net, "h4", "h1", dscp))
        assert back.delivered == ["h1"] and back.meters == {(4, meter)}


def test_a_dscp_no_class_lists_passes_unmetered_unless_there_is_a_default_class(net):
    plain = walk(net, "h2", udp(net, "h2", "h4", 10))
    assert plain.delivered == ["h4"] and plain.meters == set()
    with_default = start({"classes": [{**CLASSES["classes"][0]},
                                      {**CLASSES["classes"][1], "default": True}]})
    caught = walk(with_default, "h2", udp(with_default, "h2", "h4", 10))
    assert caught.delivered == ["h4"] and caught.meters == {(1, ids(with_default)["best-effort"])}
    ef = walk(with_default, "h2", udp(with_default, "h2", "h4", 46))
    assert ef.meters == {(1, ids(with_default)["ef"])}, "a listed DSCP wins over the catch-all"


def test_class_rules_sit_on_host_ports_only_with_meters_where_hosts_are(net):
    m = ids(net)
    for dp_id, ports in ((1, {3, 4}), (2, set()), (3, set()), (4, {3})):
        assert {s.match_dict["in_port"] for s in qos_flows(net, dp_id)} == ports
        assert set(qos_meters(net, dp_id)) == (set(m.values()) if ports else set())
    assert qos_meters(net, 1)[m["best-effort"]].rate_kbps == 6000
    assert net.out_of_sync() == {}


def test_a_host_port_that_goes_down_loses_its_rules(net):
    net.set_port(1, 4, False)
    net.run(1.0)
    assert {s.match_dict["in_port"] for s in qos_flows(net, 1)} == {3}
    net.set_port(1, 4, True)
    net.run(net.config.controller.discovery.edge_after_s + 1.0)
    assert {s.match_dict["in_port"] for s in qos_flows(net, 1)} == {3, 4}
    assert net.out_of_sync() == {}


def test_a_reconnect_reads_the_rules_back_and_changes_nothing(net):
    net.disconnect(1)
    net.run(1.0)
    sent = len(net.sent)
    net.connect(1)                          # the dumps hold exactly our flows and meters
    net.run(2.0)
    changes = [m for _, m in net.sent[sent:] if isinstance(m, (parser.OFPFlowMod, parser.OFPMeterMod))]
    assert changes == []
    assert net.out_of_sync() == {}


def test_slice_vip_traffic_keeps_its_slice_rules_and_skips_the_classes():
    net = start(CLASSES, ("m1", 4, 4))
    slices = SliceManager(net.core.view, lambda: net.deliver(net.core.resync(net.now)), None,
                          auto_drain=False)
    net.core.add_provider(slices)
    slices.register_member("servers", "m1", net.host("m1").ip)
    net.announce("m1")
    slices.create(dict(name="web", client="acme", vip_cidr="10.50.0.0/29", bandwidth_mbps=10,
                       per_member_mbps=10, pool="servers", max_members=1, priority="bronze"), members=1)
    vip = str(slices.get("web").slice.service_vip)
    slice_in = slices_dataplane.ids(slices.get("web").index).meter_in
    to_vip = walk(net, "h1", udp(net, "h1", "m1", 0, dst_ip=vip, dst_mac=virtual_mac(vip)))
    assert to_vip.delivered == ["m1"]
    assert to_vip.meters == {(1, slice_in)}, "the slice's meter, not best effort's"
    # Other traffic of the same host is still classified.
    assert walk(net, "h1", udp(net, "h1", "h4", 0)).meters == {(1, ids(net)["best-effort"])}
    assert net.out_of_sync() == {}


def meter_stat(meter_id: int, byte_in: int, dropped: int) -> parser.OFPMeterStats:
    return parser.OFPMeterStats(meter_id=meter_id, flow_count=1, packet_in_count=0, byte_in_count=byte_in,
                                duration_sec=0, duration_nsec=0,
                                band_stats=[parser.OFPMeterBandStats(0, dropped)])


def test_meter_counters_become_class_rates_metrics_and_logs(net, caplog):
    m = ids(net)
    foreign = cookies.meter_id("slices", 0)
    net.core.meter_stats(1, [meter_stat(m["ef"], 0, 0), meter_stat(m["best-effort"], 0, 0),
                             meter_stat(foreign, 0, 0)], 10.0)
    with caplog.at_level(logging.INFO, logger="apps.qos.app"):
        # 2 s later: ef offered 5 Mbit/s, best effort 10 of which 4 dropped.
        net.core.meter_stats(1, [meter_stat(m["ef"], 1_250_000, 0),
                                 meter_stat(m["best-effort"], 2_500_000, 1_000_000)], 12.0)
    rates = net.qos.rates()
    assert rates["ef"].offered_mbps == pytest.approx(5.0) and rates["ef"].dropped_mbps == 0
    assert rates["best-effort"].offered_mbps == pytest.approx(10.0)
    assert rates["best-effort"].delivered_mbps == pytest.approx(6.0)
    assert "class best-effort (rank 2) over its 6 Mbit/s: offered 10.00, dropped 4.00 Mbit/s" in caplog.text
    text = generate_latest(registry_for(net.core)).decode()
    assert 'foresight_qos_rate_mbps{class="best-effort",measure="dropped"} 4.0' in text
    assert 'foresight_qos_rate_mbps{class="ef",measure="offered"} 5.0' in text
    assert 'foresight_qos_bytes_total{class="best-effort",measure="dropped"} 1e+06' in text
    assert 'foresight_qos_limit_mbps{class="best-effort",rank="2"} 6.0' in text
    assert 'foresight_qos_limit_mbps{class="ef",rank="0"} 0.0' in text


def test_the_factory_loads_by_name_and_an_empty_section_installs_nothing(caplog):
    net = FakeNetwork(LINKS, hosts_on(("h1", 1, 3)), config_for(LINKS)).start()
    factory = desired.load_factory("apps.qos.app:provider")
    with caplog.at_level(logging.WARNING, logger="apps.qos.app"):
        provider = factory(net.core.view, lambda: None)
    assert provider.name == "qos" and provider.classes == ()
    assert "qos.classes is empty" in caplog.text
    net.core.add_provider(provider)
    net.deliver(net.core.resync(net.now))
    assert qos_flows(net, 1) == [] and qos_meters(net, 1) == {}


def test_desired_reuses_what_it_built_for_the_same_host_ports(net):
    first = net.qos.desired(1, net.now)
    assert net.qos.desired(1, net.now) is first
    assert net.qos.desired(2, net.now) == dataplane.switch_entries(net.qos.classes, [], 0.1)


def test_a_metered_class_rate_is_a_knob_the_switches_follow(net):
    (knob,) = net.qos.knobs()                         # ef is unmetered: no knob
    assert (knob.kind, knob.target, knob.field, knob.value) == ("meter", "best-effort", "rate_mbps", 6)
    assert net.core.view.set_knob("meter", "best-effort", "rate_mbps", 9.5).value == 9.5
    meter = qos_meters(net, 1)[ids(net)["best-effort"]]
    assert meter.rate_kbps == 9500
    from controller.appbase import KnobError
    with pytest.raises(KnobError, match="no app has this knob"):
        net.core.view.set_knob("meter", "ef", "rate_mbps", 5)
    with pytest.raises(KnobError, match="outside"):
        net.qos.set_knob("meter", "best-effort", "rate_mbps", 0)
