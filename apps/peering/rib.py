"""The routes every neighbour announces, grouped into prefix groups.

Pure: ``Rib.update`` takes the BGP speaker's route events (``apps.peering.gobgp``:
prefix, the neighbour's address, AS path, withdrawn) and keeps, per IPv4 prefix,
which neighbours announce it and how long their AS path is. ``groups()`` makes the
prefix groups the planner and the data plane work with: the prefixes of one origin
AS (the last AS of the path; a neighbour's own prefixes are its AS's) that the same
neighbours announce. An origin whose prefixes differ in reach is split into several
groups, the largest keeping the plain name ``as<origin>``.

Why by origin AS: demand is forecast and steered per group, and traffic toward one
network follows one daily shape; every prefix of a group is reachable through
exactly the same exits, so a group moves as one (one group-mod at the edge switch).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol


class RouteLike(Protocol):
    prefix: str
    neighbour: str  # the announcing neighbour's address
    as_path: tuple[int, ...]
    withdrawn: bool


@dataclass(frozen=True)
class PrefixGroup:
    name: str  # "as64601", or "as64601.2" for a split origin
    origin: int
    prefixes: tuple[str, ...]  # sorted, "a.b.c.d/len"
    reach: Mapping[str, int]  # neighbour name -> AS-path length of its route


class Rib:
    """Per prefix: neighbour name -> AS path. ``names`` maps a neighbour's address to
    its name; routes from addresses it does not list are ignored (and counted)."""

    def __init__(self, names: Mapping[str, str], asns: Mapping[str, int]):
        self.names = dict(names)
        self.asns = dict(asns)  # neighbour name -> its ASN
        self.routes: dict[str, dict[str, tuple[int, ...]]] = {}
        self.version = 0
        self.ignored = 0
        self._groups: tuple[int, list[PrefixGroup]] = (-1, [])

    def update(self, routes: Iterable[RouteLike]) -> int:
        """Apply route events; the number that changed something."""
        changed = 0
        for route in routes:
            name = self.names.get(route.neighbour)
            prefix = _ipv4_prefix(route.prefix)
            if name is None or prefix is None:
                self.ignored += 1
                continue
            held = self.routes.get(prefix)
            if route.withdrawn:
                if held and held.pop(name, None) is not None:
                    changed += 1
                    if not held:
                        del self.routes[prefix]
                continue
            changed += self._put(prefix, name, tuple(int(a) for a in route.as_path))
        if changed:
            self.version += 1
        return changed

    def replace(self, name: str, routes: Iterable[RouteLike]) -> int:
        """A neighbour's whole table (after a resync): what it no longer has is withdrawn."""
        fresh = {
            p: tuple(int(a) for a in r.as_path)
            for r in routes
            if not r.withdrawn and self.names.get(r.neighbour) == name and (p := _ipv4_prefix(r.prefix))
        }
        changed = self.drop(name, keep=set(fresh))
        for prefix, path in fresh.items():
            changed += self._put(prefix, name, path)
        if changed:
            self.version += 1
        return changed

    def _put(self, prefix: str, name: str, path: tuple[int, ...]) -> bool:
        held = self.routes.setdefault(prefix, {})
        if held.get(name) == path:
            return False
        held[name] = path
        return True

    def drop(self, name: str, keep: set[str] = frozenset()) -> int:
        """Forget a neighbour's routes (its session went down), except ``keep``."""
        changed = 0
        for prefix in [p for p, held in self.routes.items() if name in held and p not in keep]:
            held = self.routes[prefix]
            del held[name]
            changed += 1
            if not held:
                del self.routes[prefix]
        if changed:
            self.version += 1
        return changed

    def prefixes_from(self, name: str) -> int:
        return sum(1 for held in self.routes.values() if name in held)

    def groups(self) -> list[PrefixGroup]:
        """The prefix groups, sorted by name; rebuilt only when the routes changed."""
        if self._groups[0] != self.version:
            self._groups = (self.version, self._build())
        return self._groups[1]

    def _origin(self, held: Mapping[str, tuple[int, ...]]) -> int:
        # Every announcer normally agrees; if not (a MOAS prefix), the most common origin
        # wins, then the lowest, so the grouping is deterministic.
        votes: dict[int, int] = {}
        for name, path in held.items():
            origin = path[-1] if path else self.asns.get(name, 0)
            votes[origin] = votes.get(origin, 0) + 1
        return min(votes, key=lambda o: (-votes[o], o))

    def _build(self) -> list[PrefixGroup]:
        by_origin: dict[int, dict[tuple[tuple[str, int], ...], list[str]]] = {}
        for prefix, held in self.routes.items():
            reach = tuple(sorted((name, max(len(path), 1)) for name, path in held.items()))
            by_origin.setdefault(self._origin(held), {}).setdefault(reach, []).append(prefix)
        out = []
        for origin, splits in by_origin.items():
            ordered = sorted(splits.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            for k, (reach, prefixes) in enumerate(ordered):
                name = f"as{origin}" if k == 0 else f"as{origin}.{k + 1}"
                out.append(PrefixGroup(name, origin, tuple(sorted(prefixes, key=_sort_key)), dict(reach)))
        return sorted(out, key=lambda g: g.name)


def _ipv4_prefix(text: str) -> str | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(net) if net.version == 4 else None


@functools.lru_cache(maxsize=1 << 17)
def _sort_key(prefix: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(prefix)
    return int(net.network_address), net.prefixlen
