"""The verifier's classes and their indexes.

A class is a host's frames (cubes, as the host sends them) that all take one way
through the network, with one destination host (or none): the walk's events, the
table visits and groups on the way, the hosts some copy reaches, and the loop and
black-hole findings of that way. ``Classes`` keeps them with the indexes an update
and the policy checks look them up by: by table visit and winning flow (the classes
a flow change can touch), by group, by (source, destination) and by the hosts they
deliver to, and the findings with the classes that show them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from apps.provisioning.findings import LOST, Finding, class_findings
from apps.provisioning.headerspace import ETH_DST, fix


@dataclass
class Class:
    """Frames a host sends (``cubes``, as sent) that all take one way (``events``)."""
    ingress: str
    dst: str | None         # the host whose MAC every frame of the class is sent to, if any
    events: tuple
    cubes: list
    visits: list            # its table visits: the walk's ("v", ...) events
    groups: set
    findings: list          # Finding (no example)
    delivers: frozenset     # host names some copy reaches
    lost: bool              # some copy ends anywhere but a host or the outside
    key: tuple = ()         # (ingress, dst, Way(events)): its key in Classes.by_key


class Way:
    """A class's events as a dictionary key, with what the classes read from them: a
    flooded class's way has hundreds of events, and one walked cube is split into a
    class per destination host, so its hash (tens of microseconds) and its reading are
    done once, not per class and look-up."""
    __slots__ = ("events", "hash", "_summary")

    def __init__(self, events: tuple):
        self.events = events
        self.hash = hash(events)
        self._summary: tuple | None = None

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Way) and self.hash == other.hash and self.events == other.events

    def summary(self) -> tuple[list, set, frozenset, bool]:
        """(table visits, groups run or missing, hosts reached, whether a copy is lost)."""
        if self._summary is None:
            visits, groups, delivers, lost = [], set(), set(), False
            for e in self.events:
                kind = e[0]
                if kind == "v":
                    visits.append(e)
                elif kind == "hop":
                    continue
                elif kind == "host":
                    delivers.add(e[1])
                elif kind == "g":
                    groups.add((e[1], e[2]))
                elif kind in LOST:
                    lost = True
                    if kind == "nogroup":
                        groups.add((e[1], e[2]))
            self._summary = (visits, groups, frozenset(delivers), lost)
        return self._summary


class Classes:
    """Every class of a verifier, by id, with their indexes (see the module docstring)."""

    def __init__(self, dst_names: dict[int, str], host_dps: dict[str, int]):
        self.dst_names = dst_names      # a host's MAC atom -> the host
        self.host_dsts = 0
        for mask in dst_names:
            self.host_dsts |= mask
        self.host_dps = host_dps        # host -> its switch
        self.next_id = 0
        self.by_id: dict[int, Class] = {}
        self.by_key: dict[tuple, int] = {}
        self.by_ingress: dict[str, set[int]] = defaultdict(set)
        self.by_pair: dict[tuple[str, str | None], set[int]] = defaultdict(set)
        # (dp, table) -> flow key (None: no flow) -> class id -> its visits there ("v" events)
        self.visits: dict[tuple, dict] = defaultdict(lambda: defaultdict(dict))
        self.group_users: dict[tuple, set[int]] = defaultdict(set)
        self.delivering: dict[tuple[str, str], set[int]] = defaultdict(set)
        self.findings: dict[Finding, dict[int, tuple]] = {}    # finding -> class id -> a cube showing it
        self.journal: dict[Finding, bool] | None = None       # see Verifier.apply

    def clear(self) -> None:
        for index in (self.by_id, self.by_key, self.by_ingress, self.by_pair, self.visits, self.group_users,
                      self.delivering, self.findings):
            index.clear()

    def fix(self, splits: list) -> None:
        """Atoms split: every stored cube takes the new atom where it had the old one."""
        for cls in self.by_id.values():
            cls.cubes = [fix(c, splits) for c in cls.cubes]

    def add_walked(self, ingress: str, cube, events: tuple) -> list[int]:
        """A walked cube, split by the host (if any) its eth_dst is, so a class's
        destination, and with it what counts as a black hole, is one."""
        i = ETH_DST
        dst = cube[i]
        added = []
        way = Way(events)
        if dst & self.host_dsts:
            for mask, name in self.dst_names.items():
                if dst & mask:
                    added.append(self.add(ingress, name, cube[:i] + (mask,) + cube[i + 1:], way))
            dst &= ~self.host_dsts
            if not dst:
                return added
            cube = cube[:i] + (dst,) + cube[i + 1:]
        added.append(self.add(ingress, None, cube, way))
        return added

    def add(self, ingress: str, dst: str | None, cube, way: Way) -> int:
        """A walked cube to ``dst`` (None: to no host): a new class, or a cube more of one."""
        key = (ingress, dst, way)
        cid = self.by_key.get(key)
        if cid is not None:
            self.by_id[cid].cubes.append(cube)
            return cid
        cid = self.next_id
        self.next_id += 1
        events = way.events
        visits, groups, delivers, lost = way.summary()
        cls = Class(ingress, dst, events, [cube], visits, groups, [], delivers, lost, key)
        if lost:            # every loop or black hole ends a copy somewhere but a host
            findings = class_findings(ingress, dst, self.host_dps[ingress], events)
            cls.findings = list(dict.fromkeys(findings))     # one of each
        self.by_id[cid] = cls
        self.by_key[key] = cid
        self.by_ingress[ingress].add(cid)
        self.by_pair[(ingress, dst)].add(cid)
        index = self.visits
        for visit in visits:
            index[visit[1], visit[2]][visit[3]].setdefault(cid, []).append(visit)
        for g in groups:
            self.group_users[g].add(cid)
        for dst in delivers:
            self.delivering[(ingress, dst)].add(cid)
        for finding in cls.findings:
            holders = self.findings.get(finding)
            if holders is None:
                holders = self.findings[finding] = {}
                if self.journal is not None:
                    self.journal.setdefault(finding, False)
            holders[cid] = cube     # its example, when reported
        return cid

    def remove(self, cid: int) -> Class:
        cls = self.by_id.pop(cid)
        del self.by_key[cls.key]
        self.by_ingress[cls.ingress].discard(cid)
        self.by_pair[(cls.ingress, cls.dst)].discard(cid)
        index = self.visits
        for visit in cls.visits:
            users = index[visit[1], visit[2]]
            won = users.get(visit[3])
            if won is not None:
                won.pop(cid, None)
                if not won:
                    del users[visit[3]]
        for g in cls.groups:
            self.group_users[g].discard(cid)
        for dst in cls.delivers:
            self.delivering[(cls.ingress, dst)].discard(cid)
        for finding in cls.findings:
            holders = self.findings[finding]
            holders.pop(cid, None)
            if not holders:
                del self.findings[finding]
                if self.journal is not None:
                    self.journal.setdefault(finding, True)
        return cls
