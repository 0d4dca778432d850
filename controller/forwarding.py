"""Shortest-path unicast between learned hosts, installed along the whole path, with a
pre-installed detour for every hop that has one (fast failover, ``controller.detours``).

A host pair (src MAC, dst MAC) is wanted once traffic asks for it, and stays wanted
while the path is broken (a switch away, a partition), so its flows come back when
connectivity does. Every switch on the path gets one flow in the forward table
matching the pair: an output, or, where the hop is protected, a fast-failover group
that falls back to the hop's detour. When the topology or a host's location changes,
every kept path is recomputed (primaries and detours); the core's diff then sends
only what changed, new hops before removals.

What this manager wants on a switch is a ``Desired`` the core merges like a
provider's: the pair flows, the detour flows and groups the pairs share (counted, so
an entry goes when the last pair using it does) and, with fast failover on, the
guard flows that keep tagged frames on detours.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from controller import cookies, detours
from controller.desired import Desired
from controller.detours import Detour
from controller.flows import FlowSpec, flow
from controller.groups import GroupSpec
from controller.hosts import HostTable
from controller.topology import Topology

LOG = logging.getLogger(__name__)

PRIO_PATH = 1000
COOKIE = cookies.cookie("forwarding")

Pair = tuple[str, str]


@dataclass(frozen=True)
class Hop:
    dp_id: int
    in_port: int
    out_port: int
    detour: Detour | None = None    # where the hop falls back to if out_port goes down


class Forwarding:
    def __init__(self, topology: Topology, hosts: HostTable, fast_failover: bool = True):
        self.topology = topology
        self.hosts = hosts
        self.fast_failover = fast_failover
        self.wanted: set[Pair] = set()
        self.paths: dict[Pair, tuple[Hop, ...]] = {}
        self.version = 0        # bumped whenever a pair's path is set, changed or dropped
        # dp_id -> entry key -> flow or group, and how many pairs want it; a pair's
        # (dp_id, entry key)s are in self._uses. Kept in step with self.paths.
        self._entries: dict[int, dict[tuple, FlowSpec | GroupSpec]] = {}
        self._refs: dict[int, Counter] = {}
        self._uses: dict[Pair, list[tuple[int, tuple]]] = {}
        self._tags: tuple[int, dict[tuple[int, int], int]] = (-1, {})

    # ---- paths -----------------------------------------------------------------------

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
            detour = None
            if i == len(dps) - 1:
                out_port = dst.port_no
            elif self.fast_failover:
                detour = self._detour(dp, dps[i + 1], dst.dp_id, dst.port_no)
            hops.append(Hop(dp, in_port, out_port, detour))
        return tuple(hops)

    def _detour(self, dp: int, next_dp: int, dst_dp: int, host_port: int) -> Detour | None:
        tag = self._link_tags().get((min(dp, next_dp), max(dp, next_dp)))
        dps = self.topology.detour(dp, next_dp, dst_dp)
        if tag is None or dps is None:
            return None
        steps = tuple((d, out) for d, _, out in self.topology.hop_ports(dps)[:-1]) + ((dst_dp, host_port),)
        return Detour(tag, steps)

    def _link_tags(self) -> dict[tuple[int, int], int]:
        version = self.topology.version
        if self._tags[0] != version:
            self._tags = (version, detours.link_tags(self.topology.switch_pairs()))
        return self._tags[1]

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

    def refresh(self) -> list[tuple[Pair, tuple[Hop, ...] | None, tuple[Hop, ...] | None]]:
        """Recompute every wanted path; return (pair, old, new) for those that changed
        (a changed detour counts: its entries change)."""
        changes = []
        for key in sorted(self.wanted):
            old = self.paths.get(key)
            new = self.compute(*key)
            if new == old:
                continue
            self._set(key, new)
            changes.append((key, old, new))
        return changes

    # ---- entries on switches ----------------------------------------------------------

    def _set(self, key: Pair, path: tuple[Hop, ...] | None) -> None:
        self.version += 1
        self.paths.pop(key, None)
        for dp_id, entry in self._uses.pop(key, ()):
            refs = self._refs[dp_id]
            refs[entry] -= 1
            if not refs[entry]:
                del refs[entry]
                del self._entries[dp_id][entry]
        if path is None:
            return
        self.paths[key] = path
        uses = []
        for dp_id, entry, spec in self._path_entries(key, path):
            # A shared entry takes the newest spec: during a refresh the pairs not yet
            # recomputed may still hold an older one, which they replace when they are.
            self._entries.setdefault(dp_id, {})[entry] = spec
            self._refs.setdefault(dp_id, Counter())[entry] += 1
            uses.append((dp_id, entry))
        self._uses[key] = uses

    @staticmethod
    def _path_entries(key: Pair, path: tuple[Hop, ...]):
        """(dp_id, entry key, flow or group) for everything the pair's path needs."""
        src, dst = key
        for hop in path:
            gid = None
            if hop.detour:
                turn_back = hop.detour.backup_port == hop.in_port
                gid = detours.group_id(hop.out_port, hop.detour.backup_port, turn_back)
            if gid is None:
                actions = [("output", hop.out_port)]
            else:
                actions = [("group", gid)]
                yield hop.dp_id, ("group", gid), detours.ff_group(gid, hop.out_port, hop.detour.backup_port,
                                                                  hop.detour.tag, turn_back)
                for dp_id, spec in detours.detour_flows(dst, hop.detour):
                    yield dp_id, spec.key, spec
            yield hop.dp_id, ("pair", key), flow("forward", PRIO_PATH, {"eth_src": src, "eth_dst": dst},
                                                 actions, cookie=COOKIE)

    def desired(self, dp_id: int) -> Desired:
        entries = self._entries.get(dp_id, {})
        specs = [s for s in entries.values() if isinstance(s, FlowSpec)]
        if self.fast_failover:
            specs += detours.GUARD_FLOWS
        return Desired(tuple(specs), tuple(s for s in entries.values() if isinstance(s, GroupSpec)))

    def ingress_dps(self) -> set[int]:
        return {hops[0].dp_id for hops in self.paths.values()}

    def dps_of(self, key: Pair) -> list[int]:
        """Switches holding anything for this pair (its path and its detours), sorted."""
        return sorted({dp_id for dp_id, _ in self._uses.get(key, ())})
