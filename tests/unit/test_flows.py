"""Tests for controller.flows: every builder encodes, specs survive the trip to a
switch and back through a flow dump, and strict deletes remove exactly their flow."""

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flooding, flows, forwarding
from controller.core import pipeline_flows
from controller.flows import FlowSpec, ForeignFlow, flow
from controller.pipeline import PIPELINE, PipelineError

from tests.lib.fakeoftable import CONTROLLER, FakeOFTable, FakeSwitchError, encode, wire_flowmod

H1, H2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
DATA = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + b"payload" * 8

BUILDERS = {
    "flowmod": (lambda: flows.to_flowmod(flow("forward", 5, {"eth_dst": H2}, [("output", 2)])),
                ofp.OFPT_FLOW_MOD),
    "delete_strict": (lambda: flows.to_delete(flow("forward", 5, {"eth_dst": H2})), ofp.OFPT_FLOW_MOD),
    "delete_all": (flows.delete_all, ofp.OFPT_FLOW_MOD),
    "delete_table": (lambda: flows.delete_all(2), ofp.OFPT_FLOW_MOD),
    "packet_out": (lambda: flows.packet_out(ofp.OFPP_CONTROLLER, [("output", 3)], DATA),
                   ofp.OFPT_PACKET_OUT),
    "packet_out_to_table": (lambda: flows.packet_out_to_table(3, DATA), ofp.OFPT_PACKET_OUT),
    "port_stats_request": (flows.port_stats_request, ofp.OFPT_MULTIPART_REQUEST),
    "flow_stats_request": (flows.flow_stats_request, ofp.OFPT_MULTIPART_REQUEST),
    "port_desc_request": (flows.port_desc_request, ofp.OFPT_MULTIPART_REQUEST),
    "barrier": (flows.barrier, ofp.OFPT_BARRIER_REQUEST),
    "set_async_defaults": (flows.set_async_defaults, ofp.OFPT_SET_CONFIG),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder_serialises(name):
    build, msg_type = BUILDERS[name]
    buf = encode(build())
    version, got_type, length, _ = ofproto_parser.header(buf)
    assert (version, got_type, length) == (ofp.OFP_VERSION, msg_type, len(buf))


def test_packet_out_carries_the_frame_and_ports():
    msg = flows.packet_out(ofp.OFPP_CONTROLLER, [("output", 3), ("output", 4)], DATA)
    assert encode(msg).endswith(DATA)
    assert [a.port for a in msg.actions] == [3, 4]
    to_table = flows.packet_out_to_table(7, DATA)
    assert to_table.in_port == 7 and [a.port for a in to_table.actions] == [ofp.OFPP_TABLE]


def _dumped(spec: FlowSpec) -> parser.OFPFlowStats:
    """What a switch holding ``spec`` returns in a flow dump (via the wire encoding)."""
    fm = wire_flowmod(flows.to_flowmod(spec))
    return parser.OFPFlowStats(table_id=fm.table_id, duration_sec=1, duration_nsec=0,
                               priority=fm.priority, idle_timeout=0, hard_timeout=0, flags=0,
                               cookie=fm.cookie, packet_count=3, byte_count=300,
                               match=fm.match, instructions=fm.instructions)


ROUND_TRIP = [
    flow("forward", 10, {"eth_dst": ("01:00:00:00:00:00", "01:00:00:00:00:00")}, goto="flood",
         cookie=cookies.cookie("pipeline")),
    flow("forward", 1000, {"eth_src": H1, "eth_dst": H2}, [("output", 3)],
         cookie=cookies.cookie("forwarding", 42)),
    flow("forward", 1000, {"eth_src": H1.upper(), "eth_dst": H2.upper()}, [("output", 3)]),
    flow("ingress", 3000, {"eth_type": 0x88CC}, [("controller",)]),
    flow("ingress", 0, {}, goto="classify"),
    flow("ingress", 5, {"in_port": 4, "eth_src": H1}, [("output", 1)], goto="classify"),
    flow("flood", 100, {"in_port": 2}),
    flow("flood", 10, {}, [("output", 1), ("output", 2), ("output", 5)], cookie=flooding.COOKIE),
    flow("forward", 7, {"eth_dst": H2}, [("set_field", "eth_dst", H1.upper()), ("output", 1)]),
    flow("forward", 8, {"eth_dst": H1}, [("group", 7)]),
    flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": "10.9.0.100"},
         [("group", cookies.group_id("slices", 1))], meter=cookies.meter_id("slices", 1),
         cookie=cookies.cookie("slices", 1)),
    flow("classify", 90, {"eth_type": 0x0800, "ipv4_src": ("10.1.0.0", "255.255.0.0"), "ip_proto": 17,
                       "udp_dst": 53}, [("set_field", "ip_dscp", 46)], goto="forward", meter=3),
    flow("classify", 80, {"eth_type": 0x0800, "ip_proto": 6, "tcp_dst": 80, "ipv4_dst": "10.9.0.100"},
         [("set_field", "eth_dst", H2), ("set_field", "ipv4_dst", "10.0.0.2"),
          ("set_field", "eth_src", H1), ("set_field", "ipv4_src", "10.9.0.100"), ("output", 2)]),
    # Fast-failover detours (controller.detours): tagged frames, untagging, turning back.
    flow("forward", 1200, {"eth_dst": H2, "vlan_vid": 0x1000 | 77}, [("pop_vlan",), ("output", 3)]),
    flow("forward", 1100, {"vlan_vid": (0x1000, 0x1000)}, []),
    flow("ingress", 1500, {"vlan_vid": (0x1000, 0x1000)}, goto="forward"),
    flow("forward", 9, {"eth_dst": H2}, [("push_vlan", 0x8100), ("set_field", "vlan_vid", 0x1000 | 5),
                                         ("in_port",)]),
] + pipeline_flows()


@pytest.mark.parametrize("spec", ROUND_TRIP, ids=FlowSpec.describe)
def test_flowmod_round_trip_through_a_dump(spec):
    back = flows.from_stats(_dumped(spec))
    assert back == spec
    assert back.key == spec.key


def test_mac_case_does_not_change_a_flow():
    upper = flow("forward", 1000, {"eth_src": H1.upper(), "eth_dst": H2}, [("output", 3)])
    lower = flow("forward", 1000, {"eth_src": H1, "eth_dst": H2}, [("output", 3)])
    assert upper == lower


def _stats(table_id=1, instructions=(), match=None):
    return parser.OFPFlowStats(table_id=table_id, duration_sec=0, duration_nsec=0, priority=1,
                               idle_timeout=0, hard_timeout=0, flags=0, cookie=0, packet_count=0,
                               byte_count=0, match=match or parser.OFPMatch(),
                               instructions=list(instructions))


@pytest.mark.parametrize("stats, reason", [
    (_stats(table_id=9), "table 9 is not in the pipeline"),
    (_stats(instructions=[parser.OFPInstructionGotoTable(20)]), "goto to undeclared table 20"),
    (_stats(instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                       [parser.OFPActionPushMpls(0x8847)])]),
     "OFPActionPushMpls"),
    (_stats(instructions=[parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS,
                                                       [parser.OFPActionOutput(1)])]),
     "OFPInstructionActions"),
    (_stats(instructions=[parser.OFPInstructionWriteMetadata(1, 1)]), "OFPInstructionWriteMetadata"),
])
def test_from_stats_refuses_flows_we_never_produce(stats, reason):
    with pytest.raises(ForeignFlow, match=reason):
        flows.from_stats(stats)


# ---- what the messages do on a switch ---------------------------------------------------------

def _switch_with_pipeline() -> FakeOFTable:
    switch = FakeOFTable()
    switch.apply_all(flows.to_flowmod(s) for s in pipeline_flows())
    return switch


def test_strict_delete_removes_exactly_its_flow():
    switch = _switch_with_pipeline()
    keep_prio = flow("forward", 500, {"eth_src": H1, "eth_dst": H2}, [("output", 1)])
    doomed = flow("forward", 1000, {"eth_src": H1, "eth_dst": H2}, [("output", 2)])
    keep_match = flow("forward", 1000, {"eth_src": H2, "eth_dst": H1}, [("output", 3)])
    switch.apply_all(flows.to_flowmod(s) for s in (keep_prio, doomed, keep_match))
    fields = {"in_port": 9, "eth_src": H1, "eth_dst": H2}
    assert switch.lookup(fields) == [2]
    switch.apply(flows.to_delete(doomed))
    assert switch.specs() == set(pipeline_flows()) | {keep_prio, keep_match}
    assert switch.lookup(fields) == [1]


def test_add_with_same_table_priority_and_match_replaces():
    switch = _switch_with_pipeline()
    switch.apply(flows.to_flowmod(flow("forward", 10, {"eth_dst": H2}, [("output", 1)])))
    switch.apply(flows.to_flowmod(flow("forward", 10, {"eth_dst": H2}, [("output", 2)])))
    assert len(switch) == len(pipeline_flows()) + 1
    assert switch.lookup({"in_port": 5, "eth_dst": H2}) == [2]


@pytest.mark.parametrize("table_id, left", [(ofp.OFPTT_ALL, set()),
                                            (PIPELINE.table("flood").table_id,
                                             {"ingress", "classify", "forward"})])
def test_delete_all_clears_the_named_tables(table_id, left):
    switch = _switch_with_pipeline()
    switch.apply(flows.delete_all(table_id))
    assert {s.table for s in switch.specs()} == left


def test_masked_multicast_match_sends_broadcast_to_flood():
    switch = _switch_with_pipeline()
    switch.apply(flows.to_flowmod(flow("flood", 10, {}, [("output", 1), ("output", 2), ("output", 3)])))
    switch.apply(flows.to_flowmod(flow("forward", forwarding.PRIO_PATH, {"eth_src": H1, "eth_dst": H2},
                                       [("output", 2)])))
    base = {"in_port": 1, "eth_src": H1, "eth_type": 0x0800}
    assert switch.lookup(dict(base, eth_dst="ff:ff:ff:ff:ff:ff")) == [2, 3]
    assert switch.lookup(dict(base, eth_dst="33:33:00:00:00:01")) == [2, 3]
    assert switch.lookup(dict(base, eth_dst=H2)) == [2]
    assert switch.lookup(dict(base, eth_dst="02:00:00:00:00:99")) == [CONTROLLER]
    assert switch.lookup(dict(base, eth_type=0x88CC, eth_dst="01:80:c2:00:00:0e")) == [CONTROLLER]


# ---- rewrites, meters, prerequisites ---------------------------------------------------------

IP = {"eth_type": 0x0800}


@pytest.mark.parametrize("actions, message", [
    ([("set_field", "mpls_label", 5)], "set_field 'mpls_label' not supported"),
    ([("set_field", "vlan_vid", 5)], "not OFPVID_PRESENT"),
    ([("push_vlan",)], "push_vlan takes one ethertype"),
    ([("pop_vlan", 1)], "pop_vlan takes no argument"),
    ([("set_field", "eth_dst", "not-a-mac")], "not a MAC address"),
    ([("set_field", "ipv4_dst", "10.0.0.300")], "not an IPv4 address"),
    ([("set_field", "ipv4_dst", "10.0.0.0/24")], "needs one address"),
    ([("set_field", "ip_dscp", 64)], "DSCP value 0..63"),
    ([("set_field", "eth_dst")], "takes a field and a value"),
    ([("output",)], "needs one output number"),
    ([("group", -1)], "needs one group number"),
])
def test_bad_actions_raise_naming_the_problem(actions, message):
    with pytest.raises(PipelineError, match=message):
        flow("classify", 10, IP, actions)


@pytest.mark.parametrize("match, actions, message", [
    ({"ipv4_dst": "10.0.0.1"}, [], r"match on ipv4_dst needs eth_type=0x800"),
    ({"eth_type": 0x0800, "tcp_dst": 80}, [], r"match on tcp_dst needs ip_proto=0x6"),
    ({"eth_type": 0x0800, "ip_proto": 6, "udp_dst": 53}, [], r"match on udp_dst needs ip_proto=0x11"),
    ({"ip_proto": 6}, [], r"match on ip_proto needs eth_type=0x800"),
    ({}, [("set_field", "ipv4_dst", "10.0.0.2")], r"set_field on ipv4_dst needs eth_type=0x800"),
    ({"eth_type": 0x0806}, [("set_field", "ip_dscp", 10)], r"set_field on ip_dscp needs eth_type=0x800"),
])
def test_missing_openflow_prerequisites_raise(match, actions, message):
    # Open vSwitch refuses these (OFPBMC_BAD_PREREQ, OFPBAC_MATCH_INCONSISTENT).
    with pytest.raises(PipelineError, match=message):
        flow("classify", 10, match, actions)


def test_ethernet_rewrites_need_no_prerequisite():
    spec = flow("classify", 10, {}, [("set_field", "eth_src", H1.upper()), ("output", 1)])
    assert spec.actions[0] == ("set_field", "eth_src", H1)


@pytest.mark.parametrize("given, canonical", [
    ("10.0.0.1", "10.0.0.1"),
    ("10.0.0.1/32", "10.0.0.1"),
    (("10.0.0.1", "255.255.255.255"), "10.0.0.1"),
    ("10.1.2.3/16", ("10.1.0.0", "255.255.0.0")),
    (("10.1.2.3", "255.255.0.0"), ("10.1.0.0", "255.255.0.0")),
])
def test_ipv4_matches_are_canonical_so_they_compare_with_a_dump(given, canonical):
    spec = flow("classify", 10, dict(IP, ipv4_dst=given))
    assert spec.match_dict["ipv4_dst"] == canonical
    assert flows.from_stats(_dumped(spec)) == spec


@pytest.mark.parametrize("meter", [0, ofp.OFPM_MAX + 1, "1"])
def test_meter_out_of_range_raises(meter):
    with pytest.raises(PipelineError, match="meter"):
        flow("classify", 10, IP, meter=meter)


def test_meter_instruction_is_encoded_and_read_back():
    spec = flow("classify", 10, IP, goto="forward", meter=cookies.meter_id("slices", 2))
    fm = wire_flowmod(flows.to_flowmod(spec))
    assert [type(i).__name__ for i in fm.instructions] == ["OFPInstructionMeter", "OFPInstructionGotoTable"]
    assert flows.from_stats(_dumped(spec)).meter == spec.meter
    assert spec.describe().startswith("classify/10 eth_type=2048 -> meter:0x4000002")


def test_set_field_rewrites_the_packet_from_that_action_on():
    switch = _switch_with_pipeline()
    switch.apply(flows.to_flowmod(flow("classify", 10, dict(IP, ipv4_dst="10.9.0.100"), [
        ("output", 1), ("set_field", "ipv4_dst", "10.0.0.2"), ("set_field", "eth_dst", H2),
        ("set_field", "ip_dscp", 46), ("output", 2)])))
    before, after = switch.process({"in_port": 5, "eth_src": H1, "eth_dst": "02:00:00:00:00:64",
                                    "eth_type": 0x0800, "ipv4_dst": "10.9.0.100", "ip_dscp": 0})
    assert (before.port, before.headers["ipv4_dst"], before.headers["eth_dst"]) == \
        (1, "10.9.0.100", "02:00:00:00:00:64")
    assert (after.port, after.headers["ipv4_dst"], after.headers["eth_dst"], after.headers["ip_dscp"]) == \
        (2, "10.0.0.2", H2, 46)


def test_fake_switch_refuses_rewrites_without_prerequisites_like_ovs():
    bad = parser.OFPFlowMod(datapath=None, table_id=1, command=ofp.OFPFC_ADD, priority=5,
                            match=parser.OFPMatch(), instructions=[parser.OFPInstructionActions(
                                ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionSetField(ipv4_dst="10.0.0.2")])])
    # (OVS answers OFPBAC_MATCH_INCONSISTENT for a rewrite, OFPBMC_BAD_PREREQ for a match.)
    with pytest.raises(FakeSwitchError, match=r"set_field ipv4_dst needs eth_type=2048 \(OFPBAC_MATCH_INCON"):
        FakeOFTable().apply(bad)


def test_rewritten_frame_bytes_carry_the_new_addresses_and_valid_checksums():
    from os_ken.lib.packet import ipv4, packet, udp

    from tests.lib import fakeoftable
    src = fakeoftable.FakeHost("h1", 1, 1, H1, "10.0.0.1")
    frame = fakeoftable.udp_frame(src, "02:00:00:00:00:64", "10.9.0.100", 1234, 80)
    out = fakeoftable.rewrite(frame, {"eth_dst": H2, "ipv4_dst": "10.0.0.2"})
    assert fakeoftable.frame_fields(out, 1) == dict(fakeoftable.frame_fields(frame, 1), eth_dst=H2,
                                                    ipv4_dst="10.0.0.2")
    # Checksums computed from scratch over the rewritten frame are the ones it carries.
    fresh = packet.Packet(out)
    fresh.get_protocol(ipv4.ipv4).csum = 0
    fresh.get_protocol(udp.udp).csum = 0
    fresh.serialize()
    assert bytes(fresh.data) == out
    assert out[24:26] != frame[24:26]           # the IPv4 checksum did change
