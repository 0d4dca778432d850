"""Tests for controller.core through a FakeNetwork: discovery, proxy ARP, paths,
rerouting, flooding, reconciliation on reconnect and garbage input. Flows are
judged by what they do to frames in the fake switches, not by call lists."""

import collections
import random

import pytest
from os_ken.lib.packet import arp, ethernet, ipv4
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_IP
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flows
from controller.flows import flow
from controller.pipeline import PIPELINE

from tests.lib import fakeoftable
from tests.lib.fakeoftable import (FakeSwitchError, TraceError, arp_reply, arp_request, broadcast_frame,
                                   diamond, frame_fields, ipv4_frame, triangle)


@pytest.fixture
def tri():
    net = triangle()
    net.announce("h1", "h2", "h3")
    net.clear_inboxes()
    return net


def ethernet_header(src: str, dst: str):
    return ethernet.ethernet(dst=dst, src=src, ethertype=ETH_TYPE_ARP)


def _ping(net, src, dst):
    net.send(src, ipv4_frame(net.host(src), net.host(dst)))


# ---- discovery --------------------------------------------------------------------------------

def test_triangle_discovers_six_directed_links():
    net = triangle()
    links = {(link.src_dp, link.src_port, link.dst_dp, link.dst_port) for link in net.core.topology.links()}
    expected = set()
    for a, pa, b, pb in fakeoftable.TRIANGLE_LINKS:
        expected |= {(a, pa, b, pb), (b, pb, a, pa)}
    assert links == expected
    assert net.out_of_sync() == {}


def test_host_ports_become_edge_ports_and_link_ports_do_not():
    net = triangle()
    edge_after = net.config.controller.discovery.edge_after_s
    assert {dp: net.core.topology.edge_ports(dp, net.now, edge_after) for dp in (1, 2, 3)} == \
        {1: {3}, 2: {3}, 3: {3}}


def test_links_expire_when_lldp_stops_arriving():
    net = triangle()
    net.up[(2, 2)] = False          # the far end goes silent without a port-status message
    net.run(net.config.controller.discovery.link_timeout_s + 1.0)
    names = {link.name for link in net.core.topology.links()}
    assert names == {"1:1-2:1", "2:1-1:1", "1:2-3:1", "3:1-1:2"}
    assert net.out_of_sync() == {}


# ---- ARP ---------------------------------------------------------------------------------------

def test_proxy_arp_answers_for_a_known_host(tri):
    h1, h2 = tri.host("h1"), tri.host("h2")
    tri.send("h1", arp_request(h1, h2.ip))
    (reply,) = tri.inbox("h1", ETH_TYPE_ARP)
    answer = reply.get_protocol(arp.arp)
    assert answer.opcode == arp.ARP_REPLY
    assert (answer.src_mac, answer.src_ip) == (h2.mac, h2.ip)
    assert (answer.dst_mac, answer.dst_ip) == (h1.mac, h1.ip)
    assert tri.inbox("h2") == [] and tri.inbox("h3") == []
    assert tri.link_frames == []


def test_arp_for_an_unknown_host_goes_to_host_ports_only(tri):
    tri.send("h1", arp_request(tri.host("h1"), "10.0.0.99"))
    for name in ("h2", "h3"):
        (req,) = tri.inbox(name, ETH_TYPE_ARP)
        assert req.get_protocol(arp.arp).dst_ip == "10.0.0.99"
    assert tri.inbox("h1") == []
    assert tri.link_frames == []
    link_ports = {(a, pa) for a, pa, _, _ in fakeoftable.TRIANGLE_LINKS} | \
                 {(b, pb) for _, _, b, pb in fakeoftable.TRIANGLE_LINKS}
    sent_on = {(dp, port) for dp, ports, _ in tri.packet_outs for port in ports}
    assert sent_on == {(2, 3), (3, 3)}
    assert not sent_on & link_ports


class _LldpBlind(fakeoftable.FakeNetwork):
    """A network where LLDP never crosses the s1-s2 link (a link not yet discovered)."""

    def _transmit(self, dp_id, port_no, data, hops):
        if frame_fields(data, 0).get("eth_type") == 0x88CC and (dp_id, port_no) in {(1, 1), (2, 1)}:
            return
        super()._transmit(dp_id, port_no, data, hops)


def test_arp_flood_echoed_over_an_undiscovered_link_is_ignored():
    links = fakeoftable.TRIANGLE_LINKS
    net = _LldpBlind(links, fakeoftable.hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                     fakeoftable.config_for(links))
    for dp in (1, 2, 3):
        net.connect(dp)
    net.run(0.5)        # s1-s2 ports are neither links nor host ports yet
    h1 = net.host("h1")
    net.send("h1", arp_request(h1, "10.0.0.99"))
    # The flood crossed s1-s2 once and came back to the controller, which
    # recognised its own request: h1 did not "move", and nothing looped.
    assert net.core.counters["arp_echoes_dropped"] >= 1
    host = net.core.hosts.get(h1.mac)
    assert (host.dp_id, host.port_no) == (1, 3)
    assert net.core.counters["arp_floods"] == 1


def test_arp_reply_from_an_unknown_host_reaches_the_requester():
    net = triangle()
    h1, h3 = net.host("h1"), net.host("h3")
    net.send("h1", arp_request(h1, h3.ip))       # nobody knows h3 yet: flooded to hosts
    assert len(net.inbox("h3", ETH_TYPE_ARP)) == 1
    net.send("h3", arp_reply(h3, h1))
    (got,) = net.inbox("h1", ETH_TYPE_ARP)
    assert got.get_protocol(arp.arp).src_mac == h3.mac
    assert net.core.hosts.by_ip(h3.ip).mac == h3.mac
    # The unicast reply travelled the h3 -> h1 path, which is now installed.
    assert net.trace("h3", "h1") == [3, 1]


def test_unicast_arp_probe_reaches_the_real_host_through_the_data_plane(tri):
    """A neighbour probe must be answered by the host itself (so a dead host is
    noticed), and once the pair's path exists it needs no controller at all."""
    h1, h2 = tri.host("h1"), tri.host("h2")
    probe = fakeoftable._frame(
        ethernet_header(h1.mac, h2.mac),
        arp.arp(opcode=arp.ARP_REQUEST, src_mac=h1.mac, src_ip=h1.ip, dst_mac=h2.mac, dst_ip=h2.ip))
    tri.send("h1", probe)
    (got,) = tri.inbox("h2", ETH_TYPE_ARP)
    assert got.get_protocol(arp.arp).dst_ip == h2.ip
    assert tri.inbox("h1") == []                      # the controller did not answer for h2
    packet_ins = tri.core.counters["packet_in"]
    tri.clear_inboxes()
    tri.send("h1", probe)
    assert len(tri.inbox("h2", ETH_TYPE_ARP)) == 1
    assert tri.core.counters["packet_in"] == packet_ins


# ---- unicast paths -------------------------------------------------------------------------------

def test_first_packet_installs_the_path_and_is_delivered(tri):
    _ping(tri, "h1", "h3")
    (pkt,) = tri.inbox("h3", ETH_TYPE_IP)
    assert pkt.get_protocol(ipv4.ipv4).src == "10.0.0.1"
    assert tri.trace("h1", "h3") == [1, 3]
    with pytest.raises(TraceError, match="controller"):
        tri.trace("h3", "h1")            # only the direction that was asked for
    assert tri.out_of_sync() == {}


def test_ipv4_between_known_hosts_installs_the_whole_path():
    net = diamond()
    net.announce("h1", "h4")
    _ping(net, "h1", "h4")
    _ping(net, "h4", "h1")
    assert net.trace("h1", "h4") == [1, 2, 4]
    assert net.trace("h4", "h1") == [4, 2, 1]
    assert len(net.inbox("h4", ETH_TYPE_IP)) == 1 and len(net.inbox("h1", ETH_TYPE_IP)) == 1
    assert net.out_of_sync() == {}


def test_hosts_on_the_same_switch_get_a_one_switch_path():
    net = fakeoftable.FakeNetwork(fakeoftable.TRIANGLE_LINKS,
                                  fakeoftable.hosts_on(("a", 1, 3), ("b", 1, 4), ("c", 2, 3))).start()
    net.announce("a", "b")
    _ping(net, "a", "b")
    assert net.trace("a", "b") == [1]
    assert len(net.inbox("b", ETH_TYPE_IP)) == 1
    assert net.link_frames == []


def test_second_packet_needs_no_controller(tri):
    _ping(tri, "h1", "h2")
    before = tri.core.counters["packet_in"]
    _ping(tri, "h1", "h2")
    assert tri.core.counters["packet_in"] == before
    assert len(tri.inbox("h2", ETH_TYPE_IP)) == 2


def test_packet_to_unknown_destination_installs_nothing(tri):
    stranger = fakeoftable.FakeHost("x", 2, 3, "02:00:00:00:00:77", "10.0.0.77")
    flows_before = {dp: s.specs() for dp, s in tri.switches.items()}
    tri.send("h1", ipv4_frame(tri.host("h1"), stranger))
    assert {dp: s.specs() for dp, s in tri.switches.items()} == flows_before
    assert tri.core.counters["unknown_destination"] == 1


def _pair_flows(net, dp, a, b):
    macs = {net.host(a).mac, net.host(b).mac}
    return [s for s in net.switches[dp].specs()
            if {s.match_dict.get("eth_src"), s.match_dict.get("eth_dst")} == macs]


def test_link_down_reroutes_and_clears_the_old_path():
    net = diamond()
    net.announce("h1", "h4")
    _ping(net, "h1", "h4")
    _ping(net, "h4", "h1")
    assert _pair_flows(net, 2, "h1", "h4")
    net.link_down(2, 2)                          # the 2-4 link on the path
    assert net.trace("h1", "h4") == [1, 3, 4]
    assert net.trace("h4", "h1") == [4, 3, 1]
    assert _pair_flows(net, 2, "h1", "h4") == []
    assert net.out_of_sync() == {}
    _ping(net, "h1", "h4")
    assert len(net.inbox("h4", ETH_TYPE_IP)) == 2


def test_reroute_emits_new_hops_before_deleting_old_ones():
    net = diamond()
    net.announce("h1", "h4")
    _ping(net, "h1", "h4")
    net.up[(2, 2)] = net.up[(4, 1)] = False
    sent_before = len(net.sent)
    net.set_port(2, 2, False)
    mods = [(dp, m) for dp, m in net.sent[sent_before:] if isinstance(m, parser.OFPFlowMod)]
    commands = [m.command for _, m in mods]
    assert ofp.OFPFC_ADD in commands and ofp.OFPFC_DELETE_STRICT in commands
    assert commands == sorted(commands, key=lambda c: c != ofp.OFPFC_ADD)
    # The ingress switch changes last among the additions, after the new hop s3.
    forward = PIPELINE.table("forward").table_id
    adds = [dp for dp, m in mods
            if m.command == ofp.OFPFC_ADD and m.table_id == forward and m.priority == 1000]
    assert adds.index(3) < adds.index(1)


def test_host_move_repoints_paths(tri):
    _ping(tri, "h1", "h2")
    moved = fakeoftable.FakeHost("h2", 3, 3, tri.host("h2").mac, tri.host("h2").ip)
    tri.hosts["h2"] = moved              # h2 now sits behind s3's host port (h3 went away)
    tri.host_at[(3, 3)] = moved
    tri.send("h2", fakeoftable.gratuitous_arp(moved))
    assert tri.trace("h1", "h2") == [1, 3]
    assert tri.out_of_sync() == {}


# ---- flooding ------------------------------------------------------------------------------------

@pytest.mark.parametrize("src", ["h1", "h2", "h3"])
def test_broadcast_reaches_every_other_host_once_without_looping(tri, src):
    host = tri.host(src)
    walk = tri.walk(host.dp_id, host.port_no, frame_fields(broadcast_frame(host), host.port_no))
    assert collections.Counter(walk.delivered) == {n: 1 for n in ("h1", "h2", "h3") if n != src}
    assert walk.to_controller == []


def test_broadcast_is_carried_end_to_end_by_the_network(tri):
    tri.send("h2", broadcast_frame(tri.host("h2")))
    assert [len(tri.inbox(n, ETH_TYPE_IP)) for n in ("h1", "h2", "h3")] == [1, 0, 1]
    assert len(tri.link_frames) == 2     # one copy per tree link, none on the blocked one


def test_flood_still_reaches_everyone_after_a_tree_link_fails(tri):
    tree = tri.core.topology.spanning_tree()
    a, b = sorted(min(tree, key=sorted))
    port = next(pa for x, pa, y, _ in fakeoftable.TRIANGLE_LINKS if (x, y) == (a, b))
    tri.link_down(a, port)
    assert frozenset((a, b)) not in tri.core.topology.spanning_tree()
    for src in ("h1", "h2", "h3"):
        host = tri.host(src)
        walk = tri.walk(host.dp_id, host.port_no, frame_fields(broadcast_frame(host), host.port_no))
        assert sorted(walk.delivered) == sorted({"h1", "h2", "h3"} - {src})
    assert tri.out_of_sync() == {}


def test_a_naive_flood_to_every_port_would_be_caught_looping(tri):
    # Guard for the fake itself: flooding on every port, no blocking, must loop.
    for dp, switch in tri.switches.items():
        for spec in switch.specs():
            if spec.table == "flood" and spec.priority > 0:
                switch.apply(flows.to_delete(spec))
        switch.apply(flows.to_flowmod(flow("flood", 10, {}, [("output", p) for p in tri.ports[dp]])))
    host = tri.host("h1")
    with pytest.raises(fakeoftable.LoopError):
        tri.walk(host.dp_id, host.port_no, frame_fields(broadcast_frame(host), host.port_no))


# ---- reconnect and reconciliation -------------------------------------------------------------

@pytest.fixture
def settled(tri):
    _ping(tri, "h1", "h2")
    _ping(tri, "h2", "h1")
    assert tri.out_of_sync() == {}
    return tri


def _reconcile(net, dp):
    """Dump the switch again (flows, groups, meters) and return the mods that followed."""
    sent = len(net.sent)
    net.deliver(net.core.request_dumps(dp))
    return [m for _, m in net.sent[sent:]
            if isinstance(m, (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod))]


def test_dump_equal_to_the_installed_flows_changes_nothing(settled):
    for dp in (1, 2, 3):
        assert _reconcile(settled, dp) == []


def test_extra_flow_with_our_cookie_is_strictly_deleted(settled):
    extra = flow("forward", 1000, {"eth_src": "02:00:00:00:00:aa", "eth_dst": "02:00:00:00:00:bb"},
                 [("output", 3)], cookie=cookies.cookie("forwarding"))
    settled.switches[1].apply(flows.to_flowmod(extra))
    (msg,) = _reconcile(settled, 1)
    assert msg.command == ofp.OFPFC_DELETE_STRICT
    assert extra not in settled.switches[1].specs()
    assert settled.out_of_sync() == {}


@pytest.mark.parametrize("cookie", [0, 0xDEAD << cookies.OWNER_SHIFT])
def test_flow_with_a_foreign_cookie_is_deleted(settled, cookie):
    alien = flow("forward", 1000, {"eth_src": "02:00:00:00:00:aa", "eth_dst": "02:00:00:00:00:bb"},
                 [("output", 2)], cookie=cookie)
    settled.switches[2].apply(flows.to_flowmod(alien))
    assert len(_reconcile(settled, 2)) == 1
    assert settled.out_of_sync() == {}


def test_flow_in_a_table_outside_the_pipeline_is_deleted(settled):
    settled.switches[3].apply(parser.OFPFlowMod(
        datapath=None, table_id=7, command=ofp.OFPFC_ADD, priority=5, cookie=0,
        match=parser.OFPMatch(in_port=1), instructions=[]))
    (msg,) = _reconcile(settled, 3)
    assert (msg.command, msg.table_id) == (ofp.OFPFC_DELETE_STRICT, 7)
    assert settled.switches[3].flows(table_id=7) == []


def test_our_flow_replaced_by_a_foreign_one_with_the_same_match_is_restored(settled):
    (ours,) = _pair_flows(settled, 1, "h1", "h2")[:1]
    hijack = flow("forward", ours.priority, ours.match_dict, [("output", 3)], cookie=0)
    settled.switches[1].apply(flows.to_flowmod(hijack))
    _reconcile(settled, 1)
    assert settled.out_of_sync() == {}
    assert settled.trace("h1", "h2") == [1, 2]


def test_missing_flow_is_re_added(settled):
    h1_to_h2 = [s for s in _pair_flows(settled, 1, "h1", "h2")
                if s.match_dict["eth_src"] == settled.host("h1").mac]
    settled.switches[1].apply(flows.to_delete(h1_to_h2[0]))
    with pytest.raises(TraceError):
        settled.trace("h1", "h2")
    msgs = _reconcile(settled, 1)
    assert [m.command for m in msgs] == [ofp.OFPFC_ADD]
    assert settled.trace("h1", "h2") == [1, 2]


def test_switch_reconnecting_with_an_empty_table_gets_everything_back(settled):
    settled.switches[2].apply(flows.delete_all())
    settled.connect(2)                           # the stats request is answered with []
    settled.run(settled.config.controller.discovery.edge_after_s + 2.0)
    _ping(settled, "h1", "h2")
    _ping(settled, "h2", "h1")
    assert settled.out_of_sync() == {}
    assert settled.trace("h1", "h2") == [1, 2]
    assert settled.core.counters["reconciliations"] == 4


@pytest.fixture
def diamond_with_paths():
    net = diamond()
    net.announce("h1", "h4")
    _ping(net, "h1", "h4")
    _ping(net, "h4", "h1")
    return net


def test_switch_that_loses_its_controller_keeps_forwarding_until_its_links_time_out(diamond_with_paths):
    net = diamond_with_paths
    sent = len(net.sent)
    net.disconnect(2)
    assert net.sent[sent:] == []
    assert net.trace("h1", "h4") == [1, 2, 4]            # its data plane still works
    net.run(net.config.controller.discovery.link_timeout_s + 1.0)
    assert net.trace("h1", "h4") == [1, 3, 4]
    assert net.trace("h4", "h1") == [4, 3, 1]
    assert 2 not in net.core.topology.switches           # pruned after the timeout
    assert net.out_of_sync() == {}


def test_dead_switch_is_routed_around_once_its_links_time_out(diamond_with_paths):
    net = diamond_with_paths
    for port in net.ports[2]:
        net.up[(2, port)] = False                         # power cut: no port-status either
    net.disconnect(2)
    net.run(net.config.controller.discovery.link_timeout_s + 1.0)
    assert net.trace("h1", "h4") == [1, 3, 4]
    assert net.out_of_sync() == {}


def test_quick_reconnect_with_intact_tables_sends_no_flow_changes(diamond_with_paths):
    net = diamond_with_paths
    net.disconnect(2)
    net.run(1.0)
    sent = len(net.sent)
    net.connect(2)                                        # the dump holds exactly our flows
    net.run(2.0)
    assert [m for _, m in net.sent[sent:] if isinstance(m, parser.OFPFlowMod)] == []
    assert net.trace("h1", "h4") == [1, 2, 4]
    assert net.out_of_sync() == {}


def test_path_broken_by_a_partition_comes_back_with_the_link(diamond_with_paths):
    net = diamond_with_paths
    net.link_down(1, 1)
    net.link_down(1, 2)                                   # s1 (and h1) cut off
    with pytest.raises(TraceError):
        net.trace("h1", "h4")
    net.set_port(1, 2, True)
    net.set_port(3, 1, True)
    net.run(1.0)
    assert net.trace("h1", "h4") == [1, 3, 4]
    assert net.trace("h4", "h1") == [4, 3, 1]
    assert net.out_of_sync() == {}


# ---- garbage from the network -----------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\x00\x01", bytes(13), bytes(14),
                                  b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00\x01\x02"],
                         ids=["empty", "two-bytes", "short-header", "zeros", "truncated-arp"])
def test_unparseable_packet_in_is_counted_and_ignored(tri, data):
    before = tri.core.counters["bad_packets"]
    assert tri.core.packet_in(1, 3, data, tri.now) == []
    assert tri.core.counters["bad_packets"] == before + 1


def test_random_bytes_never_raise_and_send_nothing(tri):
    rng = random.Random(20240611)
    links_before = len(tri.core.topology.links())
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 120))
        dp = rng.choice([1, 2, 3])
        port = rng.choice([1, 2, 3])
        assert tri.core.packet_in(dp, port, data, tri.now) == []
    assert tri.core.counters["bad_packets"] > 0
    assert len(tri.core.topology.links()) == links_before


def test_packet_in_from_an_unknown_switch_is_ignored(tri):
    assert tri.core.packet_in(99, 1, ipv4_frame(tri.host("h1"), tri.host("h2")), tri.now) == []


def test_fake_switch_refuses_output_to_a_port_it_does_not_have(tri):
    with pytest.raises(FakeSwitchError, match="no port 42"):
        tri.deliver([(1, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", 42)], b"\x00" * 60))])
