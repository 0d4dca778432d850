"""How much a link in service would be relieved by another link brought into service.

A link ``a -> b`` whose forecast demand exceeds its capacity can shed traffic onto
other ways from ``a`` to ``b`` (traffic engineering splits the pairs crossing it over
their other paths). What those ways can take is the maximum ``a -> b`` flow over
every other link at its *residual* capacity (capacity less what it carries now);
``relief_mbps`` computes it with networkx's maximum flow. A spare link (out of
service, both directions at its full capacity) adds to that flow when it opens a
way with room; ``best_spare`` picks the spare that adds the most. The capacity a
link then offers the demand that wants to cross it is its own capacity plus the
relief (``offered_mbps``).

Pure: links and spares in, numbers out. ``Link`` is ``(src, dst, capacity_mbps,
rate_mbps)`` with switches by dp_id; parallel links between two switches add up.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import networkx as nx

Link = tuple[int, int, float, float]  # src dp, dst dp, capacity Mbit/s, rate Mbit/s now
Spare = tuple[str, int, int, float]  # name, one end, the other end, capacity Mbit/s


def _graph(links: Iterable[Link], a: int, b: int, spares: Sequence[Spare] = ()) -> nx.DiGraph:
    graph = nx.DiGraph()
    for src, dst, cap, rate in links:
        if (src, dst) == (a, b):
            continue
        room = max(0.0, float(cap) - max(0.0, float(rate)))
        if graph.has_edge(src, dst):
            graph[src][dst]["capacity"] += room
        else:
            graph.add_edge(src, dst, capacity=room)
    for _, x, y, cap in spares:
        for src, dst in ((x, y), (y, x)):
            if graph.has_edge(src, dst):
                graph[src][dst]["capacity"] += float(cap)
            else:
                graph.add_edge(src, dst, capacity=float(cap))
    return graph


def relief_mbps(links: Iterable[Link], a: int, b: int, spares: Sequence[Spare] = ()) -> float:
    """The most ``a -> b`` traffic the other links (and ``spares``) can take now."""
    graph = _graph(links, a, b, spares)
    if a not in graph or b not in graph:
        return 0.0
    return float(nx.maximum_flow_value(graph, a, b))


def offered_mbps(links: Sequence[Link], a: int, b: int, spares: Sequence[Spare] = ()) -> float:
    """What ``a -> b`` can carry: its own capacity plus the relief."""
    own = sum(cap for src, dst, cap, _ in links if (src, dst) == (a, b))
    return own + relief_mbps(links, a, b, spares)


def best_spare(links: Sequence[Link], a: int, b: int, spares: Sequence[Spare]) -> tuple[Spare, float] | None:
    """The spare that adds the most relief to ``a -> b`` and how much (Mbit/s); None if
    none adds any. Ties go to the first name."""
    base = relief_mbps(links, a, b)
    best: tuple[Spare, float] | None = None
    for spare in sorted(spares):
        gain = relief_mbps(links, a, b, (spare,)) - base
        if gain > 1e-9 and (best is None or gain > best[1] + 1e-9):
            best = (spare, gain)
    return best
