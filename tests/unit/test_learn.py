"""Tests for connection pins with NX learn (controller.flows.Learn): the builder names
what is wrong, a flow carrying a learn survives the trip to a switch and back (our
encoding and what Open vSwitch 3.1 really dumps), a bucket refuses a learn as OVS would
ignore it, the fake switch pins a connection so that scaling a select group does not
move it, and reconciliation leaves the learned flows alone."""

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from controller import cookies, desired, flows, groups
from controller.desired import Desired
from controller.flows import ForeignFlow, Learn, flow
from controller.groups import Bucket, GroupError, GroupSpec
from controller.pipeline import PipelineError

from tests.lib.fakeoftable import FakeOFTable, FakeSwitchError, encode, wire_flowmod, wire_groupmod

VIP, VIP_MAC = "10.77.0.100", "02:77:00:00:00:64"
MEMBERS = {k: (k, f"02:77:00:00:00:0{k}", f"10.77.0.{k}") for k in (1, 2, 3, 4)}   # key: (port, MAC, IP)
CLIENT_PORT = 9
GID = cookies.group_id("slices", 1)
COOKIE = cookies.cookie("slices", 1)
TCP_VIP = {"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": VIP}


def pin(key: int, **changes) -> Learn:
    port, mac, ip = MEMBERS[key]
    args = dict(table="lb", priority=3000, cookie=cookies.cookie("learned", key), idle_timeout=60,
                fin_idle_timeout=2, fixed=TCP_VIP, copied=("ipv4_src", "tcp_src", "tcp_dst"),
                loads={"eth_dst": mac, "ipv4_dst": ip}, output=port)
    return flows.learn(**{**args, **changes})


def member_flow(key: int) -> flows.FlowSpec:
    """Table member: the connection's first packet pins it to member ``key``, then goes there."""
    port, mac, ip = MEMBERS[key]
    return flow("member", 100, {**TCP_VIP, "reg6": key},
                [("learn", pin(key)), ("set_field", "eth_dst", mac), ("set_field", "ipv4_dst", ip),
                 ("output", port)], cookie=COOKIE)


def select_group(keys) -> GroupSpec:
    return GroupSpec(GID, "select", tuple(Bucket(actions=(("set_field", "reg6", k), ("resubmit", "member")))
                                          for k in keys))


VIP_FLOWS = [flow("ingress", 0, {}, goto="classify"),
             flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": VIP}, goto="lb", cookie=COOKIE),
             flow("lb", 200, TCP_VIP, [("group", GID)], cookie=COOKIE)]


# ---- the builder ------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(table="acl"), "unknown table 'acl'"),
    (dict(copied=("ip_dscp",)), "cannot match 'ip_dscp' in a learned flow"),
    (dict(table="member"), r"match field 'ipv4_src' not declared in table member"),
    (dict(fixed={"eth_type": 0x0800, "ipv4_dst": VIP}), "matches tcp_dst, which needs ip_proto=0x6 fixed"),
    (dict(fixed={"ip_proto": 6}, copied=(), loads={}), "matches ip_proto, which needs eth_type=0x800 fixed"),
    (dict(fixed={}, copied=(), loads={"ipv4_dst": "10.77.0.1"}),
     "loads ipv4_dst, which needs eth_type=0x800"),
    (dict(fixed=[("ip_proto", 6), ("ip_proto", 17)]), "a field is fixed or loaded twice"),
    (dict(loads={"tcp_dst": 80}), "cannot load 'tcp_dst'"),
    (dict(fixed={**TCP_VIP, "ipv4_dst": "10.77.0.0/24"}), "ipv4_dst: needs one address"),
    (dict(fixed={**TCP_VIP, "ip_proto": 300}), "ip_proto=300 is not a 8-bit value"),
    (dict(loads={"eth_dst": "02:77:00:00:00"}), "eth_dst: not a MAC address"),
    (dict(output=0), r"output 0 is not a port 1..0xfeff"),
    (dict(output=0xFF00), "is not a port"),
    (dict(priority=70000), "priority 70000 out of range"),
    (dict(cookie=-1), "cookie -1 out of range"),
    (dict(fin_idle_timeout=1 << 16), "fin_idle_timeout 65536 out of range"),
    (dict(copied=("ipv4_src", "ipv4_dst")), "must name distinct fields, none fixed"),
    (dict(copied="tcp_src"), "must name distinct fields"),
])
def test_builder_names_what_is_wrong(changes, message):
    with pytest.raises(PipelineError, match=message) as err:
        pin(1, **changes)
    assert err.value.args[0].startswith(("learn into", "unknown table"))


def test_a_learn_is_canonical_and_hashable():
    a = pin(1, fixed={"ipv4_dst": VIP, "ip_proto": 6, "eth_type": 0x0800},
            copied=("tcp_dst", "tcp_src", "ipv4_src"),
            loads={"ipv4_dst": "10.77.0.1", "eth_dst": "02:77:00:00:00:01".upper()})
    assert a == pin(1) and hash(a) == hash(pin(1))
    assert a.fixed == (("eth_type", 0x0800), ("ip_proto", 6), ("ipv4_dst", VIP))
    assert a.copied == ("ipv4_src", "tcp_dst", "tcp_src")
    assert a.loads == (("eth_dst", "02:77:00:00:00:01"), ("ipv4_dst", "10.77.0.1"))
    # A Learn made by hand is checked and normalised where actions are.
    raw = Learn("lb", 3000, a.cookie, 60, 0, 2, 0, dict(a.fixed), ("tcp_src", "tcp_dst", "ipv4_src"),
                {"ipv4_dst": "10.77.0.1", "eth_dst": "02:77:00:00:00:01"}, 1)
    assert flows.check_actions([("learn", raw)]) == (("learn", a),)
    with pytest.raises(PipelineError, match="'tcp_src' is not a Learn"):
        flows.check_actions([("learn", "tcp_src")])


def test_a_flow_must_guarantee_what_its_learn_copies():
    with pytest.raises(PipelineError, match=r"learn \(copied\) on ipv4_src needs eth_type=0x800"):
        flow("member", 100, {"reg6": 1}, [("learn", pin(1))])
    with pytest.raises(PipelineError, match=r"learn \(copied\) on tcp_dst needs ip_proto=0x6 in the match"):
        flow("member", 100, {"eth_type": 0x0800, "reg6": 1}, [("learn", pin(1))])


def test_describe_shows_the_learned_flow():
    text = member_flow(1).describe()
    assert text.startswith("member/100 eth_type=2048,ip_proto=6,ipv4_dst=10.77.0.100,reg6=1 -> learn(lb/3000 "
                           "cookie=0xf05000000000001 idle=60s fin_idle=2s eth_type=2048,ip_proto=6,"
                           "ipv4_dst=10.77.0.100 copy ipv4_src,tcp_dst,tcp_src -> "
                           "eth_dst:=02:77:00:00:00:01,ipv4_dst:=10.77.0.1,output:1),set_field:eth_dst:")
    assert "[w=1 watch=None set_field:reg6:2,resubmit:member]" in select_group([1, 2]).describe()


# ---- buckets are action sets on Open vSwitch ---------------------------------------------------

@pytest.mark.parametrize("actions, message", [
    ((("learn", pin(1)), ("output", 1)), "cannot carry a learn action"),
    ((("output", 1), ("set_field", "eth_dst", MEMBERS[1][1])), "a bucket is an action set"),
    ((("set_field", "reg6", 1), ("resubmit", "member"), ("output", 1)), "a bucket is an action set"),
    ((("resubmit", "forward"),), "resubmit to table 'forward' not allowed"),
])
def test_a_bucket_refuses_what_ovs_would_not_run(actions, message):
    with pytest.raises(GroupError, match=message):
        GroupSpec(GID, "select", (Bucket(actions=actions),))


# ---- on the wire ------------------------------------------------------------------------------

def _flow_stats(fm) -> parser.OFPFlowStats:
    return parser.OFPFlowStats(table_id=fm.table_id, duration_sec=1, duration_nsec=0, priority=fm.priority,
                               idle_timeout=fm.idle_timeout, hard_timeout=fm.hard_timeout, flags=0,
                               cookie=fm.cookie, packet_count=0, byte_count=0, match=fm.match,
                               instructions=fm.instructions)


def test_encoding_is_what_ovs_dumps_back():
    """NXM headers, full-width specs, prerequisites first, the output port loaded into reg7 first."""
    (inst,) = wire_flowmod(flows.to_flowmod(member_flow(2))).instructions
    load, act = inst.actions[:2]
    assert (load.key, load.value) == ("reg7", 2)
    assert (act.table_id, act.priority, act.cookie, act.idle_timeout, act.fin_idle_timeout, act.flags) \
        == (4, 3000, cookies.cookie("learned", 2), 60, 2, 0)
    assert [(type(s).__name__, s.src, s.dst, s.n_bits) for s in act.specs] == [
        ("NXFlowSpecMatch", 0x0800, ("eth_type_nxm", 0), 16),
        ("NXFlowSpecMatch", 6, ("ip_proto_nxm", 0), 8),
        ("NXFlowSpecMatch", 0x0A4D0064, ("ipv4_dst_nxm", 0), 32),
        ("NXFlowSpecMatch", ("ipv4_src_nxm", 0), ("ipv4_src_nxm", 0), 32),
        ("NXFlowSpecMatch", ("tcp_dst_nxm", 0), ("tcp_dst_nxm", 0), 16),
        ("NXFlowSpecMatch", ("tcp_src_nxm", 0), ("tcp_src_nxm", 0), 16),
        ("NXFlowSpecLoad", 0x027700000002, ("eth_dst_nxm", 0), 48),
        ("NXFlowSpecLoad", 0x0A4D0002, ("ipv4_dst_nxm", 0), 32),
        ("NXFlowSpecOutput", ("reg7", 0), "", 16)]


@pytest.mark.parametrize("key", [1, 2])
def test_a_learning_flow_round_trips_through_a_dump(key):
    assert flows.from_stats(_flow_stats(wire_flowmod(flows.to_flowmod(member_flow(key))))) == member_flow(key)


def test_the_resubmitting_group_round_trips_through_a_group_desc_reply():
    spec = select_group([1, 2, 3])
    wire = wire_groupmod(groups.to_add(spec))
    stats = parser.OFPGroupDescStats(type_=wire.type, group_id=wire.group_id, buckets=wire.buckets)
    assert groups.from_stats(stats) == spec


# What Open vSwitch 3.1.0 sent back (userspace datapath) after member_flow(1) with its
# output changed to port 3, and select_group([1]), were installed with these builders.
OVS_FLOW_STATS_REPLY = bytes.fromhex(
    "041301380000000b0001000000000000012805000000009a1c9c38000064000000000000000000000f04000000000001"
    "0000000000000001000000000000003c0001001f80000a020800800018040a4d0064800014010600010c040000000100"
    "000400d8000000000019001000010e040000000300000000ffff0090000023200010003c00000bb80f05000000000005"
    "0000040000020000201008000000060200002008000600000c01000020200a4d0064000010040000002000000e040000"
    "00000e04000000100000140200000000140200000010000012020000000012020000283002770000000100000206000028"
    "200a4d0001000010040000101000010e040000000000000019001080000606027700000001000000190010800018040a4d"
    "0001000000000000001000000003ffe5000000000000")
OVS_GROUP_DESC_REPLY = bytes.fromhex(
    "041300480000000c0007000000000000003801000400000100300001ffffffffffffffff000000000019001000010c04"
    "0000000100000000ffff001000002320000efff805000000")


def _reply_body(buf: bytes) -> list:
    version, msg_type, length, xid = ofproto_parser.header(buf)
    return ofproto_parser.msg(ProtocolDesc(ofp.OFP_VERSION), version, msg_type, length, xid, buf).body


def test_what_ovs_really_dumped_reads_back_equal():
    (stats,) = _reply_body(OVS_FLOW_STATS_REPLY)
    port, mac, ip = MEMBERS[1]
    want = flow("member", 100, {**TCP_VIP, "reg6": 1},
                [("learn", pin(1, output=3, cookie=cookies.cookie("learned", 5))),
                 ("set_field", "eth_dst", mac), ("set_field", "ipv4_dst", ip), ("output", 3)], cookie=COOKIE)
    assert flows.from_stats(stats) == want
    (group,) = _reply_body(OVS_GROUP_DESC_REPLY)
    assert groups.from_stats(group) == select_group([1])


def _actions_of(spec) -> list:
    (inst,) = wire_flowmod(flows.to_flowmod(spec)).instructions
    return list(inst.actions)


@pytest.mark.parametrize("mangle, message", [
    (lambda acts: acts[1:], "output from"),                                     # the reg7 load is gone
    (lambda acts: acts[:1] + acts[2:], "set_field reg7 not followed by a learn"),
    (lambda acts: [acts[0], _with(acts[1], table_id=9)] + acts[2:], "learn into table 9"),
    (lambda acts: [acts[0], _with(acts[1], flags=1)] + acts[2:], "flags 0x1"),
    (lambda acts: [acts[0], _with(acts[1], specs=acts[1].specs[:-1])] + acts[2:], "does not output it"),
    (lambda acts: [acts[0], _with(acts[1], specs=[parser.NXFlowSpecMatch(
        src=("ipv4_dst_nxm", 0), dst=("ipv4_src_nxm", 0), n_bits=32)] + acts[1].specs)] + acts[2:],
     "matches ipv4_src on another field"),
    (lambda acts: [acts[0], _with(acts[1], specs=[parser.NXFlowSpecMatch(
        src=("ipv4_dst_nxm", 0), dst=("ipv4_dst_nxm", 8), n_bits=24)] + acts[1].specs)] + acts[2:],
     "learn spec on"),
    (lambda acts: [parser.NXActionResubmitTable(in_port=0xFFF8, table_id=2)], r"resubmit\(0xfff8,2\)"),
])
def test_read_actions_refuses_learns_we_never_make(mangle, message):
    with pytest.raises(ForeignFlow, match=message):
        flows.read_actions(mangle(_actions_of(member_flow(1))))


def _with(act, **changes):
    fields = dict(table_id=act.table_id, specs=act.specs, idle_timeout=act.idle_timeout,
                  hard_timeout=act.hard_timeout, priority=act.priority, cookie=act.cookie, flags=act.flags,
                  fin_idle_timeout=act.fin_idle_timeout, fin_hard_timeout=act.fin_hard_timeout)
    return parser.NXActionLearn(**{**fields, **changes})


def test_a_learn_is_an_encodable_packet_out_action_too():
    msg = flows.packet_out(3, [("learn", pin(1)), ("output", 1)], b"\x00" * 60)
    assert encode(msg)


# ---- on a switch ------------------------------------------------------------------------------

def _switch(keys) -> FakeOFTable:
    switch = FakeOFTable()
    switch.apply(groups.to_add(select_group(keys)))
    switch.apply_all(flows.to_flowmod(s) for s in VIP_FLOWS + [member_flow(k) for k in keys])
    return switch


def _syn(i: int) -> dict:
    return {"in_port": CLIENT_PORT, "eth_src": "02:77:00:00:01:01", "eth_dst": VIP_MAC, "eth_type": 0x0800,
            "ipv4_src": f"10.77.1.{1 + i % 200}", "ipv4_dst": VIP, "ip_proto": 6, "tcp_src": 40000 + i,
            "tcp_dst": 80}


def _member(egress) -> int:
    """The member a packet was sent to, checked against how it was rewritten."""
    (out,) = egress
    key = out.port
    assert (out.headers["eth_dst"], out.headers["ipv4_dst"]) == MEMBERS[key][1:]
    assert not any(name.startswith("reg") for name in out.headers)     # registers stay on the switch
    return key


def test_the_first_packet_pins_its_connection():
    switch = _switch([1, 2])
    assert not switch.learned()
    first = _member(switch.process(_syn(0)))
    (learned,) = switch.learned(4)
    assert (learned.cookie, learned.priority, learned.idle_timeout) \
        == (cookies.cookie("learned", first), 3000, 60)
    assert dict(learned.match.items()) == {"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": VIP,
                                           "ipv4_src": "10.77.1.1", "tcp_src": 40000, "tcp_dst": 80}
    (inst,) = learned.instructions       # what OVS gives a learned flow
    assert [type(a).__name__ for a in inst.actions] == ["NXActionFinTimeout", "NXActionRegLoad",
                                                        "NXActionRegLoad", "OFPActionOutput"]
    assert _member(switch.process(_syn(0))) == first and len(switch.learned()) == 1
    assert switch.specs() == set(VIP_FLOWS + [member_flow(1), member_flow(2)])


def test_scaling_the_group_from_2_to_4_members_does_not_move_pinned_connections():
    switch = _switch([1, 2])
    connections = range(40)
    before = {i: _member(switch.process(_syn(i))) for i in connections}
    assert set(before.values()) == {1, 2}

    switch.apply(groups.to_modify(select_group([1, 2, 3, 4])))
    switch.apply_all(flows.to_flowmod(member_flow(k)) for k in (3, 4))
    after = {i: _member(switch.process(_syn(i))) for i in connections}
    assert after == before

    # Without its pin, many a connection would have moved: the pins are what kept them.
    unpinned = _switch([1, 2, 3, 4])
    assert sum(_member(unpinned.process(_syn(i))) != before[i] for i in connections) >= 10
    # New connections spread over all four members, and get pins of their own.
    fresh = {_member(switch.process(_syn(i))) for i in range(100, 140)}
    assert fresh == {1, 2, 3, 4}
    assert len(switch.learned(4)) == 80


def test_the_fake_switch_like_ovs_accepts_a_learn_in_a_bucket_and_never_runs_it():
    switch = FakeOFTable()
    port, mac, ip = MEMBERS[1]
    bucket = parser.OFPBucket(weight=1, watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                              actions=flows.ofp_actions((("learn", pin(1)),)) + [
                                  parser.OFPActionOutput(port), parser.OFPActionSetField(eth_dst=mac)])
    switch.apply(parser.OFPGroupMod(None, ofp.OFPGC_ADD, ofp.OFPGT_SELECT, GID, [bucket]))
    switch.apply_all(flows.to_flowmod(s) for s in VIP_FLOWS)
    (out,) = switch.process(_syn(0))
    assert (out.port, out.headers["eth_dst"]) == (port, mac)       # set_field ran before the output
    assert not switch.learned()


def test_the_fake_switch_refuses_learns_ovs_refuses():
    bad = flows.FlowSpec("member", 100, (("eth_type", 0x0800), ("reg6", 1)), (("learn", pin(1)),))
    with pytest.raises(FakeSwitchError, match="learn source tcp_dst needs ip_proto=6"):
        FakeOFTable().apply(flows.to_flowmod(bad))
    immediate = parser.NXActionLearn(table_id=4, specs=[parser.NXFlowSpecOutput(src=1, n_bits=16)])
    with pytest.raises(FakeSwitchError, match="immediate output port"):
        FakeOFTable().apply(parser.OFPFlowMod(None, table_id=5, priority=1, match=parser.OFPMatch(),
                                              instructions=[parser.OFPInstructionActions(
                                                  ofp.OFPIT_APPLY_ACTIONS, [immediate])]))


# ---- reconciliation ---------------------------------------------------------------------------

def test_read_dump_leaves_learned_flows_alone():
    switch = _switch([1, 2])
    for i in range(6):
        switch.process(_syn(i))
    learned = [s for s in switch.dump() if cookies.is_learned(s.cookie)]
    assert len(learned) == 6
    with pytest.raises(ForeignFlow):        # unreadable: without the cookie they would be deleted
        flows.from_stats(learned[0])

    have = desired.read_dump(switch.dump(), switch.dump_groups(), switch.dump_meters())
    assert set(have.flows.values()) == switch.specs() and not have.foreign_flows
    want, problems = desired.merge(VIP_FLOWS[:1], [("slices", Desired(
        tuple(VIP_FLOWS[1:]) + (member_flow(1), member_flow(2)), (select_group([1, 2]),)))])
    assert problems == [] and desired.plan(want, have).messages() == []
    # Scaling up: the plan adds and modifies, and deletes nothing, so every pin stays.
    want, _ = desired.merge(VIP_FLOWS[:1], [("slices", Desired(
        tuple(VIP_FLOWS[1:]) + tuple(member_flow(k) for k in (1, 2, 3, 4)), (select_group([1, 2, 3, 4]),)))])
    plan = desired.plan(want, have)
    assert plan.counts == {"group_modifies": 1, "flow_adds": 2}
    switch.apply_all(m for m in plan.messages() if not isinstance(m, parser.OFPBarrierRequest))
    assert len(switch.learned(4)) == 6


def test_merge_wants_learned_flows_in_the_learned_range():
    stolen = flow("member", 100, {**TCP_VIP, "reg6": 1},
                  [("learn", pin(1, cookie=cookies.cookie("slices", 9))), ("output", 1)], cookie=COOKIE)
    want, problems = desired.merge([], [("slices", Desired((member_flow(2), stolen)))])
    assert list(want.flows.values()) == [member_flow(2)]
    (problem,) = problems
    assert problem.startswith("provider slices: flow member/100") and \
        "learns flows with a cookie outside the 'learned' range" in problem
