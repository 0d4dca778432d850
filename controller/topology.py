"""The network as a networkx graph: switches, ports, directed links, capacity and
utilisation, plus the path and spanning-tree computations that run on it.

Nodes are dp_ids. A directed link ``src_dp:src_port -> dst_dp:dst_port`` is an edge
of a MultiDiGraph keyed by ``src_port`` (parallel links between two switches stay
distinct). All computations sort their candidates before breaking ties, so the
same topology always yields the same paths and the same tree.

Not thread-safe by itself: the controller core serialises access.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import networkx as nx

from controller.config import RoutingConfig, TopologyMeta
from controller.events import Event

LOG = logging.getLogger(__name__)


@dataclass
class Port:
    port_no: int
    name: str = ""
    hw_addr: str = ""
    up: bool = True             # forwarding: not link-down and not admin-down
    admin_down: bool = False    # OFPPC_PORT_DOWN: someone (maybe we, controller.ports) set it down
    speed_mbps: float = 0.0
    up_since: float = 0.0
    lldp_seen: bool = False     # an LLDP frame ever arrived here (so not a host port)
    tx_rate_mbps: float = 0.0
    rx_rate_mbps: float = 0.0


@dataclass
class Switch:
    dp_id: int
    name: str
    ports: dict[int, Port] = field(default_factory=dict)
    connected_since: float = 0.0
    connected: bool = True
    lost_at: float | None = None
    hold_until: float = 0.0     # restored from state: not pruned before this time


@dataclass(frozen=True)
class LinkView:
    src_dp: int
    src_port: int
    dst_dp: int
    dst_port: int
    capacity_mbps: float
    capacity_source: str
    rate_mbps: float
    utilisation: float

    @property
    def name(self) -> str:
        return link_name(self.src_dp, self.src_port, self.dst_dp, self.dst_port)


def link_name(src_dp: int, src_port: int, dst_dp: int, dst_port: int) -> str:
    return f"{src_dp}:{src_port}-{dst_dp}:{dst_port}"


class Topology:
    def __init__(self, meta: TopologyMeta | None = None, routing: RoutingConfig | None = None):
        self.meta = meta or TopologyMeta()
        self.routing = routing or RoutingConfig()
        self.graph = nx.MultiDiGraph()
        self.switches: dict[int, Switch] = {}
        self.version = 0            # bumped on every change that can alter paths
        self._cache_version = -1
        self._path_cache: dict[tuple[int, int], list[int] | None] = {}
        self._detour_cache: dict[tuple[int, int, int], list[int] | None] = {}
        self._simple: nx.DiGraph | None = None
        self._tree: tuple[int, set[frozenset[int]]] | None = None

    # ---- switches and ports -------------------------------------------------

    def name_of(self, dp_id: int) -> str:
        return self.meta.name_of(dp_id) or f"s{dp_id}"

    def add_switch(self, dp_id: int, ports: list[Port], now: float) -> list[Event]:
        """A switch connected. If it is one that lost its connection a moment ago,
        its links stay (its data plane kept forwarding) and its ports are updated."""
        switch = self.switches.get(dp_id)
        events: list[Event] = []
        if switch is None:
            switch = Switch(dp_id, self.name_of(dp_id))
            for port in ports:
                port.up_since = now
                switch.ports[port.port_no] = port
            self.switches[dp_id] = switch
            self.graph.add_node(dp_id)
            self._changed()
        else:
            current = {p.port_no for p in ports}
            for port_no in sorted(set(switch.ports) - current):
                events += self.delete_port(dp_id, port_no, now)
            for port in ports:
                events += self.update_port(dp_id, port, now)
        switch.connected = True
        switch.connected_since = now
        switch.lost_at = None
        events.insert(0, Event("SWITCH_ENTER", now, dp_id=dp_id, detail=switch.name))
        return events

    def switch_lost(self, dp_id: int, now: float) -> list[Event]:
        """The control connection dropped. The switch keeps forwarding with the
        flows it has, so its links stay until LLDP shows them gone (link timeout)
        or a neighbour reports the port down; ``prune`` removes it after that."""
        switch = self.switches.get(dp_id)
        if switch is None or not switch.connected:
            return []
        switch.connected = False
        switch.lost_at = now
        return [Event("SWITCH_LEAVE", now, dp_id=dp_id, detail="connection lost")]

    def prune(self, now: float, timeout_s: float) -> list[Event]:
        """Remove switches that have been disconnected for longer than timeout_s."""
        events: list[Event] = []
        for dp_id in sorted(self.switches):
            switch = self.switches[dp_id]
            if not switch.connected and switch.lost_at is not None and now - switch.lost_at > timeout_s \
                    and now >= switch.hold_until:
                events += self.remove_switch(dp_id, now)
        return events

    def remove_switch(self, dp_id: int, now: float) -> list[Event]:
        if dp_id not in self.switches:
            return []
        events = self._remove_links(now, lambda s, sp, d, dpt: dp_id in (s, d), "switch removed")
        del self.switches[dp_id]
        self.graph.remove_node(dp_id)
        self._changed()
        events.append(Event("SWITCH_LEAVE", now, dp_id=dp_id, detail="removed"))
        return events

    def update_port(self, dp_id: int, port: Port, now: float) -> list[Event]:
        """Port added, modified or its link state changed."""
        switch = self.switches.get(dp_id)
        if switch is None:
            return []
        old = switch.ports.get(port.port_no)
        events: list[Event] = []
        if old is not None:
            port.lldp_seen = old.lldp_seen
            port.up_since = old.up_since if old.up == port.up else now
        else:
            port.up_since = now
        switch.ports[port.port_no] = port
        self._changed()
        if old is None or old.up != port.up:
            events.append(Event("PORT_UP" if port.up else "PORT_DOWN", now, dp_id, port.port_no,
                                detail=port.name))
        if not port.up:
            events += self._remove_links(
                now,
                lambda s, sp, d, dpt: (s, sp) == (dp_id, port.port_no) or (d, dpt) == (dp_id, port.port_no),
                "port down")
        return events

    def delete_port(self, dp_id: int, port_no: int, now: float) -> list[Event]:
        switch = self.switches.get(dp_id)
        if switch is None or port_no not in switch.ports:
            return []
        events = self._remove_links(
            now, lambda s, sp, d, dpt: (s, sp) == (dp_id, port_no) or (d, dpt) == (dp_id, port_no),
            "port deleted")
        del switch.ports[port_no]
        events.append(Event("PORT_DOWN", now, dp_id, port_no, detail="deleted"))
        return events

    def port(self, dp_id: int, port_no: int) -> Port | None:
        switch = self.switches.get(dp_id)
        return switch.ports.get(port_no) if switch else None

    # ---- links ---------------------------------------------------------------

    def link_seen(self, src_dp: int, src_port: int, dst_dp: int, dst_port: int,
                  now: float) -> list[Event]:
        """An LLDP frame sent from src_dp:src_port arrived at dst_dp:dst_port."""
        if src_dp not in self.switches or dst_dp not in self.switches:
            return []
        sport, dport = self.port(src_dp, src_port), self.port(dst_dp, dst_port)
        if sport is None or dport is None or not sport.up or not dport.up:
            return []
        dport.lldp_seen = True
        sport.lldp_seen = True
        events: list[Event] = []
        data = self.graph.get_edge_data(src_dp, dst_dp, key=src_port)
        if data is not None and data["dst_port"] == dst_port:
            data["last_seen"] = now
            return events
        # Either new, or the far end moved: drop whatever used either endpoint.
        events += self._remove_links(
            now, lambda s, sp, d, dpt: (s, sp) == (src_dp, src_port) or (d, dpt) == (dst_dp, dst_port),
            "link moved")
        capacity, source = self._capacity(src_dp, dst_dp, sport)
        self.graph.add_edge(src_dp, dst_dp, key=src_port, src_port=src_port, dst_port=dst_port,
                            capacity_mbps=capacity, capacity_source=source, last_seen=now,
                            rate_mbps=sport.tx_rate_mbps)
        self._changed()
        events.append(Event("LINK_ADD", now, src_dp, src_port,
                            link=(src_dp, src_port, dst_dp, dst_port)))
        return events

    def expire_links(self, now: float, timeout_s: float) -> list[Event]:
        stale = {(s, k) for s, d, k, data in self.graph.edges(keys=True, data=True)
                 if now - data["last_seen"] > timeout_s and now >= data.get("hold_until", 0.0)}
        return self._remove_links(now, lambda s, sp, d, dpt: (s, sp) in stale, "LLDP timeout")

    def _remove_links(self, now: float, doomed, why: str) -> list[Event]:
        victims = sorted((s, data["src_port"], d, data["dst_port"])
                         for s, d, data in self.graph.edges(data=True)
                         if doomed(s, data["src_port"], d, data["dst_port"]))
        events = []
        for s, sp, d, dpt in victims:
            self.graph.remove_edge(s, d, key=sp)
            events.append(Event("LINK_DELETE", now, s, sp, link=(s, sp, d, dpt), detail=why))
        if victims:
            self._changed()
        return events

    def _capacity(self, src_dp: int, dst_dp: int, sport: Port) -> tuple[float, str]:
        meta = self.meta.capacity_mbps(src_dp, dst_dp)
        if meta is not None:
            return meta, "metadata"
        if sport.speed_mbps > 0:
            return sport.speed_mbps, "port_speed"
        return 0.0, "unknown"

    def links(self) -> list[LinkView]:
        out = []
        for s, d, data in self.graph.edges(data=True):
            cap = data["capacity_mbps"]
            rate = data.get("rate_mbps", 0.0)
            out.append(LinkView(s, data["src_port"], d, data["dst_port"], cap,
                                data["capacity_source"], rate, rate / cap if cap > 0 else 0.0))
        return sorted(out, key=lambda link: (link.src_dp, link.src_port))

    def link_ports(self, dp_id: int) -> set[int]:
        ports = set()
        for _, _, data in self.graph.out_edges(dp_id, data=True):
            ports.add(data["src_port"])
        for _, _, data in self.graph.in_edges(dp_id, data=True):
            ports.add(data["dst_port"])
        return ports

    def edge_ports(self, dp_id: int, now: float, edge_after_s: float) -> set[int]:
        """Up ports that face hosts: no link, no LLDP ever seen, up long enough to be sure."""
        switch = self.switches.get(dp_id)
        if switch is None:
            return set()
        links = self.link_ports(dp_id)
        return {p.port_no for p in switch.ports.values()
                if p.up and p.port_no not in links and not p.lldp_seen
                and now - p.up_since >= edge_after_s}

    def is_link_port(self, dp_id: int, port_no: int) -> bool:
        port = self.port(dp_id, port_no)
        return port_no in self.link_ports(dp_id) or (port is not None and port.lldp_seen)

    def set_port_rates(self, dp_id: int, rates: dict[int, tuple[float, float]]) -> None:
        switch = self.switches.get(dp_id)
        if switch is None:
            return
        for port_no, (tx, rx) in rates.items():
            port = switch.ports.get(port_no)
            if port is not None:
                port.tx_rate_mbps, port.rx_rate_mbps = tx, rx
        for _, _, data in self.graph.out_edges(dp_id, data=True):
            if data["src_port"] in rates:
                data["rate_mbps"] = rates[data["src_port"]][0]

    # ---- persistence -------------------------------------------------------------

    def snapshot(self) -> tuple[dict[int, list[dict]], list[tuple]]:
        switches = {dp: [{"port_no": p.port_no, "name": p.name, "hw_addr": p.hw_addr, "up": p.up,
                          "speed_mbps": p.speed_mbps, "lldp_seen": p.lldp_seen}
                         for p in sorted(sw.ports.values(), key=lambda p: p.port_no)]
                    for dp, sw in sorted(self.switches.items())}
        links = [(s, d["src_port"], t, d["dst_port"], d["capacity_mbps"], d["capacity_source"])
                 for s, t, d in sorted(self.graph.edges(data=True), key=lambda e: (e[0], e[2]["src_port"]))]
        return switches, links

    def restore(self, switches: dict[int, list[dict]], links: list[tuple], now: float,
                hold_s: float) -> None:
        """Load a saved picture as provisional: switches disconnected, everything held
        for hold_s so that reconnecting switches find their links still there."""
        for dp_id, ports in switches.items():
            switch = Switch(dp_id, self.name_of(dp_id), connected=False, lost_at=now,
                            hold_until=now + hold_s)
            for p in ports:
                # up_since in the past: host ports count as host ports at once.
                switch.ports[p["port_no"]] = Port(up_since=float("-inf"), **p)
            self.switches[dp_id] = switch
            self.graph.add_node(dp_id)
        for s, sp, d, dp, cap, source in links:
            if s in self.switches and d in self.switches:
                self.graph.add_edge(s, d, key=sp, src_port=sp, dst_port=dp, capacity_mbps=cap,
                                    capacity_source=source, last_seen=now, hold_until=now + hold_s,
                                    rate_mbps=0.0)
        self._changed()

    # ---- computations ----------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1

    def _weight(self, capacity_mbps: float) -> float:
        if self.routing.path_metric == "inverse_capacity" and capacity_mbps > 0:
            return self.routing.reference_mbps / capacity_mbps
        return 1.0

    def simple_graph(self) -> nx.DiGraph:
        """One edge per switch pair: the cheapest parallel link, lowest port on ties."""
        if self._simple is not None and self._cache_version == self.version:
            return self._simple
        simple = nx.DiGraph()
        simple.add_nodes_from(sorted(self.switches))
        for s, d, data in sorted(self.graph.edges(data=True), key=lambda e: (e[0], e[1], e[2]["src_port"])):
            weight = self._weight(data["capacity_mbps"])
            if simple.has_edge(s, d) and simple[s][d]["weight"] <= weight:
                continue
            simple.add_edge(s, d, weight=weight, src_port=data["src_port"], dst_port=data["dst_port"])
        self._simple = simple
        self._path_cache = {}
        self._detour_cache = {}
        self._cache_version = self.version
        return simple

    def shortest_path(self, src_dp: int, dst_dp: int) -> list[int] | None:
        """Cheapest path as a list of dp_ids; among equals the lexicographically smallest."""
        graph = self.simple_graph()
        key = (src_dp, dst_dp)
        if key in self._path_cache:
            return self._path_cache[key]
        path = None
        if src_dp in graph and dst_dp in graph:
            try:
                path = min(nx.all_shortest_paths(graph, src_dp, dst_dp, weight="weight"))
            except nx.NetworkXNoPath:
                path = None
        self._path_cache[key] = path
        return path

    def detour(self, src_dp: int, next_dp: int, dst_dp: int) -> list[int] | None:
        """Cheapest path from src_dp to dst_dp that avoids the link between src_dp and
        next_dp (both directions, every parallel link: the switch pair); ties broken as
        in shortest_path. None where that link is a bridge on the way to dst_dp."""
        graph = self.simple_graph()
        key = (src_dp, next_dp, dst_dp)
        if key in self._detour_cache:
            return self._detour_cache[key]
        path = None
        if src_dp in graph and dst_dp in graph and src_dp != dst_dp:
            avoid = {src_dp, next_dp}

            def weight(u: int, v: int, data: dict) -> float | None:      # None hides the edge
                return None if u in avoid and v in avoid else data["weight"]

            try:
                path = min(nx.all_shortest_paths(graph, src_dp, dst_dp, weight=weight))
            except nx.NetworkXNoPath:
                path = None
        self._detour_cache[key] = path
        return path

    def switch_pairs(self) -> list[tuple[int, int]]:
        """Linked switch pairs ``(a, b)`` with ``a < b``, sorted (a link seen one way counts)."""
        return sorted({(min(s, d), max(s, d)) for s, d in self.simple_graph().edges})

    def hop_ports(self, path: list[int]) -> list[tuple[int, int, int]]:
        """(dp_id, out_port_to_next, in_port_from_previous) for each switch except the last's out."""
        graph = self.simple_graph()
        hops = []
        for i, dp in enumerate(path):
            in_port = graph[path[i - 1]][dp]["dst_port"] if i > 0 else 0
            out_port = graph[dp][path[i + 1]]["src_port"] if i + 1 < len(path) else 0
            hops.append((dp, in_port, out_port))
        return hops

    def spanning_tree(self) -> set[frozenset[int]]:
        """Undirected switch pairs in a minimum spanning forest over links seen both ways."""
        graph = self.simple_graph()
        if self._tree is not None and self._tree[0] == self.version:
            return self._tree[1]
        undirected = nx.Graph()
        undirected.add_nodes_from(graph.nodes)
        for s, d in sorted(graph.edges):
            if s < d and graph.has_edge(d, s):
                undirected.add_edge(s, d, weight=graph[s][d]["weight"])
        tree = nx.minimum_spanning_tree(undirected, algorithm="kruskal")
        edges = {frozenset(e) for e in tree.edges}
        self._tree = (self.version, edges)
        return edges

    def tree_ports(self, dp_id: int) -> set[int]:
        graph = self.simple_graph()
        ports = set()
        for pair in self.spanning_tree():
            if dp_id in pair:
                (other,) = pair - {dp_id}
                ports.add(graph[dp_id][other]["src_port"])
        return ports
