"""Tests for controller.groups: specs are canonical and checked, every builder encodes,
a group survives the trip to a switch and back through a group dump, and the fake
switch runs select, all, indirect and fast-failover groups the way a switch would."""

import collections

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flows, groups
from controller.flows import flow
from controller.groups import Bucket, ForeignGroup, GroupError, GroupSpec

from tests.lib.fakeoftable import CONTROLLER, FakeOFTable, FakeSwitchError, encode, wire_groupmod

GID = cookies.group_id("slices", 1)
M1, M2 = "02:00:00:00:00:02", "02:00:00:00:00:03"


def _to(mac, ip, port, weight=1):
    return Bucket(weight, None, (("set_field", "eth_dst", mac), ("set_field", "ipv4_dst", ip),
                                 ("output", port)))


SELECT = GroupSpec(GID, "select", (_to(M1, "10.0.0.2", 1), _to(M2, "10.0.0.3", 2, weight=3)))
SPECS = [
    SELECT,
    GroupSpec(GID + 1, "all", (Bucket(actions=(("output", 1),)), Bucket(actions=(("output", 2),)))),
    GroupSpec(GID + 2, "indirect", (Bucket(actions=(("set_field", "eth_src", M1.upper()), ("output", 4))),)),
    GroupSpec(GID + 3, "ff", (Bucket(watch_port=1, actions=(("output", 1),)),
                              Bucket(watch_port=2, actions=(("output", 2),)))),
    GroupSpec(GID + 4, "all", (Bucket(actions=(("group", GID),)), Bucket(actions=(("controller",),)))),
    GroupSpec(GID + 5, "select", ()),
    # A fast-failover detour: tag the frame, then out of the backup port.
    GroupSpec(GID + 6, "ff", (Bucket(watch_port=1, actions=(("output", 1),)),
                              Bucket(watch_port=2, actions=(("push_vlan", 0x8100),
                                                            ("set_field", "vlan_vid", 0x1005),
                                                            ("output", 2))))),
    # ... or back out of the port the frame came in on.
    GroupSpec(GID + 7, "ff", (Bucket(watch_port=1, actions=(("output", 1),)),
                              Bucket(watch_port=2, actions=(("push_vlan", 0x8100),
                                                            ("set_field", "vlan_vid", 0x1005),
                                                            ("in_port",))))),
]


@pytest.mark.parametrize("build, command", [(groups.to_add, ofp.OFPGC_ADD),
                                            (groups.to_modify, ofp.OFPGC_MODIFY)])
@pytest.mark.parametrize("spec", SPECS, ids=GroupSpec.describe)
def test_group_mods_encode_what_the_spec_says(spec, build, command):
    wire = wire_groupmod(build(spec))
    assert (wire.command, wire.group_id) == (command, spec.group_id)
    assert wire.type == groups.GROUP_TYPES[spec.type]
    assert len(wire.buckets) == len(spec.buckets)


def test_delete_and_dump_request_encode():
    wire = wire_groupmod(groups.to_delete(GID))
    assert (wire.command, wire.group_id, wire.buckets) == (ofp.OFPGC_DELETE, GID, [])
    _, msg_type, length, _ = ofproto_parser.header(encode(groups.desc_request()))
    assert msg_type == ofp.OFPT_MULTIPART_REQUEST and length == 16


@pytest.mark.parametrize("spec", SPECS, ids=GroupSpec.describe)
def test_group_round_trip_through_a_dump(spec):
    switch = FakeOFTable()
    switch.apply(groups.to_add(GroupSpec(GID, "indirect", (Bucket(actions=(("output", 9),)),))))
    switch.apply(groups.to_modify(spec) if spec.group_id == GID else groups.to_add(spec))
    (stats,) = [s for s in switch.dump_groups() if s.group_id == spec.group_id]
    assert groups.from_stats(stats) == spec


def test_specs_are_canonical_so_a_dump_compares_equal():
    # Weights mean something in select groups only, watch ports in ff groups only;
    # a switch reports weight 1 or 0 and watch port ANY elsewhere.
    given = GroupSpec(GID, "all", [Bucket(7, 3, [("output", 1)])])
    assert given == GroupSpec(GID, "all", (Bucket(0, None, (("output", 1),)),))
    assert hash(given) == hash(GroupSpec(GID, "all", (Bucket(actions=(("output", 1),)),)))
    assert GroupSpec(GID, "select", (Bucket(actions=(("set_field", "eth_dst", M1.upper()),)),)) \
        .buckets[0].actions == (("set_field", "eth_dst", M1),)
    reported = parser.OFPGroupDescStats(type_=ofp.OFPGT_ALL, group_id=GID, buckets=[
        parser.OFPBucket(weight=1, watch_port=ofp.OFPP_ANY, actions=[parser.OFPActionOutput(1)])])
    assert groups.from_stats(reported) == given


@pytest.mark.parametrize("kwargs, message", [
    (dict(group_id=ofp.OFPG_MAX + 1, type="all"), "group id"),
    (dict(group_id=-1, type="all"), "group id"),
    (dict(group_id=GID, type="round_robin"), "unknown type 'round_robin'"),
    (dict(group_id=GID, type="indirect", buckets=()), "exactly one bucket"),
    (dict(group_id=GID, type="ff", buckets=(Bucket(actions=(("output", 1),)),)), "needs a watch port"),
    (dict(group_id=GID, type="select", buckets=(Bucket(weight=70000),)), "weight"),
    (dict(group_id=GID, type="all", buckets=(Bucket(actions=(("push_mpls", 0x8847),)),)), "unknown action"),
    (dict(group_id=GID, type="all", buckets=(Bucket(actions=(("set_field", "mpls_label", 5),)),)),
     "set_field 'mpls_label' not supported"),
    # An action set pushes before it sets fields: listed the other way round it would
    # not run as written.
    (dict(group_id=GID, type="all", buckets=(Bucket(actions=(
        ("set_field", "vlan_vid", 0x1005), ("push_vlan", 0x8100), ("output", 1))),)), "action set"),
    (dict(group_id=GID, type="all", buckets=(Bucket(actions=(
        ("push_vlan", 0x8100), ("push_vlan", 0x8100), ("output", 1))),)), "action set"),
    (dict(group_id=GID, type="all", buckets=(Bucket(actions=(("group", GID),)),)),
     "sends to the group itself"),
    (dict(group_id=GID, type="all", buckets=((("output", 1),),)), "is not a Bucket"),
])
def test_groups_no_switch_would_take_are_refused(kwargs, message):
    with pytest.raises(GroupError, match=message):
        GroupSpec(**kwargs)


@pytest.mark.parametrize("stats, reason", [
    (parser.OFPGroupDescStats(type_=9, group_id=GID, buckets=[]), "type 9"),
    (parser.OFPGroupDescStats(type_=ofp.OFPGT_ALL, group_id=GID, buckets=[
        parser.OFPBucket(actions=[parser.OFPActionPushMpls(0x8847)])]), "OFPActionPushMpls"),
    (parser.OFPGroupDescStats(type_=ofp.OFPGT_FF, group_id=GID, buckets=[
        parser.OFPBucket(watch_group=7, actions=[parser.OFPActionOutput(1)])]), "watches group 7"),
])
def test_from_stats_refuses_groups_we_never_make(stats, reason):
    with pytest.raises(ForeignGroup, match=reason):
        groups.from_stats(stats)


# ---- what groups do on a switch -------------------------------------------------------------

def _switch_with(*specs, live=None) -> FakeOFTable:
    switch = FakeOFTable(live=live)
    for spec in specs:
        switch.apply(groups.to_add(spec))
    return switch


def _send_to(gid):
    return flows.to_flowmod(flow("ingress", 10, {}, [("group", gid)]))


IP = {"in_port": 9, "eth_src": "02:00:00:00:00:01", "eth_dst": "02:00:00:00:00:64", "eth_type": 0x0800,
      "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.100", "ip_proto": 17, "udp_src": 5000, "udp_dst": 53}


def test_select_group_rewrites_to_one_member_and_spreads_five_tuples_by_weight():
    switch = _switch_with(SELECT)
    switch.apply(_send_to(GID))
    chosen = collections.Counter()
    for sport in range(1000, 1400):
        (egress,) = switch.process(dict(IP, udp_src=sport))
        out = egress.headers
        assert (egress.port, out["eth_dst"], out["ipv4_dst"]) in {(1, M1, "10.0.0.2"), (2, M2, "10.0.0.3")}
        assert out["ipv4_src"] == IP["ipv4_src"] and out["udp_src"] == sport
        chosen[egress.port] += 1
    assert 0.15 < chosen[1] / 400 < 0.35            # weights 1:3
    # Deterministic: the same 5-tuple always takes the same bucket.
    assert switch.process(IP) == switch.process(dict(IP))


def test_select_group_with_only_zero_weights_drops():
    switch = _switch_with(GroupSpec(GID, "select", (_to(M1, "10.0.0.2", 1, weight=0),)))
    switch.apply(_send_to(GID))
    assert switch.lookup(IP) == []


def test_all_group_sends_a_copy_per_bucket_each_rewritten_on_its_own():
    spec = GroupSpec(GID, "all", (_to(M1, "10.0.0.2", 1), _to(M2, "10.0.0.3", 2),
                                  Bucket(actions=(("controller",),))))
    switch = _switch_with(spec)
    switch.apply(_send_to(GID))
    copies = switch.process(IP)
    assert [e.port for e in copies] == [1, 2, CONTROLLER]
    assert [e.headers["ipv4_dst"] for e in copies] == ["10.0.0.2", "10.0.0.3", "10.0.0.100"]


def test_fast_failover_group_uses_the_first_live_watch_port():
    up = {1: True, 2: True}
    switch = _switch_with(SPECS[3], live=lambda port: up.get(port, False))
    switch.apply(_send_to(SPECS[3].group_id))
    assert switch.lookup(IP) == [1]
    up[1] = False
    assert switch.lookup(IP) == [2]
    up[2] = False
    assert switch.lookup(IP) == []


def test_chained_groups_run_through_both():
    switch = _switch_with(SELECT, SPECS[4])
    switch.apply(_send_to(SPECS[4].group_id))
    first, second = switch.process(IP)          # the select group's member, then the controller
    assert (first.port, first.headers["ipv4_dst"]) in {(1, "10.0.0.2"), (2, "10.0.0.3")}
    assert (second.port, second.headers["ipv4_dst"]) == (CONTROLLER, "10.0.0.100")


def test_switch_refuses_flows_and_groups_that_send_to_a_missing_group():
    switch = FakeOFTable()
    with pytest.raises(FakeSwitchError, match="OFPBAC_BAD_OUT_GROUP"):
        switch.apply(_send_to(GID))
    with pytest.raises(FakeSwitchError, match="OFPBAC_BAD_OUT_GROUP"):
        switch.apply(groups.to_add(SPECS[4]))


def test_switch_refuses_adding_an_existing_group_and_modifying_a_missing_one():
    switch = _switch_with(SELECT)
    with pytest.raises(FakeSwitchError, match="GROUP_EXISTS"):
        switch.apply(groups.to_add(SELECT))
    with pytest.raises(FakeSwitchError, match="UNKNOWN_GROUP"):
        switch.apply(groups.to_modify(SPECS[1]))


def test_modify_keeps_the_flows_and_delete_takes_them_along():
    switch = _switch_with(SELECT)
    switch.apply(_send_to(GID))
    switch.apply(groups.to_modify(GroupSpec(GID, "indirect", (Bucket(actions=(("output", 7),)),))))
    assert switch.lookup(IP) == [7]
    switch.apply(groups.to_delete(GID))
    assert switch.groups == {} and len(switch) == 0
