"""Candidate paths on small graphs with known answers: k shortest, ECMP shares, and
link-disjoint backups (including a trap and a bridge, where a naive search fails)."""

import itertools

import networkx as nx
import numpy as np
import pytest

from apps.te import TEError
from apps.te.paths import (backup_path, disjoint_pair, ecmp_splits, igp_cost, k_shortest_paths, path_cost,
                           physical_links, shortest_path, te_graph)
from topologies.catalog import load


def graph(links) -> nx.DiGraph:
    """Both arcs of every (a, b, weight) link, capacity 100."""
    g = nx.DiGraph()
    for a, b, w in links:
        g.add_edge(a, b, weight=w, capacity_mbps=100.0)
        g.add_edge(b, a, weight=w, capacity_mbps=100.0)
    return g


def test_igp_cost_is_inverse_capacity_against_10g():
    assert [igp_cost(c) for c in (10000, 9920, 2480, 2400, 155, 40000)] == [1, 1, 4, 4, 65, 1]
    with pytest.raises(TEError, match="positive"):
        igp_cost(0)


def test_te_graph_has_both_arcs_of_every_link_with_capacity_and_weight():
    g = te_graph(load("diamond"))
    assert g.number_of_nodes() == 4 and g.number_of_edges() == 8
    assert g["s1"]["s2"] == {"capacity_mbps": 100.0, "weight": 100}
    assert g["s2"]["s1"] == g["s1"]["s2"]


def test_k_shortest_paths_in_cost_order_with_name_tie_break():
    # Square a-b-c-d-a (weight 1) plus a heavy diagonal a-c (weight 3).
    g = graph([("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("d", "a", 1), ("a", "c", 3)])
    paths = k_shortest_paths(g, "a", "c", 3)
    assert paths == [("a", "b", "c"), ("a", "d", "c"), ("a", "c")]
    assert [path_cost(g, p) for p in paths] == [2, 2, 3]
    assert k_shortest_paths(g, "a", "c", 1) == [("a", "b", "c")]
    assert shortest_path(g, "c", "a") == ("c", "b", "a")
    assert len(k_shortest_paths(g, "a", "c", 10)) == 3        # only three loop-free paths exist


def test_k_shortest_paths_bad_input_and_unreachable():
    g = graph([("a", "b", 1)])
    g.add_node("z")
    assert k_shortest_paths(g, "a", "z", 2) == []
    assert shortest_path(g, "a", "z") is None
    with pytest.raises(TEError, match="unknown destination node 'q'"):
        k_shortest_paths(g, "a", "q", 2)
    with pytest.raises(TEError, match="k must be a positive integer"):
        k_shortest_paths(g, "a", "b", 0)
    with pytest.raises(TEError, match="same node"):
        k_shortest_paths(g, "a", "a", 1)
    g["a"]["b"]["weight"] = 0
    with pytest.raises(TEError, match="link a->b has weight 0"):
        k_shortest_paths(g, "a", "b", 1)


def test_ecmp_splits_equally_at_every_hop():
    # s has two equal next hops (x, y); x has two equal next hops (p, q) towards t.
    g = graph([("s", "x", 1), ("s", "y", 1), ("x", "p", 1), ("x", "q", 1), ("p", "t", 1), ("q", "t", 1),
               ("y", "r", 1), ("r", "t", 1), ("s", "t", 5)])
    shares = dict(ecmp_splits(g, "s", "t"))
    assert shares == {("s", "x", "p", "t"): 0.25, ("s", "x", "q", "t"): 0.25, ("s", "y", "r", "t"): 0.5}
    assert ecmp_splits(g, "s", "x") == [(("s", "x"), 1.0)]


def test_backup_path_avoids_both_directions_of_every_primary_link():
    g = graph([("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("d", "a", 1), ("b", "d", 1)])
    primary = ("a", "b", "c")
    backup = backup_path(g, primary)
    assert backup == ("a", "d", "c")
    assert not physical_links(primary) & physical_links(backup)


def test_trap_topology_naive_backup_fails_but_a_disjoint_pair_exists():
    # Shortest s-a-b-t (cost 3) uses a-b, which every other s-t route needs in part.
    g = graph([("s", "a", 1), ("a", "b", 1), ("b", "t", 1), ("s", "b", 3), ("a", "t", 3)])
    assert shortest_path(g, "s", "t") == ("s", "a", "b", "t")
    assert backup_path(g, ("s", "a", "b", "t")) is None
    primary, backup = disjoint_pair(g, "s", "t")
    assert {primary, backup} == {("s", "a", "t"), ("s", "b", "t")}
    assert path_cost(g, primary) + path_cost(g, backup) == 8
    assert not physical_links(primary) & physical_links(backup)


def test_bridge_means_no_disjoint_backup_at_all():
    # Two triangles joined by the single link c-d.
    g = graph([("a", "b", 1), ("b", "c", 1), ("a", "c", 1), ("c", "d", 1), ("d", "e", 1), ("e", "f", 1),
               ("d", "f", 1)])
    assert disjoint_pair(g, "a", "f") is None
    assert backup_path(g, shortest_path(g, "a", "f")) is None
    assert disjoint_pair(g, "a", "c") == (("a", "c"), ("a", "b", "c"))


@pytest.mark.parametrize("seed", range(6))
def test_disjoint_pair_is_the_cheapest_pair_by_brute_force(seed):
    rng = np.random.default_rng(seed)
    nodes = list("abcdefg")
    links = {e for e in itertools.combinations(nodes, 2) if rng.random() < 0.45}
    g = graph([(a, b, int(rng.integers(1, 9))) for a, b in sorted(links)])
    for src, dst in itertools.combinations(sorted(g.nodes), 2):
        simple = list(nx.all_simple_paths(g, src, dst))
        best = min((path_cost(g, p) + path_cost(g, q) for p, q in itertools.combinations(simple, 2)
                    if not physical_links(p) & physical_links(q)), default=None)
        pair = disjoint_pair(g, src, dst)
        if best is None:
            assert pair is None
        else:
            assert pair is not None and not physical_links(pair[0]) & physical_links(pair[1])
            assert path_cost(g, pair[0]) + path_cost(g, pair[1]) == best
            assert path_cost(g, pair[0]) <= path_cost(g, pair[1])


def test_backup_path_rejects_a_primary_that_is_not_a_path():
    g = graph([("a", "b", 1), ("b", "c", 1)])
    with pytest.raises(TEError, match="uses a->c, which is not a link"):
        backup_path(g, ("a", "c"))
    with pytest.raises(TEError, match="at least two nodes"):
        backup_path(g, ("a",))
