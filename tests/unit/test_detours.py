"""Tests for fast-failover local protection (controller.detours, controller.forwarding)
through a FakeNetwork: every protected hop sends to a fast-failover group whose backup
bucket tags the frame onto a detour; a link that dies before the controller hears of
it costs no delivery (the fake switches pick the first live bucket, as OVS does); the
controller then recomputes primaries and detours; reroutes are make-before-break; and
entries go when nothing uses them."""

import collections
import itertools
import random

import networkx as nx
import pytest
from os_ken.lib.packet import ethernet, vlan
from os_ken.lib.packet.ether_types import ETH_TYPE_IP
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, detours, forwarding
from controller.flows import OFPVID_PRESENT

from tests.lib.fakeoftable import (TRIANGLE_LINKS, FakeNetwork, TraceError, config_for, hosts_on, ipv4_frame,
                                   triangle)

FORWARD = 2


def _ping(net, src, dst):
    net.send(src, ipv4_frame(net.host(src), net.host(dst)))


def _numbered(pairs):
    """Links ``(a, pa, b, pb)`` for switch pairs, ports numbered from 1 on each switch."""
    ports = collections.Counter()
    links = []
    for a, b in pairs:
        ports[a] += 1
        ports[b] += 1
        links.append((a, ports[a], b, ports[b]))
    return links


# A ring of six with two chords: every link has a detour.
MESH_LINKS = _numbered([(1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 1), (1, 4), (2, 5)])
# The triangle plus s4 hanging off s3: the s3-s4 link is a bridge.
TAIL_LINKS = TRIANGLE_LINKS + [(3, 4, 4, 1)]


def mesh(fast_failover=True) -> FakeNetwork:
    hosts = hosts_on(*[(f"h{dp}", dp, 9) for dp in range(1, 7)])
    net = FakeNetwork(MESH_LINKS, hosts, config_for(MESH_LINKS, fast_failover=fast_failover)).start()
    net.announce(*net.hosts)
    for src, dst in itertools.permutations(sorted(net.hosts), 2):
        _ping(net, src, dst)
    net.clear_inboxes()
    return net


def tail() -> FakeNetwork:
    net = FakeNetwork(TAIL_LINKS, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3), ("h4", 4, 3)),
                      config_for(TAIL_LINKS)).start()
    net.announce(*net.hosts)
    return net


@pytest.fixture
def tri():
    net = triangle()
    net.announce("h1", "h2", "h3")
    _ping(net, "h1", "h2")
    net.clear_inboxes()
    return net


def _cut(net, dp, port):
    """Pull a cable without telling the controller: the switches' ports are down
    (fast-failover watch ports see it), no port-status reaches the core."""
    net.up[(dp, port)] = False
    net.up[net.peer[(dp, port)]] = False


def _mend(net, dp, port):
    net.up[(dp, port)] = True
    net.up[net.peer[(dp, port)]] = True


def _walk(net, src, dst):
    s, d = net.host(src), net.host(dst)
    return net.walk(s.dp_id, s.port_no, {"eth_src": s.mac, "eth_dst": d.mac, "eth_type": ETH_TYPE_IP})


def _delivered_untagged(net, src, dst) -> list[int]:
    """The switches a frame crosses; raises unless it reaches dst alone, once, untagged,
    without the controller."""
    walk = _walk(net, src, dst)
    path = [dp for dp, _ in walk.entered]
    if walk.delivered != [dst] or walk.to_controller or walk.dropped:
        raise TraceError(f"{src}->{dst}: delivered {walk.delivered}, controller {walk.to_controller}, "
                         f"dropped {walk.dropped} (path {path})")
    ((_, headers),) = walk.packets
    assert "vlan_vid" not in headers, f"{src}->{dst} delivered tagged: {headers}"
    return path


def _tag_of(net, src, dst) -> int:
    """The tag of the first hop's detour on the pair's path."""
    return net.core.forwarding.paths[(net.host(src).mac, net.host(dst).mac)][0].detour.tag


def _tagged_flows(net, tag):
    return {dp: [s for s in sw.specs() if s.match_dict.get("vlan_vid") == OFPVID_PRESENT | tag]
            for dp, sw in net.switches.items()}


# ---- tags and group ids ----------------------------------------------------------------------

def test_link_tags_are_distinct_vlan_ids_that_depend_only_on_the_links():
    rng = random.Random(5)
    pairs = sorted({tuple(sorted(rng.sample(range(1, 200), 2))) for _ in range(600)})
    tags = detours.link_tags(pairs)
    assert set(tags) == set(pairs)
    assert len(set(tags.values())) == len(pairs)
    assert all(detours.TAG_MIN <= t <= detours.TAG_MAX for t in tags.values())
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert detours.link_tags(shuffled) == tags
    # A link going away moves no other tag unless it had pushed that one off its slot.
    gone = pairs[len(pairs) // 2]
    after = detours.link_tags([p for p in pairs if p != gone])
    moved = {p for p in after if after[p] != tags[p]}
    displaced = {p for p in pairs if tags[p] != detours.link_tags([p])[p]}
    assert moved <= displaced


def test_links_beyond_the_vlan_ids_go_without_a_tag():
    pairs = [(a, a + 1) for a in range(1, detours.N_TAGS + 11)]
    tags = detours.link_tags(pairs)
    assert len(tags) == detours.N_TAGS and len(set(tags.values())) == detours.N_TAGS


def test_group_ids_pack_primary_and_backup_ports_in_the_forwarding_range():
    ids = {detours.group_id(out, backup, back) for out in (1, 2, 2047) for backup in (1, 2, 2047)
           for back in (False, True)}
    assert len(ids) == 18 and {cookies.id_owner(gid) for gid in ids} == {"forwarding"}
    assert detours.group_id(2048, 1, False) is None and detours.group_id(1, 0, True) is None


# ---- what is installed -----------------------------------------------------------------------

def test_a_protected_hop_sends_to_a_fast_failover_group_with_a_tagging_backup(tri):
    (s1_pair,) = [s for s in tri.switches[1].specs() if s.match_dict.get("eth_dst") == tri.host("h2").mac
                  and s.priority == forwarding.PRIO_PATH]
    ((kind, gid),) = s1_pair.actions
    assert kind == "group" and cookies.id_owner(gid) == "forwarding"
    (group,) = tri.switches[1].group_specs()
    tag = _tag_of(tri, "h1", "h2")
    primary, backup = group.buckets
    assert group.type == "ff"
    assert (primary.watch_port, primary.actions) == (1, (("output", 1),))
    assert (backup.watch_port, backup.actions) == (2, (("push_vlan", 0x8100),
                                                       ("set_field", "vlan_vid", OFPVID_PRESENT | tag),
                                                       ("output", 2)))
    # The last hop delivers to the host: nothing to protect there.
    (s2_pair,) = [s for s in tri.switches[2].specs() if s.priority == forwarding.PRIO_PATH]
    assert s2_pair.actions == (("output", 3),)
    assert tri.switches[2].group_specs() == set()
    # The detour s1 -> s3 -> s2: s3 carries the tagged frame on, s2 untags it for h2.
    flows = _tagged_flows(tri, tag)
    assert [s.actions for s in flows[3]] == [(("output", 2),)]
    assert [s.actions for s in flows[2]] == [(("pop_vlan",), ("output", 3))]
    assert flows[1] == []
    assert tri.out_of_sync() == {}


def test_a_bridge_hop_outputs_plainly_and_the_others_are_protected():
    net = tail()
    _ping(net, "h1", "h4")
    assert net.trace("h1", "h4") == [1, 3, 4]
    hops = net.core.forwarding.paths[(net.host("h1").mac, net.host("h4").mac)]
    assert [h.detour is not None for h in hops] == [True, False, False]
    assert [dp for dp, _ in hops[0].detour.steps] == [1, 2, 3, 4]
    (s3_pair,) = [s for s in net.switches[3].specs() if s.priority == forwarding.PRIO_PATH]
    assert s3_pair.actions == (("output", 4),)
    assert net.switches[3].group_specs() == set()


def test_without_fast_failover_paths_are_plain_outputs_and_nothing_is_tagged():
    net = mesh(fast_failover=False)
    for sw in net.switches.values():
        assert sw.group_specs() == set()
        assert not [s for s in sw.specs() if "vlan_vid" in s.match_dict]
    assert net.out_of_sync() == {}


def test_pairs_share_groups_and_detour_flows():
    links = TRIANGLE_LINKS
    net = FakeNetwork(links, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h2b", 2, 4), ("h1b", 1, 4)),
                      config_for(links)).start()
    net.announce(*net.hosts)
    for src, dst in (("h1", "h2"), ("h1", "h2b"), ("h1b", "h2"), ("h1b", "h2b")):
        _ping(net, src, dst)
    assert len(net.switches[1].group_specs()) == 1            # (port 1, backup port 2), four pairs
    tag = _tag_of(net, "h1", "h2")
    assert len(_tagged_flows(net, tag)[3]) == 2               # one per destination host
    assert net.out_of_sync() == {}


# ---- the data plane on its own ---------------------------------------------------------------

def test_a_frame_takes_the_detour_when_the_port_dies_before_the_controller_hears(tri):
    _cut(tri, 1, 1)
    packet_ins = tri.core.counters["packet_in"]
    sent = len(tri.sent)
    _ping(tri, "h1", "h2")
    (got,) = tri.inbox("h2", ETH_TYPE_IP)
    assert got.get_protocol(vlan.vlan) is None                # untagged on the host's wire
    assert got.get_protocol(ethernet.ethernet).src == tri.host("h1").mac
    assert got.protocols[-1] == b"foresight"
    # Out of s1's backup port and on from s3, tagged on both links.
    assert [(dp, port) for dp, port, _ in tri.link_frames] == [(1, 2), (3, 2)]
    assert all(frame[12:14] == b"\x81\x00" for _, _, frame in tri.link_frames)
    assert tri.core.counters["packet_in"] == packet_ins and len(tri.sent) == sent
    assert _delivered_untagged(tri, "h1", "h2") == [1, 3, 2]


def test_a_detour_that_turns_back_leaves_by_the_in_port():
    """In a ring, a hop's only detour starts back where the frame came from: OpenFlow
    drops a plain output to the in port, so the backup bucket outputs to in_port."""
    links = _numbered([(1, 2), (2, 3), (3, 4), (4, 1)])
    net = FakeNetwork(links, hosts_on(("h1", 1, 9), ("h3", 3, 9)), config_for(links)).start()
    net.announce("h1", "h3")
    _ping(net, "h1", "h3")
    hops = net.core.forwarding.paths[(net.host("h1").mac, net.host("h3").mac)]
    assert [h.dp_id for h in hops] == [1, 2, 3]
    assert hops[1].detour.backup_port == hops[1].in_port
    (group,) = net.switches[2].group_specs()
    assert group.buckets[1].actions[-1] == ("in_port",)
    net.clear_inboxes()
    _cut(net, 2, hops[1].out_port)
    _ping(net, "h1", "h3")
    (got,) = net.inbox("h3", ETH_TYPE_IP)
    assert got.get_protocol(vlan.vlan) is None
    assert _delivered_untagged(net, "h1", "h3") == [1, 2, 1, 4, 3]


def test_every_single_link_failure_on_every_path_is_survived_without_the_controller():
    net = mesh()
    graph = nx.Graph((a, b) for a, _, b, _ in MESH_LINKS)
    assert not list(nx.bridges(graph))
    checked = 0
    for (src_mac, dst_mac), hops in sorted(net.core.forwarding.paths.items()):
        src = next(n for n, h in net.hosts.items() if h.mac == src_mac)
        dst = next(n for n, h in net.hosts.items() if h.mac == dst_mac)
        assert _delivered_untagged(net, src, dst) == [h.dp_id for h in hops]
        for hop in hops[:-1]:
            _cut(net, hop.dp_id, hop.out_port)
            path = _delivered_untagged(net, src, dst)     # raises on a loop, a drop or a tag left on
            assert path[0] == hops[0].dp_id and path[-1] == hops[-1].dp_id
            _mend(net, hop.dp_id, hop.out_port)
            checked += 1
    assert checked >= 30


def test_a_tagged_frame_without_a_detour_flow_is_dropped_not_looped(tri):
    h1, h2 = tri.host("h1"), tri.host("h2")
    for dp, port in ((3, 1), (2, 1), (1, 3)):
        fields = {"eth_src": h1.mac, "eth_dst": h2.mac, "eth_type": ETH_TYPE_IP,
                  "vlan_vid": OFPVID_PRESENT | 999}
        walk = tri.walk(dp, port, fields)
        assert (walk.delivered, walk.to_controller, walk.dropped) == ([], [], [(dp, port)])


def test_a_second_failure_on_the_detour_drops_rather_than_loops(tri):
    _cut(tri, 1, 1)
    _cut(tri, 3, 2)
    walk = _walk(tri, "h1", "h2")
    assert walk.delivered == [] and walk.to_controller == []


# ---- the controller afterwards -----------------------------------------------------------------

def test_the_controller_then_recomputes_primaries_and_detours():
    net = mesh()
    pair = (net.host("h1").mac, net.host("h3").mac)
    before = net.core.forwarding.paths[pair]
    dead = before[0]
    tag = dead.detour.tag
    _cut(net, dead.dp_id, dead.out_port)
    assert _delivered_untagged(net, "h1", "h3")
    net.link_down(dead.dp_id, dead.out_port)                  # now the port-status arrives
    after = net.core.forwarding.paths[pair]
    assert after != before and _delivered_untagged(net, "h1", "h3") == [h.dp_id for h in after]
    assert all(h.detour is not None for h in after[:-1])        # still 2-edge-connected
    # Nothing is tagged for the dead link any more, and the switches hold exactly
    # what the controller wants.
    assert not any(_tagged_flows(net, tag).values())
    assert all(h.detour.tag != tag for hops in net.core.forwarding.paths.values() for h in hops if h.detour)
    assert net.out_of_sync() == {}


def test_groups_and_detours_go_when_no_path_uses_them(tri):
    tag = _tag_of(tri, "h1", "h2")
    assert tri.switches[1].group_specs() and any(_tagged_flows(tri, tag).values())
    tri.link_down(1, 1)
    assert tri.trace("h1", "h2") == [1, 3, 2]
    # s1 -> s3 -> s2 has no detour left in a triangle without s1-s2: plain outputs.
    assert all(sw.group_specs() == set() for sw in tri.switches.values())
    assert not any(_tagged_flows(tri, tag).values())
    assert tri.out_of_sync() == {}


def test_a_switch_reconnecting_with_its_groups_in_place_gets_no_change(tri):
    tri.disconnect(1)
    sent = len(tri.sent)
    tri.connect(1)
    mods = [m for _, m in tri.sent[sent:] if isinstance(m, (parser.OFPFlowMod, parser.OFPGroupMod))]
    assert mods == []
    assert tri.core.counters["reconciliations"] == 4


# ---- make before break ---------------------------------------------------------------------------

class Watched(FakeNetwork):
    """A network that follows one pair's frames through the tables after every flow-
    or group-mod any switch applies: a reroute is make-before-break if none is lost."""

    watch: tuple[str, str] | None = None

    def _handle(self, dp_id, msg):
        super()._handle(dp_id, msg)
        if self.watch and isinstance(msg, (parser.OFPFlowMod, parser.OFPGroupMod)):
            self.mods_watched += 1
            try:
                self.seen.append(_delivered_untagged(self, *self.watch))
            except TraceError as err:
                self.lost.append(f"after {type(msg).__name__} to s{dp_id}: {err}")

    def follow(self, src, dst):
        self.watch, self.seen, self.lost, self.mods_watched = (src, dst), [], [], 0


@pytest.mark.parametrize("fast_failover", [True, False])
def test_rerouting_back_to_a_restored_link_never_drops_the_flow(fast_failover):
    net = Watched(TRIANGLE_LINKS, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                  config_for(TRIANGLE_LINKS, fast_failover=fast_failover)).start()
    net.announce("h1", "h2", "h3")
    _ping(net, "h1", "h2")
    _ping(net, "h2", "h1")
    net.link_down(1, 1)
    assert net.trace("h1", "h2") == [1, 3, 2]
    net.follow("h1", "h2")
    _mend(net, 1, 1)
    net.set_port(1, 1, True)                                  # LLDP finds the link again at once
    net.set_port(2, 1, True)
    net.run(2.0)
    assert net.trace("h1", "h2") == [1, 2]
    assert net.mods_watched > 0 and net.lost == []
    assert {tuple(p) for p in net.seen} == {(1, 3, 2), (1, 2)}
    assert net.out_of_sync() == {}


def test_the_controllers_reroute_after_a_local_failover_never_drops_the_flow():
    net = Watched(MESH_LINKS, hosts_on(*[(f"h{dp}", dp, 9) for dp in range(1, 7)]),
                  config_for(MESH_LINKS)).start()
    net.announce(*net.hosts)
    _ping(net, "h1", "h3")
    hop = net.core.forwarding.paths[(net.host("h1").mac, net.host("h3").mac)][0]
    _cut(net, hop.dp_id, hop.out_port)
    net.follow("h1", "h3")
    net.link_down(hop.dp_id, hop.out_port)
    assert net.mods_watched > 0 and net.lost == []
    assert net.out_of_sync() == {}
