"""The symbolic walk of a cube of packets through the verifier's switches.

``Walker.from_host`` follows a cube of packets
that a host sends through the tables, groups and links the way
``tests/lib/fakeswitch.py`` and ``fakeoftable.py`` follow one frame, and answers with
the cube split into *classes*: ``(cube, events)`` pairs where every packet of a cube
takes the same way and meets the same end. ``events`` is that way, in order:

    ("v", dp, table, flow key | None, in_port, regs, overlay)   a table visit and the flow that won
    ("g", dp, group id) / ("nogroup", dp, group id)            a group run / sent to but missing
    ("hop", dp, port, n)             out on a link; the next n events are the walk from its other end
    ("host", name) ("out", dp, port, name)                     delivered to a host / out of the network
    ("ctl", dp, in_port)                                       to the controller
    ("drop", dp, in_port, kind)      no copy left the switch ('miss': no flow or a priority-0
                                     catch-all; 'flow': a flow that drops on purpose)
    ("noport", dp, port) ("dead", dp, port)                    out of a port with nothing behind it / down
    ("loop", dp, port, path)                                   entered a port it had entered before

Set-fields do not change the cube (it stays the set of packets *as sent*): the walk
carries an *overlay*, field -> the atom of the written value, and a flow's match is
checked against the overlay for the fields written so far. A select group's buckets
are all followed (which one the hash picks is not modelled: any may), an all group's
too, a fast-failover group's first live one.

Walks are cached (``WalkCache``): one switch's tables, and the whole walk from a switch
port on, each keyed by the fields of the cube it read; a change to a switch makes every
cached walk that entered it stale for the cubes that may meet the changed flow
(``Walker.changed``).

``Walker.rewalk`` walks a class's cubes again after one switch changed: only the
sub-walks of its way that entered that switch are walked again (found through the
hops' lengths) and spliced into the old way, whose other events cannot have changed.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from itertools import compress
from dataclasses import dataclass
from typing import Any

from apps.provisioning.headerspace import Cube, HeaderSpace, Pred, VerifyError, meet, minus
from apps.provisioning.switches import ETH_DST, VLAN, Rule, Switch, Table, is_reg, single_atom

VLAN_BIT, ETH_DST_BIT = 1 << VLAN, 1 << ETH_DST
_KIND, _WHERE, _EVENTS = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(1)
OFPVID_PRESENT = 0x1000
MAX_DEPTH = 8               # groups and resubmits nested deeper than this: as fakeswitch, refused


@dataclass(frozen=True)
class State:
    """What a walk carries inside one switch besides the cube."""
    in_port: int
    regs: tuple = ()            # sorted (register, value)
    over: tuple = ()            # sorted (field index, atom mask): fields set so far

    def with_reg(self, name: str, value: int) -> "State":
        regs = dict(self.regs)
        regs[name] = value
        return State(self.in_port, tuple(sorted(regs.items())), self.over)

    def with_field(self, index: int, mask: int) -> "State":
        over = dict(self.over)
        over[index] = mask
        return State(self.in_port, self.regs, tuple(sorted(over.items())))


def _getter(read: int) -> Any:
    """A function picking the fields of ``read`` (a bit per field index) out of a cube."""
    idx = tuple(i for i in range(read.bit_length()) if read >> i & 1)
    if not idx:
        return lambda cube: ()
    return operator.itemgetter(*idx)


def _narrowing(walked: Cube, pieces: tuple) -> tuple:
    """Each piece of the walk of ``walked`` as the fields it narrowed: ``((index, mask),
    ...)``, empty when the piece is the whole cube (the flood tables narrow nothing)."""
    out = []
    for piece in pieces:
        c = piece[0]
        if c is walked or c == walked:
            out.append(())
        else:
            out.append(tuple((i, v) for i, (v, w) in enumerate(zip(c, walked)) if v != w))
    return tuple(out)


def _narrowed(cube: Cube, narrowing: tuple) -> Cube:
    """``cube`` with the fields of ``narrowing`` set (a piece of a cached walk, for
    ``cube``, which differs from the cube walked only in fields the walk never read,
    so never narrowed: they are taken from ``cube``)."""
    if not narrowing:
        return cube
    out = list(cube)
    for i, v in narrowing:
        out[i] = v
    return tuple(out)


# A change a cached walk may not have seen (``WalkCache.changed``): a flow, as (its match on
# the fields no flow or group writes | None, its table, the rule, its match as atom masks); a
# group, as its id; or None (anything: a switch loaded).
Change = tuple | int | None


def _contexts(event_lists: Any) -> tuple[dict, frozenset]:
    """Where a walk looked flows and groups up: ``(dp, table) -> [(in_port, regs, overlay
    as a dict)]`` for its table visits, and the ``(dp, group id)`` it ran or missed (picked
    out in C, as ``classes.Way`` does: a flooded walk has hundreds of events)."""
    seen: set = set()
    groups: set = set()
    for events in event_lists:
        kinds = list(map(_KIND, events))
        seen.update(map(_CONTEXT, compress(events, map(_IS_VISIT, kinds))))
        if "g" in kinds or "nogroup" in kinds:
            groups.update(map(_GROUP, compress(events, map(_IS_GROUP, kinds))))
    visits: dict[tuple, list] = {}
    for dp, table, in_port, regs, over in seen:
        visits.setdefault((dp, table), []).append((in_port, regs, dict(over)))
    return visits, frozenset(groups)


_CONTEXT, _GROUP = operator.itemgetter(1, 2, 4, 5, 6), operator.itemgetter(1, 2)
_IS_VISIT, _IS_GROUP = frozenset({"v"}).__contains__, frozenset({"g", "nogroup"}).__contains__


class WalkCache:
    """Walks already made, keyed by the fields of the cube they read.

    A walk reads only some fields of its cube (those of the flows it tried, the
    destination MAC and VLAN it looked flows up by) and narrows no other field, so any
    cube that agrees with it on those fields takes the same way, split the same way:
    frames flooded from different hosts differ in their source addresses, which the
    flood tables never read, so one walk of a spanning-tree branch serves all of them.
    Entries are ``where -> read fields -> those fields' atoms -> [cube walked, result, ...]``,
    with each piece of the result also kept as the fields it narrowed, so a hit for
    another cube is that cube with those fields set (most flooded pieces: the cube itself).

    Two levels: ``switch`` holds one switch's tables walked from the first; ``tree`` holds
    the whole walk from entering a switch port on, valid for a path that enters none of
    the ports it entered (else that path would make a loop of it). A walk that made a
    loop names its path, so it is not kept. An entry made before a change to a switch it
    entered (``changed_at``, checked when it is looked up, as dropping them all at each
    change cost a millisecond per update) is still good for the cube looked up if no
    frame of it can meet any flow changed since where the walk looked that flow's table
    up (``log``: each change; an entry's look-ups, its table visits with the in_port,
    registers and values written there, and its groups, are gathered from its events
    when it is first checked). A frame meets a flow there unless the in_port, a register,
    a written value or, for a field not written, the cube's value is apart from the
    flow's match; a group change is met by the walks that ran or missed that group, a
    switch loaded by every walk through it. If a field of the cube the walk never read
    told it, the walk is good for this cube only and that field counts as read, so the
    walks around it are keyed on it too; else it is good for every cube it serves and is
    stamped anew, checked once per change. Atoms splitting (``version``) clears both
    levels; so does holding more than ``limit`` entries, or a sub-walk older than the
    changes kept per switch (``LOG``).
    """

    LIMIT = 200_000

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit          # 0: keep nothing (every walk is made afresh)
        self.clear(0)

    def clear(self, version: int) -> None:
        self.version = version
        self.switch: dict[int, dict[tuple, dict]] = {}
        self.tree: dict[tuple, dict] = {}
        self.clock = 0                                  # counts changes
        self.changed_at: dict[int, int] = defaultdict(int)     # dp -> the count when it last changed
        # dp -> its last changes: (count, Change); dp -> the count of the last change forgotten
        self.log: dict[int, list[tuple[int, Change]]] = defaultdict(list)
        self.forgotten: dict[int, int] = defaultdict(int)
        self.size = 0
        self.hits = self.misses = 0

    LOG = 32            # changes kept per switch; a sub-walk older than them is walked again

    def changed(self, dp: int, change: Change = None) -> None:
        """Switch ``dp``'s flows or groups changed: forget a walk of its tables, or of a
        sub-tree that entered it, when it is next looked up, by its stamp, unless no frame
        of the cube looked up can meet ``change`` where the walk looked its table up."""
        self.clock += 1
        self.changed_at[dp] = self.clock
        log = self.log[dp]
        log.append((self.clock, change))
        if len(log) > self.LOG:
            self.forgotten[dp] = log.pop(0)[0]

    def _unmet(self, dps: tuple, stamp: int, cube: Cube, read: int, entry: list) -> int | None:
        """Whether every change since ``stamp`` to switches ``dps`` is one no frame of ``cube``
        meets in the walk ``entry`` (its last item: the walk's look-ups, once gathered): None
        if one may be met, else the fields (a bit each) beyond ``read`` it took to tell (the
        sub-walk now reads them: a cube that differs there may meet it)."""
        extra = 0
        changed_at, forgotten, log = self.changed_at, self.forgotten, self.log
        lookups = None
        for dp in dps:
            if changed_at[dp] <= stamp:
                continue
            if forgotten[dp] > stamp:
                return None
            for when, change in reversed(log[dp]):
                if when <= stamp:
                    break
                if change is None:
                    return None
                if type(change) is not int:
                    unwritten, table, rule, pred = change
                    if unwritten is not None:       # told by the values as sent alone, at a glance
                        apart = None
                        for i, m in unwritten:
                            if not cube[i] & m:
                                if read >> i & 1:
                                    apart = 0
                                    break
                                apart = 1 << i
                        if apart is not None:
                            extra |= apart
                            continue
                if lookups is None:
                    lookups = entry[-1]
                    if lookups is None:
                        lookups = entry[-1] = _contexts(map(_EVENTS, entry[1]))
                if type(change) is int:
                    if (dp, change) in lookups[1]:
                        return None
                    continue
                for in_port, regs, over in lookups[0].get((dp, table), ()):
                    if rule.in_port is not None and rule.in_port != in_port \
                            or rule.regs and not rule.regs_ok(regs):
                        continue
                    apart = None
                    for i, m in pred:
                        written = over.get(i)
                        if written is not None:
                            if not written & m:
                                apart = 0
                                break
                        elif not cube[i] & m:
                            if read >> i & 1:
                                apart = 0
                                break
                            apart = 1 << i
                    if apart is None:
                        return None
                    extra |= apart
        return extra

    def switch_get(self, where: tuple, cube: Cube, fresh: bool = False) -> tuple[list, int] | None:
        """A walk of one switch's tables (``fresh``: only if made or checked since the last change)."""
        shelf = self.switch.get(where[0], {}).get(where[1:])
        if shelf:
            for read, (get, held) in shelf.items():
                key = get(cube)
                got = held.get(key)
                if got is not None:
                    c0, out, narrowing, stamp, _ = got
                    if fresh and stamp < self.clock:
                        break
                    if stamp < self.changed_at[where[0]]:       # the switch changed since
                        extra = self._unmet((where[0],), stamp, cube, read, got)
                        if extra is None:
                            del held[key]
                            self.misses += 1
                            return None
                        if extra:
                            read |= extra
                        else:
                            got[3] = self.clock
                    self.hits += 1
                    if c0 != cube:
                        out = [(_narrowed(cube, n) if n else cube, ev, em, st)
                               for n, (_, ev, em, st) in zip(narrowing, out)]
                    return out, read
        self.misses += 1
        return None

    def switch_put(self, where: tuple, cube: Cube, read: int, out: list) -> None:
        shelf = self.switch.setdefault(where[0], {}).setdefault(where[1:], {})
        out = tuple(out)        # kept as tuples: the collector stops tracking them (Way.summary)
        self._keep(shelf, read, cube, [cube, out, _narrowing(cube, out), self.clock, None])

    def tree_get(self, where: tuple, cube: Cube, path: tuple,
                 fresh: bool = False) -> tuple[list, int, frozenset] | None:
        """A walk from entering a switch port on (``fresh``: only if made or checked since the
        last change)."""
        shelf = self.tree.get(where)
        if shelf:
            for read, (get, held) in shelf.items():
                key = get(cube)
                got = held.get(key)
                if got is not None:
                    c0, out, narrowing, entered, dps, stamp, _ = got
                    if stamp < self.clock:          # something changed since it was made
                        if fresh:
                            break
                        extra = self._unmet(dps, stamp, cube, read, got)
                        if extra is None:
                            del held[key]
                            self.misses += 1
                            return None
                        if extra:
                            read |= extra           # good for this cube, told by fields it never read
                        else:
                            got[5] = self.clock     # good for every cube it serves: not checked again
                    if not entered.isdisjoint(path):
                        return None
                    self.hits += 1
                    if c0 != cube:
                        out = [(_narrowed(cube, n) if n else cube, ev) for n, (_, ev) in zip(narrowing, out)]
                    return out, read, entered
        self.misses += 1
        return None

    def tree_put(self, where: tuple, cube: Cube, read: int, entered: frozenset, out: list) -> None:
        dps = tuple({dp for dp, _ in entered})
        out = tuple(out)
        self._keep(self.tree.setdefault(where, {}), read, cube,
                   [cube, out, _narrowing(cube, out), entered, dps, self.clock, None])

    def _keep(self, shelf: dict, read: int, cube: Cube, value: list) -> Any:
        if self.size >= self.limit:
            self.clear(self.version)
            return None
        slot = shelf.get(read)
        if slot is None:
            slot = shelf[read] = (_getter(read), {})
        key = slot[0](cube)
        slot[1][key] = value
        self.size += 1
        return key


Piece = tuple[Cube, tuple, tuple, State]    # (cube, events, emitted copies (port, overlay), state after)


class Walker:
    """Follows cubes through the switches of a verifier (see the module docstring)."""

    def __init__(self, space: HeaderSpace, switches: dict[int, Switch], first_table: str, topology: Any):
        self.space = space
        self.switches = switches
        self.first_table = first_table
        self.topology = topology
        self.version = 0            # bumped when atoms split: rules rebuild their predicates
        self.cache = WalkCache()
        self._read = 0              # fields of the cube read so far (a bit per field index)
        self._entered: set = set()  # (dp, in_port) entered so far
        self._loopy = False         # a loop event was made (it names the path: not cacheable)
        # ways spliced by this update and the last one at the same switch: id -> (way, dp, spans)
        self._spliced: dict[int, tuple] = {}
        self._spliced_before: dict[int, tuple] = {}
        self._spliced_dp: int | None = None

    def changed(self, dp: int) -> None:
        """Switch ``dp`` changed as a whole (every cached walk through it is forgotten)."""
        self.cache.changed(dp, None)

    def flow_changed(self, dp: int, rule: Rule, unwritten: Pred | None) -> None:
        """A flow of switch ``dp`` came or went: cached walks through it are forgotten, but for
        the cubes no frame of which meets it where they looked its table up (``WalkCache``;
        ``unwritten``: its match on the fields no flow or group writes, None if none)."""
        self.cache.changed(dp, (unwritten, rule.spec.table, rule, self.pred(rule)))

    def group_changed(self, dp: int, group_id: int) -> None:
        """A group of switch ``dp`` came, changed or went: the walks that ran or missed it are forgotten."""
        self.cache.changed(dp, group_id)

    def value_mask(self, index: int, key: int) -> int:
        return self.space.fields[index].mask(key, key)

    def pred(self, rule: Rule) -> Pred:
        """The rule's match as atom masks (rebuilt when atoms have split)."""
        if rule.version != self.version:
            rule.pred = self.space.pred(rule.intervals)
            rule.keys = (single_atom(rule.pred, ETH_DST), single_atom(rule.pred, VLAN))
            rule.version = self.version
        return rule.pred

    def keys(self, rule: Rule) -> tuple:
        if rule.version != self.version:
            self.pred(rule)
        return rule.keys

    def _pred(self, rule: Rule, over: tuple) -> Pred | None:
        """The rule's match on the packets as sent, given what was written (None: no packet)."""
        if rule.version != self.version:
            self.pred(rule)
        if not over:
            return rule.pred
        written = dict(over)
        out = []
        for i, m in rule.pred:
            if i in written:
                if not written[i] & m:
                    return None
            else:
                out.append((i, m))
        return tuple(out)

    # -- across switches --

    def from_host(self, dp: int, port: int, cube: Cube) -> list[tuple[Cube, tuple]]:
        if self.cache.version != self.version:
            self.cache.clear(self.version)
        self._read, self._entered, self._loopy = 0, set(), False
        return self._switch(dp, port, cube, (), ())

    def rewalk(self, dp: int, host_dp: int, host_port: int, cubes: list[Cube],
               events: tuple, table: str | None = None) -> list[tuple[Cube, tuple]]:
        """``cubes``, which took the way ``events`` from their host, walked again after
        switch ``dp`` changed (a flow of its ``table``, if given): each sub-walk of
        ``events`` that entered ``dp`` is walked again and put in its place. The rest of
        the way is what it was: a packet's way outside those sub-walks is made by the
        other switches, from the packet alone (a sub-walk hands nothing back but its events
        and how it split the cube). A sub-walk that splits a cube splits the class: each
        piece takes the old way with its own events in place.

        A sub-walk that came to ``table`` by gotos alone (its flows before it sent no copy
        and ran no group) is walked again from ``table`` on, after its old visits before
        it: those tables did not change, and their flows left the frames only the state
        the visit of ``table`` records (in_port, registers, values written). The cubes
        are the classes' own, which their earlier visits' flows took whole. Either way,
        cached walks into ``dp`` made before this change are not looked at: a class was
        walked again because it meets the change there."""
        if self.cache.version != self.version:
            self.cache.clear(self.version)
        known = self._spliced_before.get(id(events))
        if known is not None and known[0] is events and known[1] == dp:
            spans = known[2]
        else:
            spans = self._spans(dp, host_dp, host_port, events)
        pieces = [(cube, events) for cube in cubes]
        # (old events, sub-walk) by id -> (both, kept alive so the ids stay theirs, new events)
        spliced: dict[tuple[int, int], tuple] = {}
        sw = self.switches.get(dp)
        mid_ok = sw is not None and table is not None and table != self.first_table
        for start, stop, in_port, over, path, hops in reversed(spans):    # from the last: starts stay put
            nxt = []
            mids: dict[int, int | None] = {}
            for c, ev in pieces:
                mid = mids.get(id(ev), -1)
                if mid == -1:
                    mid = mids[id(ev)] = self._by_gotos(sw, ev, start, table) if mid_ok else None
                self._read, self._entered, self._loopy = 0, set(), False
                if mid is None:
                    walked = self._switch(dp, in_port, c, over, path, fresh=True)
                else:
                    e = ev[mid]
                    walked = self._switch(dp, in_port, c, e[6], path, (table, e[5]), fresh=True)
                for sc, sev in walked:
                    key = (id(ev), id(sev))
                    got = spliced.get(key)
                    if got is None:
                        at = start if mid is None else mid      # the visits before ``mid`` stay
                        new = self._splice(ev, at, stop, sev, hops)
                        got = spliced[key] = (ev, sev, new)
                        if len(spans) == 1:         # where the new way entered dp, for the next update
                            self._spliced[id(new)] = (new, dp, ((start, at + len(sev), *spans[0][2:]),))
                    nxt.append((sc, got[2]))
            pieces = nxt
        return pieces

    def _by_gotos(self, sw: Switch, events: tuple, first: int, table: str) -> int | None:
        """Where the sub-walk into ``sw`` starting at ``events[first]`` visits ``table``, if
        it came there from the first table by gotos alone (every flow before it sent no
        copy, ran no group and resubmitted nowhere; set-fields are recorded in the visit);
        else None."""
        e = events[first]
        if e[0] != "v" or e[2] != self.first_table:
            return None
        i = first
        while e[2] != table:
            rule = None if e[3] is None else sw.rule(e[3])     # tables before ``table``: unchanged
            if rule is None or rule.spec.goto is None or not rule.local:
                return None
            i += 1
            e = events[i]
            if e[0] != "v" or e[2] != rule.spec.goto:
                return None
        return i

    def begin(self, dp: int) -> None:
        """An update of switch ``dp`` begins: the ways the last update at ``dp`` spliced
        are kept with where they entered ``dp`` (a change is mostly several flows of one
        switch, and they touch the same classes), older ones are forgotten."""
        if dp != self._spliced_dp:
            self._spliced.clear()
        self._spliced_dp = dp
        self._spliced_before, self._spliced = self._spliced, {}

    @staticmethod
    def _splice(events: tuple, start: int, stop: int, sub: tuple, hops: tuple) -> tuple:
        """``events`` with ``sub`` in place of ``events[start:stop]``; the hops into it
        and into the sub-walks around it (at ``hops``) say how long they now are."""
        delta = len(sub) - (stop - start)
        if not delta:
            return events[:start] + sub + events[stop:]
        head = list(events[:start])
        for h in hops:
            e = head[h]
            head[h] = (e[0], e[1], e[2], e[3] + delta)
        return (*head, *sub, *events[stop:])

    def _spans(self, dp: int, host_dp: int, host_port: int, events: tuple) -> list[tuple]:
        """The outermost sub-walks of a way from a host that entered switch ``dp``: (start,
        stop, in_port, overlay, path, positions of the hops into it and into the sub-walks
        around it). Each starts with the first event after it that names ``dp`` (every
        event but a host's names its switch first, and a switch's events come after its
        entry); a hop event carries the length of the sub-walk after it, so the hops
        around a start are found by stepping over the sub-walks that end before it."""
        if host_dp == dp:
            return [(0, len(events), host_port, (), (), ())]
        kinds = list(map(_KIND, events))
        where = list(map(_WHERE, events))
        end = self.topology.end
        out = []
        at = 0
        while True:
            try:
                first = where.index(dp, at)
            except ValueError:
                return out
            hops = []
            pos = 0
            while True:
                try:
                    h = kinds.index("hop", pos, first)
                except ValueError:
                    break
                past = h + 1 + events[h][3]
                if past <= first:
                    pos = past              # a sub-walk that ends before it
                else:
                    hops.append(h)
                    pos = h + 1
            path = [(host_dp, host_port)]
            for h in hops[:-1]:
                path.append(end(events[h][1], events[h][2])[1:])
            in_port = end(events[hops[-1]][1], events[hops[-1]][2])[2]
            e = events[first]
            over = e[6] if e[0] == "v" else ()
            stop = first + events[hops[-1]][3]
            out.append((first, stop, in_port, over, tuple(path), tuple(hops)))
            at = stop

    def _switch(self, dp: int, in_port: int, cube: Cube, over: tuple, path: tuple,
                start: tuple[str, tuple] | None = None, fresh: bool = False) -> list[tuple[Cube, tuple]]:
        """The classes of ``cube`` entering ``dp`` at ``in_port`` (having written ``over``),
        from the cache of sub-walks when one holds it for this path. ``start``: (table,
        registers) to begin the switch's pipeline at that table, reached by gotos (``over``
        as written there); the events of the tables before it are the caller's. ``fresh``:
        take only cached walks made or checked since the last change (older ones are known
        to meet it)."""
        if (dp, in_port) in path:
            self._loopy = True
            return [(cube, (("loop", dp, in_port, path + ((dp, in_port),)),))]
        cache = self.cache
        where = (dp, in_port, over) if start is None else (dp, in_port, over, *start)
        hit = cache.tree_get(where, cube, path, fresh)
        if hit is not None:
            out, read, entered = hit
            self._read |= read
            self._entered |= entered
            return out
        outer = (self._read, self._entered, self._loopy)
        self._read, self._entered, self._loopy = 0, {(dp, in_port)}, False
        out = self._switch_walk(dp, in_port, cube, over, path + ((dp, in_port),), start, fresh)
        read, entered, loopy = self._read, self._entered, self._loopy
        if not loopy:
            cache.tree_put(where, cube, read, frozenset(entered), out)
        self._read = outer[0] | read
        outer[1].update(entered)
        self._entered = outer[1]
        self._loopy = outer[2] or loopy
        return out

    def _switch_walk(self, dp: int, in_port: int, cube: Cube, over: tuple, path: tuple,
                     start: tuple[str, tuple] | None = None, fresh: bool = False) -> list[tuple[Cube, tuple]]:
        sw = self.switches.get(dp)
        if sw is None:
            return [(cube, (("drop", dp, in_port, "miss"),))]
        out = []
        topo = self.topology
        if start is None:
            pieces = self._pipeline(sw, cube, State(in_port, (), over), fresh)
        else:
            pieces = self._table(sw, start[0], cube, State(in_port, start[1], over), 0)
        for c, ev, emits, _ in pieces:
            if not emits:
                ev = ev + (("drop", dp, in_port, self._drop_kind(sw, ev)),)
            partial = [(c, ev)]
            for port, eover in emits:
                if port == "controller":
                    partial = [(pc, pev + (("ctl", dp, in_port),)) for pc, pev in partial]
                    continue
                end = topo.end(dp, port)
                if end[0] == "link":
                    peer_dp, peer_port = end[1], end[2]
                    nxt = []
                    for pc, pev in partial:
                        after = self._switch(peer_dp, peer_port, pc, eover, path)
                        nxt.extend((sc, pev + (("hop", dp, port, len(sev)),) + sev) for sc, sev in after)
                    partial = nxt
                else:
                    partial = [(pc, pev + (end,)) for pc, pev in partial]
            out.extend(partial)
        return out

    def _pipeline(self, sw: Switch, cube: Cube, st: State, fresh: bool = False) -> list[Piece]:
        """One switch's tables from the first, from the per-switch cache when it holds them."""
        cache = self.cache
        where = (sw.dp_id, st.in_port, st.over)
        hit = cache.switch_get(where, cube, fresh)
        if hit is not None:
            out, read = hit
            self._read |= read
            return out
        outer = self._read
        self._read = 0
        out = self._table(sw, self.first_table, cube, st, 0)
        read = self._read
        cache.switch_put(where, cube, read, out)
        self._read = outer | read
        return out

    @staticmethod
    def _drop_kind(sw: Switch, events: tuple) -> str:
        for event in reversed(events):
            if event[0] == "v" and event[1] == sw.dp_id:
                return "miss" if event[3] is None or event[3][1] == 0 else "flow"
        return "miss"

    # -- inside one switch --

    def _lookup(self, table: Table, cube: Cube, st: State) -> list[tuple[Cube, Rule | None]]:
        """``cube`` split among the flows that win it in ``table`` (None: nothing matches)."""
        keys = table.index(st.in_port, self).dsts
        written = dict(st.over) if st.over else {}
        if VLAN in written:
            vlan = written[VLAN]
        else:
            vlan = cube[VLAN]
            self._read |= VLAN_BIT
        if vlan & (vlan - 1):
            vlan = None
        pieces: list[tuple[Cube, Rule | None]] = []
        if ETH_DST in written:
            dst = written[ETH_DST]
            self._split(cube, table.candidates(st.in_port, dst if dst & keys else 0, vlan, self), st, pieces)
            return pieces
        self._read |= ETH_DST_BIT
        dst = cube[ETH_DST]
        hit = dst & keys
        while hit:
            atom = hit & -hit
            hit ^= atom
            part = cube[:ETH_DST] + (atom,) + cube[ETH_DST + 1:]
            self._split(part, table.candidates(st.in_port, atom, vlan, self), st, pieces)
        if dst & ~keys:
            part = cube[:ETH_DST] + (dst & ~keys,) + cube[ETH_DST + 1:]
            self._split(part, table.candidates(st.in_port, 0, vlan, self), st, pieces)
        return pieces

    def _split(self, cube: Cube, rules: list[Rule], st: State, pieces: list) -> None:
        todo = [cube]
        read = 0
        for rule in rules:
            if rule.regs and not rule.regs_ok(st.regs):
                continue
            pred = self._pred(rule, st.over)
            if pred is None:
                continue
            for i, _ in pred:
                read |= 1 << i
            rest = []
            for c in todo:
                inside = meet(c, pred)
                if inside is None:
                    rest.append(c)
                else:
                    pieces.append((inside, rule))
                    rest.extend(minus(c, pred))
            todo = rest
            if not todo:
                break
        else:
            pieces.extend((c, None) for c in todo)
        self._read |= read

    def _table(self, sw: Switch, name: str, cube: Cube, st: State, depth: int) -> list[Piece]:
        table = sw.tables.get(name) or Table()
        out: list[Piece] = []
        for piece, rule in self._lookup(table, cube, st):
            visit = (("v", sw.dp_id, name, None if rule is None else rule.key, st.in_port, st.regs, st.over),)
            if rule is None:
                out.append((piece, visit, (), st))
                continue
            for c, ev, em, st2 in self._actions(sw, rule.spec.actions, 0, piece, st, depth):
                if rule.spec.goto is None:
                    out.append((c, visit + ev, em, st2))
                    continue
                for c3, ev3, em3, st3 in self._table(sw, rule.spec.goto, c, st2, depth):
                    out.append((c3, visit + ev + ev3, em + em3, st3))
        return out

    def _actions(self, sw: Switch, actions: tuple, start: int, cube: Cube, st: State,
                 depth: int) -> list[Piece]:
        events: list = []
        emits: list = []
        for i in range(start, len(actions)):
            action = actions[i]
            kind = action[0]
            if kind == "output":
                if action[1] != st.in_port:         # OpenFlow never sends a frame back where it came from
                    emits.append((action[1], st.over))
            elif kind == "in_port":
                emits.append((st.in_port, st.over))
            elif kind == "controller":
                emits.append(("controller", st.over))
            elif kind == "set_field":
                name, value = action[1], action[2]
                if is_reg(name):
                    st = st.with_reg(name, value)
                else:
                    idx, lo, _ = self.space.interval(name, value)
                    st = st.with_field(idx, self.value_mask(idx, lo))
            elif kind == "push_vlan":
                st = st.with_field(VLAN, self.value_mask(VLAN, OFPVID_PRESENT))
            elif kind == "pop_vlan":
                st = st.with_field(VLAN, self.value_mask(VLAN, 0))
            elif kind in ("group", "resubmit"):
                if depth >= MAX_DEPTH:
                    raise VerifyError(f"s{sw.dp_id}: groups or resubmits nested deeper than {MAX_DEPTH}")
                if kind == "group":
                    after = self._group(sw, action[1], cube, st, depth + 1)
                else:
                    after = self._table(sw, action[1], cube, st, depth + 1)
                head, sent = tuple(events), tuple(emits)
                out: list[Piece] = []
                for c, ev, em, st2 in after:
                    for c2, ev2, em2, st3 in self._actions(sw, actions, i + 1, c, st2, depth):
                        out.append((c2, head + ev + ev2, sent + em + em2, st3))
                return out
            # learn: the flows it makes are not modelled; the packet goes on unchanged
        return [(cube, tuple(events), tuple(emits), st)]

    def _group(self, sw: Switch, group_id: int, cube: Cube, st: State, depth: int) -> list[Piece]:
        """A group's copies; the state after is the one before (buckets work on copies)."""
        group = sw.groups.get(group_id)
        if group is None:
            return [(cube, (("nogroup", sw.dp_id, group_id),), (), st)]
        if group.type == "ff":
            live = [b for b in group.buckets if self.topology.live(sw.dp_id, b.watch_port)]
            buckets = live[:1]
        elif group.type == "select":
            buckets = [b for b in group.buckets if b.weight > 0]
        else:
            buckets = list(group.buckets)
        done = [(cube, (("g", sw.dp_id, group_id),), ())]
        for bucket in buckets:
            nxt = []
            for c, ev, em in done:
                for c2, ev2, em2, _ in self._actions(sw, bucket.actions, 0, c, st, depth):
                    nxt.append((c2, ev + ev2, em + em2))
            done = nxt
        return [(c, ev, em, st) for c, ev, em in done]
