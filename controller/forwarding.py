"""Shortest-path unicast between learned hosts, installed along the whole path.

A host pair (src MAC, dst MAC) is wanted once traffic asks for it, and stays wanted
while the path is broken (a switch away, a partition), so its flows come back when
connectivity does. Every switch on the path gets one flow in the forward table
matching the pair. When the
topology or a host's location changes, every kept path is recomputed; the core's
diff then sends only what changed, new hops before removals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from controller import cookies
from controller.flows import FlowSpec, flow
from controller.hosts import HostTable
from controller.topology import Topology

LOG = logging.getLogger(__name__)

PRIO_PATH = 1000
COOKIE = cookies.cookie("forwarding")


@dataclass(frozen=True)
class Hop:
    dp_id: int
    in_port: int
    out_port: int


class Forwarding:
    def __init__(self, topology: Topology, hosts: HostTable):
        self.topology = topology
        self.hosts = hosts
        self.wanted: set[tuple[str, str]] = set()
        self.paths: dict[tuple[str, str], tuple[Hop, ...]] = {}
        # dp_id -> pair -> its flow on that switch; kept in step with self.paths.
        self._by_dp: dict[int, dict[tuple[str, str], FlowSpec]] = {}

    def _set(self, key: tuple[str, str], path: tuple[Hop, ...] | None) -> None:
        old = self.paths.pop(key, None)
        for hop in old or ():
            self._by_dp.get(hop.dp_id, {}).pop(key, None)
        if path is None:
            return
        self.paths[key] = path
        src, dst = key
        for hop in path:
            self._by_dp.setdefault(hop.dp_id, {})[key] = flow(
                "forward", PRIO_PATH, {"eth_src": src, "eth_dst": dst}, [("output", hop.out_port)],
                cookie=COOKIE)

    def compute(self, src_mac: str, dst_mac: str) -> tuple[Hop, ...] | None:
        src, dst = self.hosts.get(src_mac), self.hosts.get(dst_mac)
        if src is None or dst is None:
            return None
        dps = self.topology.shortest_path(src.dp_id, dst.dp_id)
        if dps is None:
            return None
        hops = []
        for i, (dp, in_port, out_port) in enumerate(self.topology.hop_ports(dps)):
            if i == 0:
                in_port = src.port_no
            if i == len(dps) - 1:
                out_port = dst.port_no
            hops.append(Hop(dp, in_port, out_port))
        return tuple(hops)

    def ensure(self, src_mac: str, dst_mac: str) -> tuple[Hop, ...] | None:
        """Keep (and return) the path for this pair, computing it if new."""
        key = (src_mac.lower(), dst_mac.lower())
        self.wanted.add(key)
        path = self.paths.get(key)
        if path is None:
            path = self.compute(*key)
            if path is not None:
                self._set(key, path)
        return path

    def refresh(self) -> list[tuple[tuple[str, str], tuple[Hop, ...] | None, tuple[Hop, ...] | None]]:
        """Recompute every wanted path; return (pair, old, new) for those that changed."""
        changes = []
        for key in sorted(self.wanted):
            old = self.paths.get(key)
            new = self.compute(*key)
            if new == old:
                continue
            self._set(key, new)
            changes.append((key, old, new))
        return changes

    def desired(self, dp_id: int) -> list[FlowSpec]:
        return list(self._by_dp.get(dp_id, {}).values())

    def ingress_dps(self) -> set[int]:
        return {hops[0].dp_id for hops in self.paths.values()}
