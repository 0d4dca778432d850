"""What the data-plane verifier is given: the topology, the policy, and updates.

``Topology`` says what is behind each switch port (a link's far end, a host, the
outside) and which ports are down; ``Policy`` the host pairs that must reach each other
and the sets of hosts that must not; ``Update`` (made by ``add`` and ``delete``) one
change to a switch's flows, groups or meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec
from apps.provisioning.headerspace import VerifyError


@dataclass(frozen=True)
class Host:
    name: str
    dp_id: int
    port_no: int
    mac: str
    ip: str


class Topology:
    """Switch ports and what is behind them: a link's far end, a host, the outside (a
    peer's or a tunnel's port: frames leaving there are delivered out of the network)."""

    def __init__(self, links: Iterable[tuple[int, int, int, int]], hosts: Iterable[Any],
                 outside: Iterable[tuple[int, int, str]] = (), down: Iterable[tuple[int, int]] = ()):
        self.peer: dict[tuple[int, int], tuple[int, int]] = {}
        for a, pa, b, pb in links:
            self.peer[(a, pa)] = (b, pb)
            self.peer[(b, pb)] = (a, pa)
        self.hosts = {h.name: Host(h.name, h.dp_id, h.port_no, h.mac.lower(), h.ip) for h in hosts}
        self.host_at = {(h.dp_id, h.port_no): h.name for h in self.hosts.values()}
        self.outside = {(dp, port): name for dp, port, name in outside}
        self.down = frozenset(down)
        self.dp_ids = frozenset(dp for dp, _ in [*self.peer, *self.host_at, *self.outside])
        self._ends: dict[tuple[int, int], tuple] = {}

    def live(self, dp: int, port: int | None) -> bool:
        key = (dp, port)
        return key not in self.down and (key in self.peer or key in self.host_at or key in self.outside)

    def end(self, dp: int, port: int) -> tuple:
        """What a frame sent out of dp:port meets (an event of ``apps.provisioning.walk``;
        one object per port, asked for on every hop of every walk)."""
        key = (dp, port)
        got = self._ends.get(key)
        if got is None:
            got = self._ends[key] = self._end(key)
        return got

    def _end(self, key: tuple[int, int]) -> tuple:
        dp, port = key
        if not self.live(dp, port):
            return ("dead", dp, port) if key in self.down else ("noport", dp, port)
        if key in self.host_at:
            return ("host", self.host_at[key])
        if key in self.outside:
            return ("out", dp, port, self.outside[key])
        peer = self.peer[key]
        if peer in self.down:
            return ("dead", dp, port)
        return ("link", *peer)


@dataclass(frozen=True)
class Policy:
    """Host pairs that must reach each other (both ways), and sets of hosts that must not
    reach any host of another set (``flood_ok``: with frames addressed to a host)."""
    reach: tuple[tuple[str, str], ...] = ()
    isolate: tuple[frozenset[str], ...] = ()
    # Broadcast and unknown-destination frames (flooded along the spanning tree to every
    # host) do not count against isolation: in a network whose flooding is not split
    # per tenant, only unicast frames can keep tenants apart.
    flood_ok: bool = False

    @classmethod
    def all_pairs(cls, hosts: Iterable[str]) -> "Policy":
        names = sorted(hosts)
        return cls(reach=tuple((a, b) for i, a in enumerate(names) for b in names[i + 1:]))

    def check(self, hosts: Iterable[str]) -> None:
        """VerifyError naming the first host of the policy that is not in ``hosts``."""
        names = set(hosts)
        for group in (*self.reach, *self.isolate):
            for name in sorted(group):
                if name not in names:
                    raise VerifyError(f"policy names host {name!r}, which is not in the topology")

    def pairs(self) -> list[tuple[str, str]]:
        """The ordered host pairs the policy says something about (each way)."""
        return sorted(self.must_reach | self.must_not_reach)

    @cached_property
    def must_reach(self) -> frozenset[tuple[str, str]]:
        """Ordered pairs (a, b): every frame a sends to b must be delivered."""
        return frozenset({(a, b) for a, b in self.reach} | {(b, a) for a, b in self.reach})

    @cached_property
    def must_not_reach(self) -> frozenset[tuple[str, str]]:
        """Ordered pairs (a, b) in different isolated sets and in none together."""
        pairs = set()
        for i, group in enumerate(self.isolate):
            for other in self.isolate[i + 1:]:
                pairs |= {(a, b) for a in group for b in other} | {(b, a) for a in group for b in other}
        return frozenset((a, b) for a, b in pairs if not any(a in g and b in g for g in self.isolate))


@dataclass(frozen=True)
class Update:
    """One change to a switch: ``op`` 'add' (a flow with the key of one there replaces it;
    a group or meter with its id, modifies it) or 'delete'."""
    dp_id: int
    op: str
    entry: FlowSpec | GroupSpec | MeterSpec


def add(dp_id: int, entry) -> Update:
    return Update(dp_id, "add", entry)


def delete(dp_id: int, entry) -> Update:
    return Update(dp_id, "delete", entry)
