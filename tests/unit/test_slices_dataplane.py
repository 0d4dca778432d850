"""Slices in a fake OpenFlow network: the controller core with the SliceManager as a
provider, fake switches running what it installs. Judged by what happens to frames:
who receives them, with which addresses, marks and meters."""

from __future__ import annotations

import pytest
from os_ken.lib.packet import arp as arp_pkt

import fakeoftable
from apps.slices import dataplane
from controller import cookies
from apps.slices.manager import SliceManager
from apps.slices.store import SliceStore
from fakeoftable import FakeNetwork, arp_request, config_for, frame_fields, hosts_on, udp_frame

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
    manager = SliceManager(net.core, lambda: net.deliver(net.core.resync(net.now)), store, drain_s=30,
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
                   if f.table == "slice"), "the drained member's rules are gone"
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
        assert not sw.group_specs() and not sw.meter_specs()
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
