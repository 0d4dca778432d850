"""Tests for controller.desired through the core and a FakeNetwork: a provider's
flows, groups and meters are installed in a safe order, changed in place, removed
in reverse order, reconciled on reconnect (nothing sent when nothing changed,
foreign entries removed), and a VIP flow really load-balances packets in the fake
switches. Plus the pure parts: merging providers, planning, reading dumps."""

import collections

import pytest
from os_ken.lib.packet import ethernet, ipv4, udp
from os_ken.lib.packet.ether_types import ETH_TYPE_IP
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.appbase import App, RegistrationError
from controller import cookies, desired, flows, groups, meters
from controller.desired import Desired, Entries, ProviderError
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec

from tests.lib import fakeoftable
from tests.lib.fakeoftable import ipv4_frame, triangle, udp_frame

VIP_MAC, VIP_IP = "02:00:00:00:00:64", "10.0.0.100"
GID = cookies.group_id("slices", 1)
MID = cookies.meter_id("slices", 1)
COOKIE = cookies.cookie("slices", 1)
MODS = (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod)


class SliceStub(App):
    """A provider holding per-switch intent, as the slices app does."""

    name = "slices"

    def __init__(self):
        super().__init__(None)
        self.intent: dict[int, Desired] = {}
        self.fail = False

    def desired(self, dp_id, now):
        if self.fail:
            raise RuntimeError("bug in the app")
        return self.intent.get(dp_id, Desired())


def _member_bucket(net, name, port, weight=1):
    host = net.host(name)
    return Bucket(weight, None, (("set_field", "eth_dst", host.mac), ("set_field", "ipv4_dst", host.ip),
                                 ("output", port)))


def vip_intent(net, weights=(1, 1), rate_kbps=2000) -> Desired:
    """On s1: traffic to the VIP passes a meter, then a select group over h2 (via
    port 1, towards s2) and h3 (via port 2, towards s3), rewritten to the member."""
    group = GroupSpec(GID, "select", (_member_bucket(net, "h2", 1, weights[0]),
                                      _member_bucket(net, "h3", 2, weights[1])))
    vip = flow("classify", 100, {"eth_type": ETH_TYPE_IP, "ipv4_dst": VIP_IP}, [("group", GID)],
               meter=MID, cookie=COOKIE)
    return Desired(flows=(vip,), groups=(group,), meters=(MeterSpec(MID, rate_kbps, 200),))


@pytest.fixture
def net():
    """Triangle with paths h1->h2 and h1->h3 installed (the members' paths); without
    fast failover and with packet-ins unmetered, so the only groups and meters are the
    provider's."""
    network = triangle(fast_failover=False, packet_in_pps=0)
    network.announce("h1", "h2", "h3")
    for dst in ("h2", "h3"):
        network.send("h1", ipv4_frame(network.host("h1"), network.host(dst)))
    network.clear_inboxes()
    return network


@pytest.fixture
def sliced(net):
    stub = SliceStub()
    net.core.add_provider(stub)
    stub.intent[1] = vip_intent(net)
    net.deliver(net.core.resync(net.now))
    assert net.out_of_sync() == {}
    net.stub = stub
    return net


def _mods_after(net, mark):
    return [(dp, m) for dp, m in net.sent[mark:] if isinstance(m, MODS)]


def _kinds(msgs):
    names = {(parser.OFPMeterMod, ofp.OFPMC_ADD): "meter_add",
             (parser.OFPMeterMod, ofp.OFPMC_MODIFY): "meter_mod",
             (parser.OFPMeterMod, ofp.OFPMC_DELETE): "meter_del",
             (parser.OFPGroupMod, ofp.OFPGC_ADD): "group_add",
             (parser.OFPGroupMod, ofp.OFPGC_MODIFY): "group_mod",
             (parser.OFPGroupMod, ofp.OFPGC_DELETE): "group_del",
             (parser.OFPFlowMod, ofp.OFPFC_ADD): "flow_add",
             (parser.OFPFlowMod, ofp.OFPFC_DELETE_STRICT): "flow_del"}
    out = []
    for m in msgs:
        if isinstance(m, parser.OFPBarrierRequest):
            out.append("barrier")
        else:
            out.append(names[(type(m), m.command)])
    return out


# ---- install, change, remove ---------------------------------------------------------------------

def test_meter_then_group_then_flow_are_installed_in_that_order(net):
    stub = SliceStub()
    net.core.add_provider(stub)
    # No intent yet: only the misses of the app's own tables (lb, member) on every switch.
    added = net.core.resync(net.now)
    misses = {(m.table_id, m.priority) for _, m in added if isinstance(m, parser.OFPFlowMod)}
    assert misses == {(4, 0), (5, 0)}
    net.deliver(added)
    assert net.core.resync(net.now) == []
    stub.intent[1] = vip_intent(net)
    out = net.core.resync(net.now)
    assert {dp for dp, _ in out} == {1}
    # The last barrier closes the sync: its reply confirms the change (core.SyncBarrier).
    assert _kinds(m for _, m in out) == ["meter_add", "group_add", "barrier", "flow_add", "barrier"]
    net.deliver(out)                                    # the fake switch refuses a dangling reference
    assert net.out_of_sync() == {}
    counters = net.core.counters
    assert (counters["meter_adds"], counters["group_adds"]) == (1, 1)


def test_changed_buckets_are_one_group_modify(sliced):
    mark = len(sliced.sent)
    sliced.stub.intent[1] = vip_intent(sliced, weights=(3, 1))
    sliced.deliver(sliced.core.resync(sliced.now))
    ((dp, msg),) = _mods_after(sliced, mark)
    assert (dp, _kinds([msg])) == (1, ["group_mod"])
    assert sliced.out_of_sync() == {}
    assert sliced.core.counters["group_modifies"] == 1


def test_changed_rate_is_one_meter_modify_and_the_flow_keeps_its_meter(sliced):
    mark = len(sliced.sent)
    sliced.stub.intent[1] = vip_intent(sliced, rate_kbps=5000)
    sliced.deliver(sliced.core.resync(sliced.now))
    assert _kinds(m for _, m in _mods_after(sliced, mark)) == ["meter_mod"]
    assert sliced.switches[1].meter_rate_kbps(MID) == 5000
    assert sliced.out_of_sync() == {}


def test_removed_intent_deletes_flow_then_group_then_meter(sliced):
    sliced.stub.intent.pop(1)
    out = sliced.core.resync(sliced.now)
    assert _kinds(m for _, m in out) == ["flow_del", "group_del", "meter_del", "barrier"]
    sliced.deliver(out)
    switch = sliced.switches[1]
    assert switch.groups == {} and switch.meters == {}
    assert sliced.out_of_sync() == {}


def test_repointing_the_vip_to_a_new_group_replaces_the_flow_before_the_old_group_goes(sliced):
    other = GroupSpec(GID + 1, "select", (_member_bucket(sliced, "h3", 2),))
    vip = flow("classify", 100, {"eth_type": ETH_TYPE_IP, "ipv4_dst": VIP_IP}, [("group", GID + 1)],
               meter=MID, cookie=COOKIE)
    sliced.stub.intent[1] = Desired((vip,), (other,), (MeterSpec(MID, 2000, 200),))
    out = sliced.core.resync(sliced.now)
    assert _kinds(m for _, m in out) == ["group_add", "barrier"]
    # The flow moves to the new group once s1 has confirmed it, and the old group
    # goes once s1 has confirmed the flow that no longer uses it.
    mark = len(sliced.sent)
    sliced.deliver(out)
    assert _kinds(m for _, m in sliced.sent[mark:]) == ["group_add", "barrier", "flow_add", "barrier",
                                                         "group_del", "barrier"]
    assert sliced.out_of_sync() == {}


def test_removing_the_provider_removes_everything_it_installed(sliced):
    sliced.core.remove_provider("slices")
    sliced.deliver(sliced.core.resync(sliced.now))
    assert sliced.switches[1].groups == {} and sliced.switches[1].meters == {}
    assert not [s for s in sliced.switches[1].specs() if cookies.owner_of(s.cookie) == "slices"]
    assert sliced.out_of_sync() == {}


# ---- reconnect and reconciliation ----------------------------------------------------------------

def test_reconnect_with_identical_state_sends_nothing(sliced):
    sliced.disconnect(1)
    sliced.run(1.0)
    mark = len(sliced.sent)
    reconciliations = sliced.core.counters["reconciliations"]
    sliced.connect(1)                 # dumps come back in parts of DUMP_PART entries
    sliced.run(2.0)
    assert sliced.core.counters["reconciliations"] == reconciliations + 1
    assert _mods_after(sliced, mark) == []
    assert sliced.out_of_sync() == {}


def test_foreign_groups_and_meters_found_on_reconnect_are_deleted(sliced):
    switch = sliced.switches[1]
    switch.apply(meters.to_add(MeterSpec(9, 100)))                                   # nobody's range
    switch.apply(groups.to_add(GroupSpec(5, "all", (Bucket(actions=(("output", 3),)),))))
    switch.apply(groups.to_add(GroupSpec(GID + 7, "indirect", (Bucket(actions=(("output", 3),)),))))
    switch.apply(flows.to_flowmod(flow("classify", 50, {"eth_type": ETH_TYPE_IP, "ipv4_dst": "10.9.9.9"},
                                       [("group", 5)], meter=9, cookie=0)))
    mark = len(sliced.sent)
    sliced.disconnect(1)
    sliced.connect(1)
    kinds = _kinds(m for _, m in _mods_after(sliced, mark))
    assert collections.Counter(kinds) == {"flow_del": 1, "group_del": 2, "meter_del": 1}
    assert kinds == sorted(kinds, key=["flow_del", "group_del", "meter_del"].index)
    assert set(switch.groups) == {GID} and set(switch.meters) == {MID}
    assert sliced.out_of_sync() == {}


def test_tampered_group_and_meter_are_modified_in_place_not_re_added(sliced):
    switch = sliced.switches[1]
    switch.apply(groups.to_modify(GroupSpec(GID, "all", (Bucket(actions=(("output", 3),)),))))
    switch.apply(meters.to_modify(MeterSpec(MID, 1)))
    mark = len(sliced.sent)
    sliced.disconnect(1)
    sliced.connect(1)
    assert _kinds(m for _, m in _mods_after(sliced, mark)) == ["meter_mod", "group_mod"]
    assert sliced.out_of_sync() == {}


def test_unreadable_group_with_our_id_is_replaced_in_place(sliced):
    switch = sliced.switches[1]
    alien = parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_MODIFY, type_=ofp.OFPGT_ALL, group_id=GID,
                               buckets=[parser.OFPBucket(actions=[parser.OFPActionPushMpls(0x8847),
                                                                  parser.OFPActionOutput(3)])])
    switch.groups[GID] = fakeoftable.wire_groupmod(alien)     # the fake cannot run push_mpls; just hold it
    mark = len(sliced.sent)
    sliced.deliver(sliced.core.request_dumps(1))
    assert _kinds(m for _, m in _mods_after(sliced, mark)) == ["group_mod"]
    assert sliced.out_of_sync() == {}


def test_switch_that_refuses_the_meter_dump_is_still_reconciled(net):
    net.disconnect(2)
    net.connected.add(2)
    out = net.core.switch_connected(2, net.port_objects(2), net.now)
    requests = [m for _, m in out
                if isinstance(m, (parser.OFPFlowStatsRequest, parser.OFPGroupDescStatsRequest))]
    assert len(requests) == 2
    before = net.core.counters["reconciliations"]
    assert net.core.flows_dumped(2, net.switches[2].dump(), net.now) == []
    assert net.core.groups_dumped(2, [], net.now) == []
    net.deliver(net.core.dump_failed(2, "meters", net.now))
    assert net.core.counters["reconciliations"] == before + 1
    assert net.out_of_sync() == {}


def test_reconciliation_waits_for_every_part_of_every_dump(sliced):
    core = sliced.core
    assert core.request_dumps(1)
    dump = sliced.switches[1].dump()
    assert core.flows_dumped(1, dump[:3], sliced.now, more=True) == []
    assert core.meters_dumped(1, sliced.switches[1].dump_meters(), sliced.now) == []
    assert core.flows_dumped(1, dump[3:], sliced.now) == []
    assert core.flows_dumped(1, [], sliced.now) == []            # not asked for again: ignored
    before = core.counters["reconciliations"]
    assert core.groups_dumped(1, sliced.switches[1].dump_groups(), sliced.now) == []
    assert core.counters["reconciliations"] == before + 1       # reconciled, and nothing to change


def test_failed_dump_kind_reads_the_echoed_request():
    for request, kind in zip(desired.dump_requests(), desired.DUMP_KINDS):
        assert desired.failed_dump_kind(fakeoftable.encode(request)) == kind
    assert desired.failed_dump_kind(fakeoftable.encode(flows.barrier())) is None
    assert desired.failed_dump_kind(b"\x04") is None


# ---- packets through the fake switches -----------------------------------------------------------

def test_packets_to_the_vip_come_out_rewritten_to_a_member_and_spread(sliced):
    h1 = sliced.host("h1")
    for sport in range(20000, 20060):
        sliced.send("h1", udp_frame(h1, VIP_MAC, VIP_IP, sport, 80))
    got = {}
    for name in ("h2", "h3"):
        host = sliced.host(name)
        pkts = sliced.inbox(name, ETH_TYPE_IP)
        for pkt in pkts:
            eth, ip, dgram = (pkt.get_protocol(p) for p in (ethernet.ethernet, ipv4.ipv4, udp.udp))
            assert (eth.dst, ip.dst) == (host.mac, host.ip)      # rewritten to this member
            assert (eth.src, ip.src, dgram.dst_port) == (h1.mac, h1.ip, 80)
        got[name] = {pkt.get_protocol(udp.udp).src_port for pkt in pkts}
    assert got["h2"].isdisjoint(got["h3"])
    assert got["h2"] | got["h3"] == set(range(20000, 20060))    # every datagram arrived once
    assert min(len(got["h2"]), len(got["h3"])) >= 15             # and both members got a share
    walk = sliced.walk(h1.dp_id, h1.port_no, fakeoftable.frame_fields(
        udp_frame(h1, VIP_MAC, VIP_IP, 20000, 80), h1.port_no))
    assert walk.meters == {(1, MID)} and len(walk.packets) == 1


def test_vip_traffic_needs_no_controller_once_installed(sliced):
    h1 = sliced.host("h1")
    packet_ins = sliced.core.counters["packet_in"]
    for sport in range(30000, 30010):
        sliced.send("h1", udp_frame(h1, VIP_MAC, VIP_IP, sport, 53))
    assert sliced.core.counters["packet_in"] == packet_ins
    assert len(sliced.inbox("h2")) + len(sliced.inbox("h3")) == 10


# ---- what providers may declare ----------------------------------------------------------------

def test_providers_must_be_registered_apps(net):
    with pytest.raises(RegistrationError, match="app 'acl' is not registered"):
        type("Acl", (App,), {"name": "acl"})(net.core.view)
    with pytest.raises(RegistrationError, match="app 'forwarding' is not registered"):
        type("Fwd", (App,), {"name": "forwarding"})(net.core.view)
    with pytest.raises(ProviderError, match="is not a controller.appbase.App"):
        net.core.add_provider(type("Acl", (), {"name": "acl", "desired": lambda self, d, n: Desired()})())
    net.core.add_provider(SliceStub())
    with pytest.raises(ProviderError, match="already running"):
        net.core.add_provider(SliceStub())


def test_entries_outside_the_providers_ranges_or_dangling_are_left_out(sliced):
    good = vip_intent(sliced)
    stray = flow("classify", 90, {"eth_type": ETH_TYPE_IP, "ipv4_dst": "10.0.0.101"}, [("output", 3)],
                 cookie=cookies.cookie("forwarding", 9))
    dangling = flow("classify", 80, {"eth_type": ETH_TYPE_IP, "ipv4_dst": "10.0.0.102"}, [("group", GID + 9)],
                    cookie=COOKIE)
    unmetered = flow("classify", 70, {"eth_type": ETH_TYPE_IP, "ipv4_dst": "10.0.0.103"}, [("output", 3)],
                     meter=MID + 9, cookie=COOKIE)
    hijack = flow("ingress", 3000, {"eth_type": 0x88CC}, [("output", 3)], cookie=COOKIE)
    sliced.stub.intent[1] = Desired(good.flows + (stray, dangling, unmetered, hijack),
                                    good.groups + (GroupSpec(7, "all"),), good.meters + (MeterSpec(8, 10),))
    mark = len(sliced.sent)
    sliced.deliver(sliced.core.resync(sliced.now))
    assert _mods_after(sliced, mark) == []                       # only the good part, already there
    assert sliced.core.counters["desired_rejects"] == 6
    assert sliced.out_of_sync() == {}


def test_a_failing_provider_keeps_what_it_installed(sliced):
    sliced.stub.fail = True
    mark = len(sliced.sent)
    sliced.deliver(sliced.core.resync(sliced.now))
    assert _mods_after(sliced, mark) == []
    assert sliced.core.counters["provider_errors"] >= 1
    assert set(sliced.switches[1].groups) == {GID}


def test_merge_drops_group_loops_and_chains_to_missing_groups():
    a = GroupSpec(GID, "all", (Bucket(actions=(("group", GID + 1),)),))
    b = GroupSpec(GID + 1, "all", (Bucket(actions=(("group", GID),)),))
    c = GroupSpec(GID + 2, "indirect", (Bucket(actions=(("group", GID + 5),)),))
    d = GroupSpec(GID + 3, "indirect", (Bucket(actions=(("output", 1),)),))
    e = GroupSpec(GID + 4, "all", (Bucket(actions=(("group", GID + 3),)),))
    want, problems = desired.merge([], [("slices", Desired(groups=(a, b, c, d, e)))])
    assert set(want.groups) == {GID + 3, GID + 4}
    assert len(problems) == 3


def test_plan_orders_chained_groups_and_removes_them_in_reverse():
    inner = GroupSpec(GID, "indirect", (Bucket(actions=(("output", 1),)),))
    outer = GroupSpec(GID + 1, "all", (Bucket(actions=(("group", GID),)), Bucket(actions=(("output", 2),))))
    want = Entries(groups={outer.group_id: outer, inner.group_id: inner})
    steps = desired.plan(want, Entries()).messages()
    assert [(type(m).__name__, getattr(m, "group_id", None)) for m in steps] == [
        ("OFPGroupMod", GID), ("OFPBarrierRequest", None), ("OFPGroupMod", GID + 1)]
    steps = desired.plan(Entries(), want).messages()
    assert [m.group_id for m in steps] == [GID + 1, GID]


def test_read_dump_keeps_foreign_entries_for_the_plan_to_remove():
    table = fakeoftable.FakeOFTable()
    table.apply(flows.to_flowmod(flow("ingress", 5, {"in_port": 1}, [("output", 2)])))
    table.apply(parser.OFPFlowMod(datapath=None, table_id=9, command=ofp.OFPFC_ADD, priority=1,
                                  match=parser.OFPMatch(), instructions=[]))
    table.apply(meters.to_add(MeterSpec(3, 10)))
    have = desired.read_dump(table.dump(), table.dump_groups(), table.dump_meters())
    assert len(have.flows) == 1 and len(have.foreign_flows) == 1 and set(have.meters) == {3}
    plan = desired.plan(Entries(), have)
    assert plan.counts == {"flow_deletes": 2, "meter_deletes": 1}
    table.apply_all(plan.messages())
    assert len(table) == 0 and table.meters == {}


def test_load_factory_names_what_is_missing():
    assert desired.load_factory("controller.desired:Desired") is Desired
    for path, message in [("nocolon", "expected"), ("no.such.module:f", "cannot import"),
                          ("controller.desired:nothing", "no callable")]:
        with pytest.raises(ProviderError, match=message):
            desired.load_factory(path)
