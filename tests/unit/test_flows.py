"""Tests for controller.flows: every builder encodes, specs survive the trip to a
switch and back through a flow dump, and strict deletes remove exactly their flow."""

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flooding, flows, forwarding
from controller.core import pipeline_flows
from controller.flows import FlowSpec, ForeignFlow, flow

from fakeoftable import CONTROLLER, FakeOFTable, encode, wire_flowmod

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
    flow("ingress", 0, {}, goto="forward"),
    flow("ingress", 5, {"in_port": 4, "eth_src": H1}, [("output", 1)], goto="forward"),
    flow("flood", 100, {"in_port": 2}),
    flow("flood", 10, {}, [("output", 1), ("output", 2), ("output", 5)], cookie=flooding.COOKIE),
    flow("forward", 7, {"eth_dst": H2}, [("set_field", "eth_dst", H1.upper()), ("output", 1)]),
    flow("forward", 8, {"eth_dst": H1}, [("group", 7)]),
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
    (_stats(instructions=[parser.OFPInstructionGotoTable(7)]), "goto to undeclared table 7"),
    (_stats(instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                       [parser.OFPActionPopVlan()])]),
     "OFPActionPopVlan"),
    (_stats(instructions=[parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS,
                                                       [parser.OFPActionOutput(1)])]),
     "OFPInstructionActions"),
    (_stats(instructions=[parser.OFPInstructionMeter(1)]), "OFPInstructionMeter"),
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


@pytest.mark.parametrize("table_id, left", [(ofp.OFPTT_ALL, set()), (2, {"ingress", "forward"})])
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
