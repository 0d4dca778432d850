"""The packet-in meter (``controller.discovery.packet_in_pps``): data-plane frames a
switch sends to the controller (the forward table's miss, broadcast ARP) pass one
packets/s meter per switch, LLDP never does; the meter is installed with the
configured rate, changing the setting swaps flows and meter without a moment with
no table-miss, 0 leaves packet-ins unmetered, a switch without meters gets them
unmetered, and the meter's counters reach the core's. Judged by what the flows do to
frames in the fake switches."""

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, lldp, meters
from controller.config import ConfigError, parse
from controller.core import PACKET_IN_METER, ControllerCore, pipeline_flows
from controller.meters import MeterSpec

from tests.lib.fakeoftable import (CONTROLLER, TRIANGLE_LINKS, FakeHost, arp_request, config_for,
                                   frame_fields, ipv4_frame, triangle, wire_metermod)


def _to_controller(net, dp_id: int, in_port: int, data: bytes) -> list[tuple]:
    """The meters each copy of ``data`` sent to the controller passed, entering at dp_id:in_port."""
    return [egress.meters for egress in net.switches[dp_id].process(frame_fields(data, in_port))
            if egress.port == CONTROLLER]


def _frames(net) -> dict[str, tuple[int, int, bytes]]:
    """One frame of each kind the controller hears, as (dp_id, in_port, data)."""
    h1 = net.host("h1")
    stranger = FakeHost("x", 0, 0, "02:00:00:00:99:99", "10.0.9.9")
    return {"lldp": (2, 1, lldp.build(1, 1, net.hw_addr(1, 1))),
            "arp": (h1.dp_id, h1.port_no, arp_request(h1, "10.0.9.9")),
            "unknown unicast": (h1.dp_id, h1.port_no, ipv4_frame(h1, stranger))}


def _pipeline_meters(net, dp_id: int) -> set[MeterSpec]:
    return {m for m in net.switches[dp_id].meter_specs() if cookies.id_owner(m.meter_id) == "pipeline"}


# ---- which flows pass the meter -------------------------------------------------------------------

def test_data_plane_frames_to_the_controller_pass_the_meter_and_lldp_does_not():
    net = triangle()
    frames = _frames(net)
    assert _to_controller(net, *frames["lldp"]) == [()]
    assert _to_controller(net, *frames["arp"]) == [(PACKET_IN_METER,)]
    assert _to_controller(net, *frames["unknown unicast"]) == [(PACKET_IN_METER,)]
    assert net.out_of_sync() == {}


def test_the_metered_flows_are_the_built_in_ones_that_send_to_the_controller():
    metered = pipeline_flows(PACKET_IN_METER)
    plain = pipeline_flows()
    assert [s.key for s in metered] == [s.key for s in plain]
    to_controller = {s.key for s in plain if ("controller",) in s.actions}
    lldp_key = next(s.key for s in plain if s.match_dict.get("eth_type") == 0x88CC)
    assert {s.key for s in metered if s.meter == PACKET_IN_METER} == to_controller - {lldp_key}
    assert {("forward", 0, ()), lldp_key} <= to_controller
    assert all(s.meter is None for s in plain)


# ---- the meter on the switch ---------------------------------------------------------------------

@pytest.mark.parametrize("discovery, rate, burst", [
    ({}, 1000, 1000),                                           # the default: one second's worth
    ({"packet_in_pps": 200}, 200, 200),
    ({"packet_in_pps": 200, "packet_in_burst_pkts": 50}, 200, 50),
])
def test_every_switch_gets_the_meter_at_the_configured_rate(discovery, rate, burst):
    net = triangle(**discovery)
    for dp_id in (1, 2, 3):
        assert _pipeline_meters(net, dp_id) == {MeterSpec(PACKET_IN_METER, rate_pps=rate, burst_pkts=burst)}
        wire = net.switches[dp_id].meters[PACKET_IN_METER]
        assert wire.flags == ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
        (band,) = wire.bands
        assert (band.rate, band.burst_size) == (rate, burst)
    (add,) = {wire_metermod(m).meter_id for _, m in net.sent if isinstance(m, parser.OFPMeterMod)}
    assert add == PACKET_IN_METER


def test_zero_leaves_packet_ins_unmetered():
    net = triangle(packet_in_pps=0)
    frames = _frames(net)
    for kind in ("lldp", "arp", "unknown unicast"):
        assert _to_controller(net, *frames[kind]) == [()], kind
    assert all(not sw.meters for sw in net.switches.values())
    assert not [m for _, m in net.sent if isinstance(m, (parser.OFPMeterMod, parser.OFPMeterStatsRequest))]
    assert net.out_of_sync() == {}


def _restart_core(net, **discovery) -> int:
    """A controller with other settings takes over the switches; returns where its messages start."""
    mark = len(net.sent)
    net.connected.clear()
    net.config = config_for(TRIANGLE_LINKS, **discovery)
    net.core = ControllerCore(net.config)
    for dp_id in sorted(net.switches):
        net.connect(dp_id)
    net.run(2.0)
    return mark


@pytest.mark.parametrize("before, after", [
    ({}, {"packet_in_pps": 0}), ({"packet_in_pps": 0}, {}), ({}, {"packet_in_pps": 50}),
])
def test_a_new_setting_swaps_flows_and_meter_with_the_table_miss_never_missing(before, after):
    net = triangle(**before)
    mark = _restart_core(net, **after)
    # The fake switch deletes the flows of a deleted meter and refuses a flow whose
    # meter is missing: a wrong order would show up here.
    assert net.out_of_sync() == {}
    frames = _frames(net)
    meter = PACKET_IN_METER if after.get("packet_in_pps", 1) else None
    assert _to_controller(net, *frames["unknown unicast"]) == [(meter,) if meter else ()]
    assert _to_controller(net, *frames["lldp"]) == [()]
    kinds = [type(m).__name__ for _, m in net.sent[mark:]
             if isinstance(m, (parser.OFPMeterMod, parser.OFPFlowMod))]
    assert kinds.count("OFPMeterMod") == 3, "one meter add, modify or delete per switch"


def test_a_switch_that_refuses_the_meter_dump_gets_its_packet_ins_unmetered():
    net = triangle()
    switch = net.switches[2]
    switch.apply(meters.to_delete(ofp.OFPM_ALL))       # as a switch without meters holds none
    net.disconnect(2)
    net.connected.add(2)
    net.core.switch_connected(2, net.port_objects(2), net.now)
    assert net.core.flows_dumped(2, switch.dump(), net.now) == []
    assert net.core.groups_dumped(2, switch.dump_groups(), net.now) == []
    net.deliver(net.core.dump_failed(2, "meters", net.now))
    assert switch.meters == {}
    assert net.out_of_sync() == {}
    stranger = FakeHost("x", 0, 0, "02:00:00:00:99:99", "10.0.9.9")
    h2 = net.host("h2")
    assert _to_controller(net, 2, h2.port_no, ipv4_frame(h2, stranger)) == [()]
    assert _pipeline_meters(net, 1) == {MeterSpec(PACKET_IN_METER, rate_pps=1000, burst_pkts=1000)}


# ---- counters ----------------------------------------------------------------------------------------

def _meter_stats(packets: int, dropped: int, meter_id: int = PACKET_IN_METER) -> parser.OFPMeterStats:
    return parser.OFPMeterStats(meter_id=meter_id, flow_count=2, packet_in_count=packets, byte_in_count=0,
                                duration_sec=1, duration_nsec=0,
                                band_stats=[parser.OFPMeterBandStats(packet_band_count=dropped,
                                                                     byte_band_count=0)])


def test_the_meter_counters_reach_the_core_and_only_grow():
    net = triangle()
    core = net.core
    polls = [m for _, m in net.sent if isinstance(m, parser.OFPMeterStatsRequest)]
    assert polls, "meter counters are polled when packet-ins are metered, with no provider asking"
    slice_meter = _meter_stats(7, 7, cookies.meter_id("slices", 1))      # not the packet-in meter
    core.meter_stats(1, [_meter_stats(5000, 4000), slice_meter], net.now)
    core.meter_stats(2, [_meter_stats(100, 0)], net.now)
    assert (core.counters["packet_in_meter_packets"], core.counters["packet_in_meter_drops"]) == (5100, 4000)
    core.meter_stats(1, [_meter_stats(6000, 4500)], net.now)
    assert (core.counters["packet_in_meter_packets"], core.counters["packet_in_meter_drops"]) == (6100, 4500)
    core.meter_stats(1, [_meter_stats(30, 10)], net.now)          # the meter was added anew
    assert (core.counters["packet_in_meter_packets"], core.counters["packet_in_meter_drops"]) == (6130, 4510)


# ---- configuration ----------------------------------------------------------------------------------

def test_defaults_meter_packet_ins_at_1000_per_second_with_a_second_of_burst():
    discovery = parse("").controller.discovery
    settings = (discovery.packet_in_pps, discovery.packet_in_burst_pkts, discovery.packet_in_burst)
    assert settings == (1000, 0, 1000)


@pytest.mark.parametrize("value, key", [
    ("{packet_in_pps: -1}", "controller.discovery.packet_in_pps"),
    ("{packet_in_pps: 2.5}", "controller.discovery.packet_in_pps"),
    ("{packet_in_pps: true}", "controller.discovery.packet_in_pps"),
    ("{packet_in_pps: '1000'}", "controller.discovery.packet_in_pps"),
    ("{packet_in_pps: 1000001}", "controller.discovery.packet_in_pps"),
    ("{packet_in_burst_pkts: -5}", "controller.discovery.packet_in_burst_pkts"),
    ("{packet_in_pps: 0, packet_in_burst_pkts: 10}", "packet_in_burst_pkts is set but packet_in_pps is 0"),
    ("{packet_in_ppps: 10}", "controller.discovery.packet_in_ppps: unknown key"),
])
def test_bad_packet_in_settings_are_refused_naming_the_key(value, key):
    with pytest.raises(ConfigError) as err:
        parse(f"controller:\n  discovery: {value}\n")
    assert key in str(err.value)


def test_the_example_config_documents_the_settings():
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "controller" / "config.example.yaml"
    text = path.read_text()
    assert "packet_in_pps: 1000" in text and "packet_in_burst_pkts: 0" in text
    assert parse(text).controller.discovery == parse("").controller.discovery
