"""Slices in a fake OpenFlow network: the controller core with the SliceManager as a
provider, fake switches running what it installs. Judged by what happens to frames:
who receives them, with which addresses, marks and meters."""

from __future__ import annotations

import pytest
from os_ken.lib.packet import arp as arp_pkt

from tests.lib import fakeoftable
from apps.slices import dataplane
from controller import cookies
from apps.slices.manager import SliceManager
from apps.slices.store import SliceStore
from tests.lib.fakeoftable import FakeNetwork, arp_request, config_for, frame_fields, hosts_on, udp_frame

LINKS = fakeoftable.TRIANGLE_LINKS
VIP = "10.50.0.1"
VMAC = "02:fe:0a:32:00:01"
TCP = 6


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def net(tmp_path):
    # c1 (client) on s1; members m1, m2 on s2 and m3 on s3.
    hosts = hosts_on(("c1", 1, 3), ("m1", 2, 3), ("m2", 2, 4), ("m3", 3, 3))
    net = FakeNetwork(LINKS, hosts, config_for(LINKS)).start()
    net.clock = Clock()
    net.path = tmp_path / "slices.sqlite"
    net.manager = attach(net, SliceStore(net.path))
    for name in ("m1", "m2", "m3"):
        h = net.host(name)
        net.manager.register_member("servers", name, h.ip)
    net.announce("c1", "m1", "m2", "m3")
    net.clear_inboxes()
    return net


def attach(net, store) -> SliceManager:
    manager = SliceManager(net.core.view, lambda: net.deliver(net.core.resync(net.now)), store, drain_s=30,
                           clock=net.clock, auto_drain=False)
    net.core.add_provider(manager)
    net.deliver(net.core.resync(net.now))
    return manager


def create(net, members=2, **over):
    spec = dict(name="web", client="acme", vip_cidr="10.50.0.0/29", bandwidth_mbps=10, per_member_mbps=5,
                pool="servers", max_members=3, priority="gold")
    spec.update(over)
    return net.manager.create(spec, members=members)


def tcp_to_vip(net, src_port: int) -> dict:
    c1 = net.host("c1")
    return {"eth_src": c1.mac, "eth_dst": VMAC, "eth_type": 0x0800, "ipv4_src": c1.ip, "ipv4_dst": VIP,
            "ip_proto": TCP, "ip_dscp": 0, "tcp_src": src_port, "tcp_dst": 80}


def member_reached(net, fields) -> tuple[str, dict]:
    c1 = net.host("c1")
    walk = net.walk(c1.dp_id, c1.port_no, fields)
    assert not walk.to_controller and not walk.dropped, walk
    assert len(walk.packets) == 1, walk
    return walk.packets[0]


def test_arp_for_the_vip_is_answered_with_the_virtual_mac(net):
    create(net)
    net.send("c1", arp_request(net.host("c1"), VIP))
    replies = [p.get_protocol(arp_pkt.arp) for p in net.inbox("c1")]
    assert [(r.opcode, r.src_ip, r.src_mac) for r in replies] == [(arp_pkt.ARP_REPLY, VIP, VMAC)]


def test_vip_traffic_is_rewritten_metered_marked_and_delivered_to_a_member(net):
    view = create(net)
    c1 = net.host("c1")
    sid = dataplane.ids(view.index)
    walk = net.walk(c1.dp_id, c1.port_no, frame_fields(udp_frame(c1, VMAC, VIP, 4000, 53), 0))
    assert not walk.to_controller and not walk.dropped
    (name, headers), = walk.packets
    member = net.host(name)
    assert name in {"m1", "m2"}
    assert (headers["eth_dst"], headers["ipv4_dst"], headers["ipv4_src"]) == (member.mac, member.ip, c1.ip)
    assert headers["ip_dscp"] == 46, "gold is marked EF"
    assert (1, sid.meter_in) in walk.meters, "metered at the first switch"
    # The meter is the slice's bandwidth.
    assert net.switches[1].meter_rate_kbps(sid.meter_in) == 10_000


def test_replies_leave_as_the_vip_and_the_vip_is_not_learned_as_the_members_address(net):
    create(net, members=1)
    c1, m1 = net.host("c1"), net.host("m1")
    net.send("m1", udp_frame(m1, c1.mac, c1.ip, 53, 4000))
    got = [frame_fields(bytes(p.data), 0) for p in net.inbox("c1")]
    assert [(f["ipv4_src"], f["ipv4_dst"], f["ip_dscp"]) for f in got] == [(VIP, c1.ip, 46)]
    assert net.core.hosts.get(m1.mac).ipv4 == {m1.ip}
    # The second reply needs no controller.
    walk = net.walk(m1.dp_id, m1.port_no, frame_fields(udp_frame(m1, c1.mac, c1.ip, 53, 4000), 0))
    assert walk.delivered == ["c1"] and not walk.to_controller


def test_tcp_connections_spread_and_stay_pinned_across_scaling(net):
    create(net, members=2)
    first = {port: member_reached(net, tcp_to_vip(net, port))[0] for port in range(5000, 5040)}
    assert set(first.values()) == {"m1", "m2"}, "connections spread over both members"
    assert len(net.switches[1].learned(4)) == 40, "one pin per connection on the client's switch"

    net.manager.scale("web", 3)
    again = {port: member_reached(net, tcp_to_vip(net, port))[0] for port in first}
    assert again == first, "scale-up moved no open connection"
    fresh = {member_reached(net, tcp_to_vip(net, port))[0] for port in range(6000, 6060)}
    assert "m3" in fresh, "the new member takes new connections"


def test_scale_down_drains_then_removes_the_member(net):
    create(net, members=3)
    first = {port: member_reached(net, tcp_to_vip(net, port))[0] for port in range(5000, 5060)}
    assert "m3" in first.values()
    net.manager.scale("web", 2)                 # m3 has the newest member VIP: it drains
    assert {member_reached(net, tcp_to_vip(net, p))[0] for p in first} == set(first.values())
    assert all(member_reached(net, tcp_to_vip(net, p))[0] != "m3" for p in range(7000, 7040)), \
        "no new connection reaches a draining member"
    net.clock.now += 30
    assert net.manager.finish_drains() == ["m3"]
    m3 = net.host("m3")
    assert not any(dict(f.match).get("eth_dst") == m3.mac for f in net.switches[1].specs()
                   if f.table == "classify"), "the drained member's rules are gone"
    assert net.manager.get("web").members[-1].host_id == "m2"


def test_a_restarted_manager_installs_the_same_rules(net):
    create(net, members=2)
    before = {dp: (sw.specs(), sw.group_specs(), sw.meter_specs()) for dp, sw in net.switches.items()}
    net.core.remove_provider("slices")
    net.manager.store.close()
    attach(net, SliceStore(net.path))
    after = {dp: (sw.specs(), sw.group_specs(), sw.meter_specs()) for dp, sw in net.switches.items()}
    assert after == before
    assert net.out_of_sync() == {}


def test_deleting_the_slice_removes_everything_it_installed(net):
    create(net, members=2)
    net.manager.delete("web")
    for sw in net.switches.values():
        assert not [s for s in sw.specs() if cookies.owner_of(s.cookie) == dataplane.OWNER]
        assert not sw.group_specs()
        assert not [m for m in sw.meter_specs() if cookies.id_owner(m.meter_id) == dataplane.OWNER]
    net.send("c1", arp_request(net.host("c1"), VIP))
    assert not [p for p in net.inbox("c1") if p.get_protocol(arp_pkt.arp)], "the VIP is no longer answered"


def test_no_rules_until_a_member_is_seen(tmp_path):
    hosts = hosts_on(("c1", 1, 3), ("m1", 2, 3))
    net = FakeNetwork(LINKS, hosts, config_for(LINKS)).start()
    net.clock = Clock()
    net.manager = attach(net, None)
    net.manager.register_member("servers", "m1", net.host("m1").ip)
    create(net, members=1, max_members=1)
    assert not net.switches[1].group_specs(), "nowhere to send VIP traffic yet"
    net.announce("m1")                          # the member shows up: rules follow
    assert net.switches[1].group_specs()
    assert member_reached(net, tcp_to_vip(net, 5000))[0] == "m1"


# ---- the manager's per-slice entries cache: reused while nothing they depend on changed ----------

def assert_like_a_fresh_manager(net):
    """What the manager wants on every switch, cache and all, is what a manager that
    never built anything (loading the same state file) wants."""
    store = SliceStore(net.path)
    try:
        fresh = SliceManager(net.core.view, store=store, auto_drain=False)
        for dp_id in sorted(net.switches):
            assert net.manager.desired(dp_id, net.now) == fresh.desired(dp_id, net.now), f"s{dp_id}"
    finally:
        store.close()


def move(net, name: str, dp_id: int, port_no: int):
    """Unplug host ``name`` and plug it into dp_id:port_no (whoever was there is unplugged);
    it announces itself there."""
    old = net.host(name)
    moved = fakeoftable.FakeHost(name, dp_id, port_no, old.mac, old.ip)
    del net.host_at[(old.dp_id, old.port_no)]
    net.hosts[name] = moved
    net.host_at[(dp_id, port_no)] = moved
    net.announce(name)
    net.clear_inboxes()


def reply_source(net, member: str) -> str:
    """The source address c1 sees on a reply from ``member``."""
    c1, m = net.host("c1"), net.host(member)
    net.clear_inboxes()
    net.send(member, udp_frame(m, c1.mac, c1.ip, 53, 4000))
    (got,) = [frame_fields(bytes(p.data), 0) for p in net.inbox("c1")]
    return got["ipv4_src"]


def test_another_slice_leaves_an_unchanged_slices_entries_as_they_were(net):
    create(net, members=1)
    web = {dp: net.manager.desired(dp, net.now) for dp in net.switches}
    create(net, members=1, name="api", vip_cidr="10.60.0.0/29")
    for dp_id, before in web.items():
        after = net.manager.desired(dp_id, net.now)
        # The very same objects: reused, not rebuilt (what keeps a create cheap).
        assert {id(f) for f in before.flows} <= {id(f) for f in after.flows}
        assert len(after.flows) > len(before.flows)
    assert_like_a_fresh_manager(net)


def test_a_member_that_moves_takes_its_slice_rules_along(net):
    create(net, members=1, max_members=1)                       # m1, on s2 port 3
    assert member_reached(net, tcp_to_vip(net, 5000))[0] == "m1"
    assert reply_source(net, "m1") == VIP

    move(net, "m1", 2, 4)                                       # another port, same switch
    assert member_reached(net, tcp_to_vip(net, 5001))[0] == "m1"
    assert reply_source(net, "m1") == VIP, "the reply rule follows the member's port"
    assert_like_a_fresh_manager(net)

    move(net, "m1", 3, 3)                                       # another switch
    walk = net.walk(1, 3, tcp_to_vip(net, 5002))
    assert walk.delivered == ["m1"] and [dp for dp, _ in walk.entered] == [1, 3], walk
    assert reply_source(net, "m1") == VIP
    assert not [f for f in net.switches[2].specs() if dict(f.match).get("eth_src") == net.host("m1").mac], \
        "no reply rule is left where the member was"
    assert_like_a_fresh_manager(net)


def test_a_link_failure_moves_slice_traffic_to_the_remaining_path(net):
    create(net, members=1, max_members=1)                       # m1, on s2
    walk = net.walk(1, 3, tcp_to_vip(net, 5000))
    assert walk.delivered == ["m1"] and [dp for dp, _ in walk.entered] == [1, 2]
    net.link_down(1, 1)                                         # s1-s2: s1 now reaches s2 through s3
    for fields in (tcp_to_vip(net, 5001), frame_fields(udp_frame(net.host("c1"), VMAC, VIP, 4000, 53), 3)):
        walk = net.walk(1, 3, fields)
        assert walk.delivered == ["m1"] and [dp for dp, _ in walk.entered] == [1, 3, 2], walk
    assert_like_a_fresh_manager(net)


def test_draining_takes_a_member_out_of_the_buckets_on_every_switch(net):
    view = create(net, members=2)
    sid = dataplane.ids(view.index)

    def buckets():
        return {dp: [len(g.buckets) for g in sw.group_specs() if g.group_id == sid.group_tcp]
                for dp, sw in net.switches.items()}
    assert buckets() == {1: [2], 2: [2], 3: [2]}
    net.manager.scale("web", 1)                                 # m2 drains
    assert buckets() == {1: [1], 2: [1], 3: [1]}
    assert_like_a_fresh_manager(net)
    net.clock.now += 30
    net.manager.finish_drains()
    m2 = net.host("m2")
    assert not [f for sw in net.switches.values() for f in sw.specs()
                if dict(f.match).get("eth_dst") == m2.mac], "the drained member's rules are gone"
    assert_like_a_fresh_manager(net)


def test_a_slice_created_again_under_its_name_gets_its_new_definition(net):
    create(net, members=1)
    net.manager.delete("web")
    view = create(net, members=1, bandwidth_mbps=20, vip_cidr="10.70.0.0/29")
    meter_in = dataplane.ids(view.index).meter_in
    assert {sw.meter_rate_kbps(meter_in) for sw in net.switches.values()} == {20_000}
    assert member_reached(net, dict(tcp_to_vip(net, 5000), eth_dst="02:fe:0a:46:00:01",
                                    ipv4_dst="10.70.0.1"))[0] == "m1"
    assert_like_a_fresh_manager(net)
