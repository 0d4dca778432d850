"""Candidate paths on the directed substrate graph: k shortest, ECMP, link-disjoint backups.

The graph is a ``networkx.DiGraph`` with one arc per direction of every physical
link, each carrying ``capacity_mbps`` and an IGP ``weight`` (``te_graph`` builds it
from a ``topologies.catalog`` spec).

Weight: the OSPF convention, ``round(REFERENCE_MBPS / capacity_mbps)`` with a 10
Gbit/s reference and a floor of 1, so a 10 G (or Abilene's 9.92 G OC-192) link costs
1, a 2.4 G / 2.48 G link 4 and GÉANT's 155 M links 65. Hop count would send
shortest-path traffic over a 155 Mbit/s link as readily as over 10 Gbit/s, which no
operator does; inverse capacity is what the IGP of a real network (and REPETITA's
data) uses, and integer costs make equal-cost ties exact, which ECMP relies on. The
same weight ranks the candidate paths the LP may split over.

Backups: a failed physical link takes out both of its arcs, so "link-disjoint" here
means sharing no physical link in either direction. ``backup_path`` keeps a given
primary and searches the graph without its links; it can find nothing even when a
disjoint pair exists (the "trap" topology, where the shortest path blocks every
alternative). ``disjoint_pair`` is Suurballe's algorithm: the pair of link-disjoint
paths of least total weight, which exists exactly when no single link separates
the two ends (Menger), so it finds a protected pair whenever there is one, at the
price of possibly a longer primary. networkx's ``edge_disjoint_paths`` would also
guarantee existence, but it is a max-flow that ignores weights and can return a
long detour as the primary.

Ties are broken by (cost, hops, node names), so results repeat run after run.
"""

from __future__ import annotations

import math
from typing import Hashable, Sequence

import networkx as nx

from apps.te import TEError

Node = Hashable
Path = tuple            # (node, node, ...)

REFERENCE_MBPS = 10_000.0
WEIGHT = "weight"
CAPACITY = "capacity_mbps"
_MAX_TIES = 64          # equal-cost paths examined beyond k before the tie-break


def igp_cost(capacity_mbps: float) -> int:
    """OSPF-style link cost: the 10 Gbit/s reference over the capacity, at least 1."""
    if not (math.isfinite(capacity_mbps) and capacity_mbps > 0):
        raise TEError(f"capacity_mbps must be positive, got {capacity_mbps!r}")
    return max(1, round(REFERENCE_MBPS / capacity_mbps))


def te_graph(spec) -> nx.DiGraph:
    """The spec's substrate as a DiGraph: switch-name nodes (with ``label``), two arcs per
    link, each with the link's per-direction ``capacity_mbps`` and its IGP ``weight``."""
    graph = nx.DiGraph(name=spec.name)
    for sw in spec.switches:
        graph.add_node(sw.name, label=sw.label)
    for link in spec.links:
        for u, v in ((link.a, link.b), (link.b, link.a)):
            graph.add_edge(u, v, **{CAPACITY: float(link.capacity_mbps),
                                    WEIGHT: igp_cost(link.capacity_mbps)})
    return graph


def physical_links(path: Sequence[Node]) -> set[frozenset]:
    """The physical links a path crosses, each as the unordered pair of its ends."""
    return {frozenset((u, v)) for u, v in zip(path, path[1:])}


def path_cost(graph: nx.DiGraph, path: Sequence[Node], weight: str = WEIGHT) -> float:
    """Sum of the arc weights along ``path``; TEError if an arc is missing."""
    total = 0.0
    for u, v in zip(path, path[1:]):
        if not graph.has_edge(u, v):
            raise TEError(f"path {_show(path)} uses {u}->{v}, which is not a link")
        total += graph[u][v][weight]
    return total


def k_shortest_paths(graph: nx.DiGraph, src: Node, dst: Node, k: int,
                     weight: str = WEIGHT) -> list[Path]:
    """Up to ``k`` loop-free paths from ``src`` to ``dst`` in increasing weight; [] if none."""
    _check_ends(graph, src, dst)
    if not (isinstance(k, int) and k >= 1):
        raise TEError(f"k must be a positive integer, got {k!r}")
    _check_weights(graph, weight)
    found: list[tuple] = []
    try:
        for path in nx.shortest_simple_paths(graph, src, dst, weight=weight):
            cost = path_cost(graph, path, weight)
            # The generator yields paths in nondecreasing cost; keep reading past the
            # k-th only while it ties, so the tie-break (not the generator) picks.
            if len(found) >= k and (cost > found[k - 1][0] + 1e-9 or len(found) >= k + _MAX_TIES):
                break
            found.append(_key(path, cost))
    except nx.NetworkXNoPath:
        return []
    return [key[3] for key in sorted(found)[:k]]


def shortest_path(graph: nx.DiGraph, src: Node, dst: Node, weight: str = WEIGHT) -> Path | None:
    """The least-weight path (ties by hops, then node names), or None when there is none."""
    paths = k_shortest_paths(graph, src, dst, 1, weight)
    return paths[0] if paths else None


def ecmp_splits(graph: nx.DiGraph, src: Node, dst: Node, weight: str = WEIGHT) -> list[tuple[Path, float]]:
    """Equal-cost multipath as routers do it: every node on a shortest path splits its
    traffic equally over its equal-cost next hops (per-hop, hash-based ECMP). Returns
    each resulting path with its share of the demand; [] when dst is unreachable."""
    _check_ends(graph, src, dst)
    _check_weights(graph, weight)
    to_dst = nx.single_source_dijkstra_path_length(graph.reverse(copy=False), dst, weight=weight)
    if src not in to_dst:
        return []

    def next_hops(u):
        return sorted((v for v in graph.successors(u)
                       if v in to_dst and abs(graph[u][v][weight] + to_dst[v] - to_dst[u]) < 1e-9), key=str)

    out: list[tuple[Path, float]] = []
    stack = [((src,), 1.0)]
    while stack:
        path, share = stack.pop()
        if path[-1] == dst:
            out.append((path, share))
            continue
        hops = next_hops(path[-1])
        for v in reversed(hops):
            stack.append((path + (v,), share / len(hops)))
    return sorted(out, key=lambda item: _key(item[0], path_cost(graph, item[0], weight)))


def backup_path(graph: nx.DiGraph, primary: Sequence[Node], weight: str = WEIGHT) -> Path | None:
    """The least-weight path between the primary's ends sharing none of its physical
    links, or None when removing them disconnects the ends (see ``disjoint_pair``)."""
    primary = tuple(primary)
    if len(primary) < 2:
        raise TEError(f"primary path {_show(primary)} needs at least two nodes")
    _check_ends(graph, primary[0], primary[-1])
    path_cost(graph, primary, weight)
    pruned = graph.copy()
    for u, v in zip(primary, primary[1:]):
        for a, b in ((u, v), (v, u)):
            if pruned.has_edge(a, b):
                pruned.remove_edge(a, b)
    return shortest_path(pruned, primary[0], primary[-1], weight)


def disjoint_pair(graph: nx.DiGraph, src: Node, dst: Node,
                  weight: str = WEIGHT) -> tuple[Path, Path] | None:
    """Suurballe: two paths sharing no physical link, of least total weight, the
    cheaper first (primary, backup); None when a single link separates src from dst."""
    _check_ends(graph, src, dst)
    _check_weights(graph, weight)
    dist = nx.single_source_dijkstra_path_length(graph, src, weight=weight)
    first = shortest_path(graph, src, dst, weight)
    if first is None:
        return None
    # Residual graph with reduced costs w + d(u) - d(v) >= 0. Each arc u->v of the
    # first path is removed and its opposite v->u becomes a zero-cost arc meaning
    # "cancel u->v" (it replaces the real v->u arc, which could only be used by a
    # path sharing the physical link anyway).
    residual = nx.DiGraph()
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: (str(e[0]), str(e[1]))):
        if u in dist and v in dist:
            residual.add_edge(u, v, cost=max(0.0, data[weight] + dist[u] - dist[v]))
    first_arcs = set(zip(first, first[1:]))
    for u, v in first_arcs:
        residual.remove_edge(u, v)
        residual.add_edge(v, u, cost=0.0)
    try:
        second = nx.dijkstra_path(residual, src, dst, weight="cost")
    except nx.NetworkXNoPath:
        return None
    second_arcs = set(zip(second, second[1:]))
    cancelled = {(u, v) for u, v in first_arcs if (v, u) in second_arcs}
    arcs = (first_arcs - cancelled) | {(u, v) for u, v in second_arcs if (v, u) not in cancelled}
    pair = sorted((_walk(arcs, src, dst) for _ in range(2)),
                  key=lambda p: _key(p, path_cost(graph, p, weight)))
    return pair[0], pair[1]


def _walk(arcs: set[tuple], src: Node, dst: Node) -> Path:
    """Take one src->dst path out of a two-path arc set (consuming its arcs), loops cut."""
    path = [src]
    while path[-1] != dst:
        u = path[-1]
        v = min((b for a, b in arcs if a == u), key=str)
        arcs.discard((u, v))
        if v in path:                      # a zero-weight cycle: drop it
            del path[path.index(v) + 1:]
        else:
            path.append(v)
    return tuple(path)


def _key(path: Sequence[Node], cost: float) -> tuple:
    return (round(cost, 9), len(path), tuple(str(n) for n in path), tuple(path))


def _check_ends(graph: nx.DiGraph, src: Node, dst: Node) -> None:
    for end, node in (("source", src), ("destination", dst)):
        if node not in graph:
            raise TEError(f"unknown {end} node {node!r}")
    if src == dst:
        raise TEError(f"source and destination are the same node {src!r}")


def _check_weights(graph: nx.DiGraph, weight: str) -> None:
    for u, v, value in graph.edges(data=weight):
        if value is None or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise TEError(f"link {u}->{v} has {weight} {value!r}; weights must be positive numbers")


def _show(path: Sequence[Node]) -> str:
    return "-".join(str(n) for n in path) or "(empty)"
