"""The min-MLU LP on small graphs with optima worked out by hand, the MLU of given
splits, and the errors bad input gets."""

import networkx as nx
import numpy as np
import pytest

from apps.te import TEError
from apps.te.lp import PathSet, mlu, solve_min_mlu


def graph(links) -> nx.DiGraph:
    """Both arcs of every (a, b, capacity_mbps) link, weight 1."""
    g = nx.DiGraph()
    for a, b, cap in links:
        g.add_edge(a, b, capacity_mbps=float(cap), weight=1)
        g.add_edge(b, a, capacity_mbps=float(cap), weight=1)
    return g


def test_two_routes_of_capacity_10_and_30_split_1_to_3():
    # a-b direct (10 Mbit/s) and a-c-b (30 Mbit/s): 20 Mbit/s fits at MLU 0.5, 5 + 15.
    g = graph([("a", "b", 10), ("a", "c", 30), ("c", "b", 30)])
    ps = PathSet(g, {("a", "b"): [("a", "b"), ("a", "c", "b")]})
    sol = solve_min_mlu(ps, {("a", "b"): 20.0})
    assert sol.mlu == pytest.approx(0.5, rel=1e-6)
    assert sol.x == pytest.approx([0.25, 0.75], abs=1e-6)
    assert dict(sol.splits()[("a", "b")]) == pytest.approx({("a", "b"): 0.25, ("a", "c", "b"): 0.75})
    loads = dict(zip(ps.links, ps.loads_mbps(sol.x, {("a", "b"): 20.0})))
    assert loads[("a", "b")] == pytest.approx(5.0) and loads[("c", "b")] == pytest.approx(15.0)
    assert loads[("b", "a")] == 0.0


def test_diamond_with_a_competing_demand():
    # s->t (20) over s-a-t or s-b-t, all links 10; a->t (10) can only use a-t.
    # Balance a-t against b-t: x + 10 = 20 - x, so x = 5 via a and MLU 1.5.
    g = graph([("s", "a", 10), ("a", "t", 10), ("s", "b", 10), ("b", "t", 10)])
    ps = PathSet(g, {("s", "t"): [("s", "a", "t"), ("s", "b", "t")], ("a", "t"): [("a", "t")]})
    sol = solve_min_mlu(ps, {("s", "t"): 20.0, ("a", "t"): 10.0})
    assert sol.mlu == pytest.approx(1.5, rel=1e-6)
    assert sol.x == pytest.approx([0.25, 0.75, 1.0], abs=1e-6)


def test_no_split_when_the_bottleneck_is_elsewhere():
    # s->t (5) may use its own link s-t (10) or s-m-t, whose m-t (10) already carries
    # u->t (8). Any traffic on m-t raises the MLU above 0.8, so all 5 go direct.
    g = graph([("s", "t", 10), ("s", "m", 100), ("m", "t", 10), ("u", "m", 100)])
    ps = PathSet(g, {("s", "t"): [("s", "t"), ("s", "m", "t")], ("u", "t"): [("u", "m", "t")]})
    sol = solve_min_mlu(ps, {("s", "t"): 5.0, ("u", "t"): 8.0}, tiebreak=0.0)
    assert sol.mlu == pytest.approx(0.8, rel=1e-6)
    assert sol.x == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)


def test_tiebreak_prefers_the_shorter_path_among_optimal_splits():
    # MLU is fixed at 0.9 by u->t on m-t; s->t (1) could go anywhere below that.
    g = graph([("s", "t", 10), ("s", "m", 100), ("m", "t", 10), ("u", "m", 100)])
    ps = PathSet(g, {("s", "t"): [("s", "m", "t"), ("s", "t")], ("u", "t"): [("u", "m", "t")]})
    sol = solve_min_mlu(ps, {("s", "t"): 1.0, ("u", "t"): 9.0}, tiebreak=1e-3)
    assert sol.mlu == pytest.approx(0.9, rel=1e-6)
    assert sol.x == pytest.approx([0.0, 1.0, 1.0], abs=1e-6)


def test_robust_plan_minimises_the_worst_of_several_matrices():
    # a->b over a-b or a-c-b (all 10); c->b only over c-b. Alone, the first matrix
    # splits a->b 50/50 (MLU 0.5); with c->b = 10 in the second, all of a->b must go
    # direct. The robust plan must serve both: MLU 1.0, all direct.
    g = graph([("a", "b", 10), ("a", "c", 10), ("c", "b", 10)])
    ps = PathSet(g, {("a", "b"): [("a", "b"), ("a", "c", "b")], ("c", "b"): [("c", "b")]})
    first, second = np.array([10.0, 0.0]), np.array([10.0, 10.0])
    assert solve_min_mlu(ps, first).mlu == pytest.approx(0.5, rel=1e-6)
    robust = solve_min_mlu(ps, np.stack([first, second]))
    assert robust.mlu == pytest.approx(1.0, rel=1e-6)
    assert robust.x == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)
    assert mlu(ps, robust.x, first) == pytest.approx(1.0, rel=1e-6)


def test_mlu_of_given_splits_on_another_matrix():
    g = graph([("a", "b", 10), ("a", "c", 30), ("c", "b", 30)])
    ps = PathSet(g, {("a", "b"): [("a", "b"), ("a", "c", "b")]})
    x = ps.splits_vector({("a", "b"): [0.5, 0.5]})
    assert mlu(ps, x, {("a", "b"): 20.0}) == pytest.approx(1.0)        # 10 on the 10 Mbit/s link
    assert mlu(ps, x, np.array([4.0])) == pytest.approx(0.2)
    assert mlu(ps, ps.first_path_splits(), {("a", "b"): 20.0}) == pytest.approx(2.0)
    assert mlu(ps, x, {}) == 0.0


def test_zero_demand_needs_no_solve_and_dense_build_agrees():
    g = graph([("s", "a", 10), ("a", "t", 10), ("s", "b", 10), ("b", "t", 10)])
    ps = PathSet(g, {("s", "t"): [("s", "a", "t"), ("s", "b", "t")], ("a", "t"): [("a", "t")]})
    idle = solve_min_mlu(ps, {})
    assert idle.mlu == 0.0 and list(idle.x) == [1.0, 0.0, 1.0]
    demand = {("s", "t"): 20.0, ("a", "t"): 10.0}
    assert solve_min_mlu(ps, demand, dense=True).x == pytest.approx(solve_min_mlu(ps, demand).x, abs=1e-6)


@pytest.fixture
def diamond():
    g = graph([("s", "a", 10), ("a", "t", 10), ("s", "b", 10), ("b", "t", 10)])
    return g, PathSet(g, {("s", "t"): [("s", "a", "t"), ("s", "b", "t")]})


@pytest.mark.parametrize("demand, message", [
    ({("s", "t"): -1.0}, r"demand for OD s->t is -1.0; demands must be finite and >= 0"),
    ({("s", "t"): float("nan")}, r"demand for OD s->t is nan"),
    ({("s", "t"): "lots"}, r"demand for OD s->t is 'lots', not a number"),
    ({("s", "x"): 1.0}, r"OD s->x: unknown destination node 'x'"),
    ({("a", "t"): 1.0}, r"OD a->t has no path"),
    (np.array([1.0, 2.0]), r"shape \(2,\), expected \(1,\)"),
    (np.array([-3.0]), r"demand for OD s->t is -3.0"),
])
def test_bad_demands_are_named(diamond, demand, message):
    _, ps = diamond
    with pytest.raises(TEError, match=message):
        solve_min_mlu(ps, demand)


def test_bad_path_sets_are_named(diamond):
    g, _ = diamond
    with pytest.raises(TEError, match="OD s->t has no path"):
        PathSet(g, {("s", "t"): []})
    with pytest.raises(TEError, match="OD q->t: unknown source node 'q'"):
        PathSet(g, {("q", "t"): [("q", "t")]})
    with pytest.raises(TEError, match="uses s->t, which is not a link"):
        PathSet(g, {("s", "t"): [("s", "t")]})
    with pytest.raises(TEError, match="does not run from s to t"):
        PathSet(g, {("s", "t"): [("s", "a")]})
    g["a"]["t"]["capacity_mbps"] = 0.0
    with pytest.raises(TEError, match="link a->t has capacity_mbps 0.0"):
        PathSet(g, {("s", "t"): [("s", "a", "t")]})


def test_bad_splits_are_named(diamond):
    _, ps = diamond
    with pytest.raises(TEError, match="splits of OD s->t sum to 0.7, not 1"):
        ps.splits_vector({("s", "t"): [0.3, 0.4]})
    with pytest.raises(TEError, match="OD s->t has 2 paths but 3 fractions"):
        ps.splits_vector({("s", "t"): [0.3, 0.3, 0.4]})
    with pytest.raises(TEError, match="tiebreak"):
        solve_min_mlu(ps, {("s", "t"): 1.0}, tiebreak=-1)
