"""apps.stitching.dataplane on fake site switches: frames walk through a site's
tables, out of its tunnel port with the stitch's key and underlay endpoints, and in
at the far site. Within a site, a virtual network is an L2 segment of its own;
anything no VN or stitch allows is dropped."""

from __future__ import annotations

import pytest

from apps.stitching.dataplane import BROADCAST, End, Host, Site, Stitch, site_entries
from controller import flows, meters
from controller.core import pipeline_flows
from controller.flows import ETH_TYPE_ARP, ETH_TYPE_IP
from tests.lib.fakeswitch import FakeOFTable

TUN = 1
A1 = Host("a-h1", "02:00:00:0a:01:01", "10.60.1.1", 100, "acme", 2)
A2 = Host("a-h2", "02:00:00:0a:01:02", "10.60.1.2", 100, "acme", 3)
A3 = Host("a-h3", "02:00:00:0a:01:03", "10.60.1.3", 101, "acme", 4)
B1 = Host("b-h1", "02:00:00:0b:02:01", "10.60.2.1", 200, "acme", 2)
B2 = Host("b-h2", "02:00:00:0b:02:02", "10.60.2.2", 200, "acme", 3)
SITES = {
    "a": Site("a", 0x5101, (A1, A2, A3), TUN, {1: "10.101.0.1", 2: "10.102.0.1"}),
    "b": Site("b", 0x5102, (B1, B2), TUN, {1: "10.101.0.2", 2: "10.102.0.2"}),
}


def _switches(stitches: list[Stitch]) -> dict[str, FakeOFTable]:
    out = {}
    for name, site in SITES.items():
        switch = FakeOFTable(site.dp_id)
        entries = site_entries(site, SITES, stitches)
        switch.apply_all(meters.to_add(m) for m in entries.meters)
        switch.apply_all(flows.to_flowmod(s) for s in (*pipeline_flows(), *entries.flows))
        out[name] = switch
    return out


def _send(switches, site: str, src: Host, dst_mac: str, **extra) -> dict[str, list]:
    """Where a frame from ``src`` ends up: {site: [ports]} ("tunnel" crossings followed)."""
    fields = {"in_port": src.port_no, "eth_src": src.mac, "eth_dst": dst_mac, "eth_type": ETH_TYPE_IP,
              **extra}
    seen: dict[str, list] = {}
    for egress in switches[site].process(fields):
        if egress.port != TUN:
            seen.setdefault(site, []).append(egress.port)
            continue
        h = egress.headers
        far = next(s for s in SITES.values() if s.addresses.get(1) == h["tun_ipv4_dst"]
                   or s.addresses.get(2) == h["tun_ipv4_dst"])
        arrived = {"in_port": TUN, "tunnel_id": h["tunnel_id"], "eth_src": h["eth_src"],
                   "eth_dst": h["eth_dst"], "eth_type": h["eth_type"], **extra}
        seen.setdefault(far.name, []).extend(e.port for e in switches[far.name].process(arrived))
    return seen


def test_without_stitches_each_vn_is_its_own_segment_and_sites_are_apart():
    sw = _switches([])
    assert _send(sw, "a", A1, A2.mac) == {"a": [A2.port_no]}
    assert _send(sw, "a", A1, A3.mac) == {}                  # VN 101: another segment
    assert _send(sw, "a", A1, B1.mac) == {}                  # another site
    assert _send(sw, "a", A1, BROADCAST) == {"a": [A2.port_no]}
    assert _send(sw, "a", A3, BROADCAST) == {}


def test_a_segment_stitch_joins_two_vns_across_sites_both_ways():
    stitch = Stitch(0, "segment", 10000, End("a", 100), End("b", 200), plane=1)
    sw = _switches([stitch])
    assert _send(sw, "a", A1, B2.mac) == {"b": [B2.port_no]}
    assert _send(sw, "b", B1, A2.mac) == {"a": [A2.port_no]}
    assert _send(sw, "a", A1, BROADCAST) == {"a": [A2.port_no], "b": [B1.port_no, B2.port_no]}
    assert _send(sw, "a", A3, B1.mac) == {}                  # VN 101 is not part of it
    egress = [e for e in sw["a"].process({"in_port": A1.port_no, "eth_src": A1.mac, "eth_dst": B1.mac,
                                          "eth_type": ETH_TYPE_IP}) if e.port == TUN]
    assert [(e.headers["tunnel_id"], e.headers["tun_ipv4_src"], e.headers["tun_ipv4_dst"])
            for e in egress] == [(10000, "10.101.0.1", "10.101.0.2")]


def test_the_plane_picks_the_underlay_endpoints():
    sw = _switches([Stitch(0, "segment", 10000, End("a", 100), End("b", 200), plane=2)])
    (egress,) = [e for e in sw["a"].process({"in_port": A1.port_no, "eth_src": A1.mac, "eth_dst": B1.mac,
                                             "eth_type": ETH_TYPE_IP}) if e.port == TUN]
    assert (egress.headers["tun_ipv4_src"], egress.headers["tun_ipv4_dst"]) == ("10.102.0.1", "10.102.0.2")


def test_a_direct_stitch_joins_two_hosts_only():
    sw = _switches([Stitch(0, "direct", 10001, End("a", 100, "a-h1"), End("b", 200, "b-h2"), plane=1)])
    assert _send(sw, "a", A1, B2.mac) == {"b": [B2.port_no]}
    assert _send(sw, "b", B2, A1.mac) == {"a": [A1.port_no]}
    assert _send(sw, "a", A2, B2.mac) == {}                  # another host of VN 100
    assert _send(sw, "a", A1, B1.mac) == {}                  # another host of VN 200
    arp = {"eth_type": ETH_TYPE_ARP, "arp_tpa": B2.ip}
    assert _send(sw, "a", A1, BROADCAST, **arp) == {"b": [B2.port_no]}


def test_a_bandwidth_stitch_meters_what_enters_the_tunnel():
    stitch = Stitch(0, "bandwidth", 10002, End("a", 100), End("b", 200), plane=1, mbps=5.0)
    sw = _switches([stitch])
    (egress,) = [e for e in sw["a"].process({"in_port": A1.port_no, "eth_src": A1.mac, "eth_dst": B1.mac,
                                             "eth_type": ETH_TYPE_IP}) if e.port == TUN]
    assert egress.meters == (stitch.meter_id,)
    assert sw["a"].meter_rate_kbps(stitch.meter_id) == 5000


def test_an_encrypted_stitch_uses_its_own_port_both_ways():
    stitch = Stitch(0, "segment", 10003, End("a", 100), End("b", 200), plane=1,
                    encrypted_ports={"a": 9, "b": 9})
    sw = _switches([stitch])
    assert 9 in sw["a"].lookup({"in_port": A1.port_no, "eth_src": A1.mac, "eth_dst": B1.mac,
                                "eth_type": ETH_TYPE_IP})
    assert sw["b"].lookup({"in_port": 9, "eth_src": A1.mac, "eth_dst": B1.mac, "eth_type": ETH_TYPE_IP}) == \
        [B1.port_no]


def test_nothing_for_a_stitch_whose_tunnel_cannot_be_built_yet():
    bare = {"a": SITES["a"], "b": Site("b", 0x5102, (B1, B2), None, {})}
    stitch = Stitch(0, "segment", 10000, End("a", 100), End("b", 200), plane=1)
    assert not [f for f in site_entries(bare["a"], bare, [stitch]).flows if f.cookie == stitch.cookie]


@pytest.mark.parametrize("site", ["a", "b"])
def test_every_flow_is_the_stitching_apps_own(site):
    from controller import cookies
    entries = site_entries(SITES[site], SITES,
                           [Stitch(3, "bandwidth", 10000, End("a", 100), End("b", 200), 1, 5.0)])
    assert {cookies.owner_of(f.cookie) for f in entries.flows} == {"stitching"}
    assert {cookies.id_owner(m.meter_id) for m in entries.meters} == {"stitching"}
