"""Tests for controller.topology: paths, spanning tree, link lifecycle, capacities,
edge ports and utilisation, on small graphs built directly (no switches needed)."""

import itertools

import pytest

from controller import flooding
from controller.config import LinkMeta, RoutingConfig, TopologyMeta
from controller.topology import Port, Topology

HOST_PORT = 9


def build(links, meta=None, routing=None, order=None, speed_mbps=0.0, now=0.0):
    """A Topology with every link seen in both directions. Each switch gets its
    link ports plus port HOST_PORT for a host."""
    topo = Topology(meta, routing)
    ports: dict[int, set[int]] = {}
    for a, pa, b, pb in links:
        ports.setdefault(a, {HOST_PORT}).add(pa)
        ports.setdefault(b, {HOST_PORT}).add(pb)
    for dp in order or sorted(ports):
        topo.add_switch(dp, [Port(p, hw_addr=f"0e:00:00:00:{dp:02x}:{p:02x}", speed_mbps=speed_mbps)
                             for p in sorted(ports[dp])], now)
    for a, pa, b, pb in links:
        topo.link_seen(a, pa, b, pb, now)
        topo.link_seen(b, pb, a, pa, now)
    return topo


TRIANGLE = [(1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 3, 2)]
DIAMOND = [(1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 4, 1), (3, 2, 4, 2)]


def names(topo):
    return [link.name for link in topo.links()]


# ---- paths ---------------------------------------------------------------------------------

def test_diamond_tie_breaks_on_the_lexicographically_smallest_path():
    topo = build(DIAMOND)
    assert topo.shortest_path(1, 4) == [1, 2, 4]
    assert topo.shortest_path(4, 1) == [4, 2, 1]
    assert topo.hop_ports([1, 2, 4]) == [(1, 0, 1), (2, 1, 2), (4, 1, 0)]


@pytest.mark.parametrize("order", list(itertools.permutations([1, 2, 3, 4]))[::5])
def test_paths_do_not_depend_on_discovery_order(order):
    links = sorted(DIAMOND, key=lambda link: order.index(link[0]))
    topo = build(links, order=order)
    assert topo.shortest_path(1, 4) == [1, 2, 4]
    assert topo.spanning_tree() == build(DIAMOND).spanning_tree()


def test_inverse_capacity_prefers_two_fat_hops_over_one_thin_link():
    meta = TopologyMeta(links=(LinkMeta(a=1, b=2, capacity_mbps=100),
                               LinkMeta(a=1, b=3, capacity_mbps=10000),
                               LinkMeta(a=2, b=3, capacity_mbps=10000)))
    by_hops = build(TRIANGLE, meta)
    by_capacity = build(TRIANGLE, meta, RoutingConfig(path_metric="inverse_capacity"))
    assert by_hops.shortest_path(1, 2) == [1, 2]
    assert by_capacity.shortest_path(1, 2) == [1, 3, 2]


def test_inverse_capacity_breaks_the_diamond_tie_towards_the_fat_side():
    meta = TopologyMeta(links=tuple(LinkMeta(a=a, b=b, capacity_mbps=mbps) for a, b, mbps in
                                    [(1, 2, 1000), (2, 4, 1000), (1, 3, 9920), (3, 4, 9920)]))
    topo = build(DIAMOND, meta, RoutingConfig(path_metric="inverse_capacity"))
    assert topo.shortest_path(1, 4) == [1, 3, 4]


def test_parallel_links_use_the_lowest_port_on_a_tie():
    topo = build([(1, 5, 2, 7), (1, 3, 2, 4)])
    assert topo.hop_ports([1, 2]) == [(1, 0, 3), (2, 4, 0)]


def test_detour_avoids_the_link_both_ways_and_is_none_for_a_bridge():
    topo = build(DIAMOND + [(4, 3, 5, 1)])            # s5 hangs off s4
    assert topo.detour(1, 2, 4) == [1, 3, 4]
    assert topo.detour(2, 4, 4) == [2, 1, 3, 4]          # turns back through s1
    assert topo.detour(2, 1, 4) == [2, 4]                # a link not on the way costs nothing
    assert topo.detour(4, 5, 5) is None                  # the bridge to s5
    assert topo.detour(1, 2, 1) is None
    assert topo.switch_pairs() == [(1, 2), (1, 3), (2, 4), (3, 4), (4, 5)]
    topo.update_port(3, Port(2, up=False), 1.0)           # s3-s4 down: no second way round
    assert topo.detour(1, 2, 4) is None


def test_no_path_between_disconnected_switches():
    topo = build([(1, 1, 2, 1), (3, 1, 4, 1)])
    assert topo.shortest_path(1, 4) is None
    assert topo.shortest_path(1, 99) is None


def test_paths_follow_topology_changes():
    topo = build(DIAMOND)
    assert topo.shortest_path(1, 4) == [1, 2, 4]
    topo.update_port(2, Port(2, up=False), now=1.0)
    assert topo.shortest_path(1, 4) == [1, 3, 4]


# ---- spanning tree -------------------------------------------------------------------------

def test_triangle_spanning_tree_blocks_exactly_one_link():
    topo = build(TRIANGLE)
    tree = topo.spanning_tree()
    assert len(tree) == 2
    blocked = {(dp, p) for dp in topo.switches for p in topo.link_ports(dp) - topo.tree_ports(dp)}
    assert len(blocked) == 2
    (a, pa), (b, pb) = sorted(blocked)
    assert (a, pa, b, pb) in TRIANGLE          # both ends of one and the same link
    assert frozenset((a, b)) not in tree


def test_flood_flows_drop_what_arrives_on_blocked_ports():
    topo = build(TRIANGLE)
    blocked_in = {(dp, s.match_dict["in_port"]) for dp in topo.switches
                  for s in flooding.desired(topo, dp, now=0.0, edge_after_s=1.0) if not s.actions}
    assert blocked_in == {(dp, p) for dp in topo.switches
                          for p in topo.link_ports(dp) - topo.tree_ports(dp)}


@pytest.mark.parametrize("links, n", [
    (DIAMOND, 4),
    ([(1, 1, 2, 1), (2, 2, 3, 1), (3, 2, 4, 1), (4, 2, 1, 2), (1, 3, 3, 3), (2, 3, 4, 3)], 4),
    ([(a, b, b, a) for a, b in itertools.combinations(range(1, 7), 2)], 6),
])
def test_spanning_tree_has_n_minus_one_edges_and_spans(links, n):
    tree = build(links).spanning_tree()
    assert len(tree) == n - 1
    assert set().union(*tree) == set(range(1, n + 1))


def test_spanning_tree_ignores_links_seen_one_way_only():
    topo = build([(1, 1, 2, 1)])
    topo.add_switch(3, [Port(1)], now=0.0)
    topo.update_port(1, Port(2), now=0.0)
    topo.link_seen(1, 2, 3, 1, now=0.0)
    assert "1:2-3:1" in names(topo)
    assert topo.spanning_tree() == {frozenset((1, 2))}


# ---- link lifecycle ----------------------------------------------------------------------------

def test_port_down_removes_both_directions_of_its_link_only():
    topo = build(TRIANGLE)
    assert len(topo.links()) == 6
    events = topo.update_port(1, Port(1, up=False), now=5.0)
    assert [e.kind for e in events] == ["PORT_DOWN", "LINK_DELETE", "LINK_DELETE"]
    assert {e.link for e in events if e.link} == {(1, 1, 2, 1), (2, 1, 1, 1)}
    assert names(topo) == ["1:2-3:1", "2:2-3:2", "3:1-1:2", "3:2-2:2"]


def test_lldp_on_a_down_port_does_not_bring_the_link_back():
    topo = build(TRIANGLE)
    topo.update_port(1, Port(1, up=False), now=5.0)
    assert topo.link_seen(2, 1, 1, 1, now=6.0) == []
    assert "2:1-1:1" not in names(topo)


def test_delete_port_removes_its_links():
    topo = build(TRIANGLE)
    topo.delete_port(3, 2, now=1.0)
    assert names(topo) == ["1:1-2:1", "1:2-3:1", "2:1-1:1", "3:1-1:2"]
    assert topo.port(3, 2) is None


def test_switch_leaving_removes_its_links():
    topo = build(TRIANGLE)
    events = topo.remove_switch(2, now=1.0)
    assert [e.kind for e in events].count("LINK_DELETE") == 4
    assert names(topo) == ["1:2-3:1", "3:1-1:2"]


def test_links_expire_after_timeout_unless_refreshed():
    topo = build([(1, 1, 2, 1)], now=0.0)
    topo.link_seen(1, 1, 2, 1, now=3.0)        # only one direction refreshed
    assert topo.expire_links(now=3.5, timeout_s=3.5) == []
    events = topo.expire_links(now=3.6, timeout_s=3.5)
    assert [e.link for e in events] == [(2, 1, 1, 1)]
    assert events[0].detail == "LLDP timeout"
    assert names(topo) == ["1:1-2:1"]
    assert [e.link for e in topo.expire_links(now=7.0, timeout_s=3.5)] == [(1, 1, 2, 1)]
    assert topo.links() == []


def test_link_moving_to_another_port_replaces_the_old_link():
    topo = build([(1, 1, 2, 1)])
    topo.add_switch(3, [Port(1)], now=0.0)
    events = topo.link_seen(1, 1, 3, 1, now=1.0)
    assert [(e.kind, e.link) for e in events] == [("LINK_DELETE", (1, 1, 2, 1)), ("LINK_ADD", (1, 1, 3, 1))]
    assert names(topo) == ["1:1-3:1", "2:1-1:1"]


# ---- capacity and utilisation ---------------------------------------------------------------

def test_capacity_comes_from_metadata_then_port_speed_then_unknown():
    meta = TopologyMeta(links=(LinkMeta(a=2, b=1, capacity_mbps=2480),))
    topo = build([(1, 1, 2, 1), (2, 2, 3, 1)], meta, speed_mbps=1000.0)
    got = {link.name: (link.capacity_mbps, link.capacity_source) for link in topo.links()}
    assert got["1:1-2:1"] == got["2:1-1:1"] == (2480.0, "metadata")
    assert got["2:2-3:1"] == got["3:1-2:2"] == (1000.0, "port_speed")
    unknown = build([(1, 1, 2, 1)])
    assert {(link.capacity_mbps, link.capacity_source) for link in unknown.links()} == {(0.0, "unknown")}


def test_utilisation_from_port_rates_per_direction():
    meta = TopologyMeta(links=(LinkMeta(a=1, b=2, capacity_mbps=1000),))
    topo = build([(1, 1, 2, 1)], meta)
    topo.set_port_rates(1, {1: (250.0, 40.0), HOST_PORT: (1.0, 2.0)})
    by_name = {link.name: link for link in topo.links()}
    assert by_name["1:1-2:1"].rate_mbps == 250.0
    assert by_name["1:1-2:1"].utilisation == pytest.approx(0.25)
    assert by_name["2:1-1:1"].utilisation == 0.0      # the reverse direction is 2's tx
    assert topo.port(1, 1).rx_rate_mbps == 40.0
    topo.set_port_rates(2, {1: (500.0, 250.0)})
    assert {link.name: link.utilisation for link in topo.links()}["2:1-1:1"] == pytest.approx(0.5)


def test_utilisation_of_a_link_with_unknown_capacity_is_zero():
    topo = build([(1, 1, 2, 1)])
    topo.set_port_rates(1, {1: (250.0, 0.0)})
    assert [link.utilisation for link in topo.links()] == [0.0, 0.0]


# ---- edge ports ----------------------------------------------------------------------------

def test_host_port_becomes_edge_only_after_edge_after_s():
    topo = build(TRIANGLE, now=10.0)
    assert topo.edge_ports(1, now=11.0, edge_after_s=2.5) == set()
    assert topo.edge_ports(1, now=12.5, edge_after_s=2.5) == {HOST_PORT}
    assert not topo.is_link_port(1, HOST_PORT)
    assert topo.is_link_port(1, 1)


def test_port_that_ever_saw_lldp_is_never_edge():
    topo = build([(1, 1, 2, 1)], now=0.0)
    topo.update_port(1, Port(1, up=False), now=1.0)
    topo.update_port(1, Port(1, up=True), now=2.0)
    assert topo.links() == []
    assert topo.edge_ports(1, now=100.0, edge_after_s=2.5) == {HOST_PORT}
    assert topo.is_link_port(1, 1)


def test_port_flap_restarts_the_edge_timer():
    topo = build([(1, 1, 2, 1)], now=0.0)
    assert topo.edge_ports(1, now=5.0, edge_after_s=2.5) == {HOST_PORT}
    topo.update_port(1, Port(HOST_PORT, up=False), now=6.0)
    assert topo.edge_ports(1, now=7.0, edge_after_s=2.5) == set()
    topo.update_port(1, Port(HOST_PORT, up=True), now=7.0)
    assert topo.edge_ports(1, now=8.0, edge_after_s=2.5) == set()
    assert topo.edge_ports(1, now=9.5, edge_after_s=2.5) == {HOST_PORT}
