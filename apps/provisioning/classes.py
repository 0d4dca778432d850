"""The verifier's classes and their indexes.

A class is a host's frames (cubes, as the host sends them) that all take one way
through the network, with one destination host (or none): the walk's events, the
table visits and groups on the way, the hosts some copy reaches, and the loop and
black-hole findings of that way. ``Classes`` keeps them with the indexes an update
and the policy checks look them up by: by table visit and winning flow (the classes
a flow change can touch), by group, by (source, destination) and by the hosts they
deliver to, and the findings with the classes that show them.

A class walked again after an update keeps its id (``Classes.rewalked``): its index
entries are changed only where its new way differs from its old one, which after a
change at one switch is the stretch where it entered that switch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter

from apps.provisioning.findings import LOST, Finding, class_findings
from apps.provisioning.headerspace import ETH_DST, fix


@dataclass
class Class:
    """Frames a host sends (``cubes``, as sent) that all take one way (``events``)."""
    ingress: str
    dst: str | None         # the host whose MAC every frame of the class is sent to, if any
    events: tuple
    cubes: list
    visits: tuple           # its table visits: the walk's ("v", ...) events
    groups: frozenset
    findings: list          # Finding (no example)
    delivers: frozenset     # host names some copy reaches
    lost: bool              # some copy ends anywhere but a host or the outside
    key: tuple = ()         # (ingress, dst, Way(events)): its key in Classes.by_key


_KIND, _SECOND = itemgetter(0), itemgetter(1)
_IS_VISIT, _IS_HOST = frozenset({"v"}).__contains__, frozenset({"host"}).__contains__   # str.__eq__ is slower
_IS_GROUP = frozenset({"g", "nogroup"}).__contains__
_GROUP = itemgetter(1, 2)
_NONE: frozenset = frozenset()


class Way:
    """A class's events as a dictionary key, with what the classes read from them: a
    flooded class's way has a hundred events and more, and one walked cube is split into
    a class per destination host, so its reading is done once, not per class and
    look-up. The hash is of the length and a few events spread over the way (hashing
    every event of every way walked again cost tens of microseconds a class): equal
    ways hash alike, and ways that differ only between the samples are told apart by
    ``==``, which stops at their first difference."""
    __slots__ = ("events", "hash", "_summary")

    def __init__(self, events: tuple):
        self.events = events
        n = len(events)
        self.hash = hash((n, events[::n // 6 + 1], events[-1] if n else None))
        self._summary: tuple | None = None

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Way) and self.hash == other.hash and (
            self.events is other.events or self.events == other.events)

    def summary(self) -> tuple[tuple, frozenset, frozenset, bool]:
        """(table visits, groups run or missing, hosts reached, whether a copy is lost). Tuples
        and frozensets: the collector stops tracking a tuple of tuples of plain values, and
        the classes keep these as long as they live (lists of visits were a fifth of the
        objects each young collection went through)."""
        if self._summary is None:
            # Picked out by kind in C: a flooded way has a hundred events and more.
            events = self.events
            kinds = list(map(_KIND, events))
            present = set(kinds)
            visits = tuple(compress(events, map(_IS_VISIT, kinds)))
            groups = frozenset(map(_GROUP, compress(events, map(_IS_GROUP, kinds)))) \
                if "g" in present or "nogroup" in present else _NONE
            delivers = frozenset(map(_SECOND, compress(events, map(_IS_HOST, kinds)))) \
                if "host" in present else _NONE
            self._summary = (visits, groups, delivers, not present.isdisjoint(LOST))
        return self._summary


def _common_ends(old: tuple, new: tuple) -> tuple[int, int]:
    """How many items ``old`` and ``new`` share at their start, and then at their end: a
    way walked again after a change differs from the old one only where it entered the
    changed switch (the rest is the same sub-walks, in the same order). Found by halving,
    comparing slices (a comparison of the whole runs in C)."""
    n = min(len(old), len(new))
    lo, hi = 0, n                       # old[:lo] == new[:lo]; old[:hi + 1] != new[:hi + 1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if old[lo:mid] == new[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    head, n = lo, n - lo
    lo, hi = 0, n
    la, lb = len(old), len(new)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if old[la - mid:la - lo] == new[lb - mid:lb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return head, lo


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
        # (dp, table) -> flow key (None: no flow) -> class id -> its visits there ("v" events,
        # a tuple: see Way.summary)
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
                    added.append(self.add(ingress, name, [cube[:i] + (mask,) + cube[i + 1:]], way))
            dst &= ~self.host_dsts
            if not dst:
                return added
            cube = cube[:i] + (dst,) + cube[i + 1:]
        added.append(self.add(ingress, None, [cube], way))
        return added

    def add(self, ingress: str, dst: str | None, cubes: list, way: Way) -> int:
        """Walked cubes to ``dst`` (None: to no host): a new class, or cubes more of one."""
        key = (ingress, dst, way)
        cid = self.by_key.get(key)
        if cid is not None:
            self.by_id[cid].cubes.extend(cubes)
            return cid
        cid = self.next_id
        self.next_id += 1
        visits, groups, delivers, lost = way.summary()
        # every loop or black hole ends a copy somewhere but a host
        findings = self._findings(ingress, dst, way.events) if lost else []
        cls = Class(ingress, dst, way.events, cubes, visits, groups, findings, delivers, lost, key)
        self.by_id[cid] = cls
        self.by_key[key] = cid
        self.by_ingress[ingress].add(cid)
        self.by_pair[(ingress, dst)].add(cid)
        self._index(cid, visits)
        for g in groups:
            self.group_users[g].add(cid)
        for dst in delivers:
            self.delivering[(ingress, dst)].add(cid)
        self._hold(cid, cls.findings, cubes[0])
        return cid

    def rewalked(self, cid: int, walked: list) -> list[tuple[str, str | None, frozenset]]:
        """Class ``cid``'s cubes walked again (``walked``: (cube, events) pairs, all to its
        destination). The class keeps its id for one of its new ways that no other class
        has (its old way if it still has it), and only the index entries that differ
        are changed: the visits it gained and lost where it entered the changed switch,
        its groups, hosts and findings that differ. Cubes of a way another class has
        join that class; of any other way, a new class. Answers (ingress, destination,
        hosts reached) before and after of every class that changed, for the policy
        checks to redo."""
        cls = self.by_id[cid]
        by_way: dict[Way, list] = {}
        for cube, events in walked:
            way = Way(events)
            got = by_way.get(way)
            if got is None:
                by_way[way] = [cube]
            else:
                got.append(cube)
        old_way = cls.key[2]
        if len(by_way) == 1 and old_way in by_way:
            cls.cubes = by_way[old_way]      # the same way: nothing any check reads changed
            return []
        ingress, dst = cls.ingress, cls.dst
        changed = [(ingress, dst, cls.delivers)]
        del self.by_key[cls.key]
        kept = False
        for way in sorted(by_way, key=lambda w: w != old_way):     # its old way first
            cubes = by_way[way]
            key = (ingress, dst, way)
            other = self.by_key.get(key)
            if other is not None:
                self.by_id[other].cubes.extend(cubes)
                target = self.by_id[other]
            elif not kept:
                kept = True
                self._move(cid, cls, key, way, cubes)
                target = cls
            else:
                target = self.by_id[self.add(ingress, dst, cubes, way)]
            changed.append((ingress, dst, target.delivers))
        if not kept:
            self._unindex(cid, cls)
        return changed

    def _move(self, cid: int, cls: Class, key: tuple, way: Way, cubes: list) -> None:
        """Class ``cid`` takes ``way``: its index entries are changed where they differ."""
        visits, groups, delivers, lost = way.summary()
        old = cls.visits
        head, tail = _common_ends(old, visits)
        index = self.visits
        for visit in old[head:len(old) - tail]:
            self._unvisit(index, cid, visit)
        for visit in visits[head:len(visits) - tail]:
            won = index[visit[1], visit[2]][visit[3]]
            won[cid] = won.get(cid, ()) + (visit,)
        if groups != cls.groups:
            for g in cls.groups - groups:
                self.group_users[g].discard(cid)
            for g in groups - cls.groups:
                self.group_users[g].add(cid)
        ingress = cls.ingress
        if delivers != cls.delivers:
            for d in cls.delivers - delivers:
                self.delivering[(ingress, d)].discard(cid)
            for d in delivers - cls.delivers:
                self.delivering[(ingress, d)].add(cid)
        findings = self._findings(ingress, cls.dst, way.events) if lost else []
        if findings or cls.findings:
            self._unhold(cid, [f for f in cls.findings if f not in findings])
            self._hold(cid, findings, cubes[0])
        cls.events, cls.cubes, cls.visits, cls.groups = way.events, cubes, visits, groups
        cls.findings, cls.delivers, cls.lost, cls.key = findings, delivers, lost, key
        self.by_key[key] = cid

    def _findings(self, ingress: str, dst: str | None, events: tuple) -> list[Finding]:
        """A way's loops and black holes, one of each."""
        return list(dict.fromkeys(class_findings(ingress, dst, self.host_dps[ingress], events)))

    def _unindex(self, cid: int, cls: Class) -> None:
        """Take class ``cid`` out of every index but ``by_key``."""
        del self.by_id[cid]
        self.by_ingress[cls.ingress].discard(cid)
        self.by_pair[(cls.ingress, cls.dst)].discard(cid)
        index = self.visits
        for visit in cls.visits:
            self._unvisit(index, cid, visit)
        for g in cls.groups:
            self.group_users[g].discard(cid)
        for dst in cls.delivers:
            self.delivering[(cls.ingress, dst)].discard(cid)
        self._unhold(cid, cls.findings)

    def _index(self, cid: int, visits: tuple) -> None:
        index = self.visits
        for visit in visits:
            won = index[visit[1], visit[2]][visit[3]]
            won[cid] = won.get(cid, ()) + (visit,)

    @staticmethod
    def _unvisit(index: dict, cid: int, visit: tuple) -> None:
        users = index[visit[1], visit[2]]
        won = users.get(visit[3])
        if won is None:
            return
        where = won.get(cid)
        if where is None:
            return
        if len(where) > 1:
            i = where.index(visit)
            won[cid] = where[:i] + where[i + 1:]
            return
        del won[cid]
        if not won:
            del users[visit[3]]

    def _hold(self, cid: int, findings: list, cube) -> None:
        """Class ``cid`` shows ``findings`` (``cube``: its example, when reported)."""
        for finding in findings:
            holders = self.findings.get(finding)
            if holders is None:
                holders = self.findings[finding] = {}
                if self.journal is not None:
                    self.journal.setdefault(finding, False)
            holders[cid] = cube

    def _unhold(self, cid: int, findings: list) -> None:
        for finding in findings:
            holders = self.findings[finding]
            holders.pop(cid, None)
            if not holders:
                del self.findings[finding]
                if self.journal is not None:
                    self.journal.setdefault(finding, True)
