"""The verifier's model of a switch: its flows per table, groups and meters.

A ``Rule`` is a flow as the verifier holds it (symbolic fields as intervals of
``apps.provisioning.headerspace``, in_port and registers concrete); a ``Table`` keeps
its rules highest priority first, with an index by in_port and destination MAC atom
that the walk (``apps.provisioning.walk``) looks candidates up in; a ``Switch`` holds
its tables, groups and meters.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec
from apps.provisioning.headerspace import INDEX, HeaderSpace, Interval, Pred, VerifyError, bits_of

VLAN = INDEX["vlan_vid"]
ETH_DST = INDEX["eth_dst"]


def is_reg(name: str) -> bool:
    return name.startswith("reg")


@dataclass(eq=False)           # one rule is one object: lists find it by identity
class Rule:
    """A flow as the verifier holds it: symbolic fields as intervals, in_port and registers concrete."""
    spec: FlowSpec
    intervals: list[Interval]
    in_port: int | None
    regs: tuple[tuple[str, int, int], ...]        # (register, value, mask)
    sets: list[Interval]                          # set_field values (their atoms must be singletons)
    pred: Pred = ()
    version: int = -1
    order: tuple = ()                             # highest priority first, then a fixed tie-break
    keys: tuple = (None, None)                    # (eth_dst atom, vlan atom) when it names one
    local: bool = True                            # its actions send no copy, run no group, resubmit nowhere

    def __post_init__(self) -> None:
        self.order = (-self.spec.priority, repr(self.spec.key))
        self.local = not any(a[0] in _SENDS for a in self.spec.actions)

    @property
    def key(self) -> tuple:
        return self.spec.key

    def regs_ok(self, regs: tuple) -> bool:
        have = dict(regs)
        return all(have.get(name, 0) & mask == value & mask for name, value, mask in self.regs)


_SENDS = frozenset({"output", "in_port", "controller", "group", "resubmit"})


def make_rule(space: HeaderSpace, spec: FlowSpec) -> Rule:
    intervals, in_port, regs, sets = [], None, [], []
    for name, value in spec.match:
        if name == "in_port":
            if type(value) is not int:
                raise VerifyError(f"in_port={value!r}: not a port number")
            in_port = value
        elif is_reg(name):
            try:
                v, m = bits_of(name, value)
            except (ValueError, TypeError):
                raise VerifyError(f"{name}={value!r}: not a register value") from None
            regs.append((name, v, m & 0xFFFFFFFF))
        else:
            intervals.append(space.interval(name, value))
    for action in spec.actions:
        if action[0] == "set_field" and not is_reg(action[1]):
            sets.append(space.interval(action[1], action[2]))
    return Rule(spec, sorted(intervals), in_port, tuple(regs), sets)


def single_atom(pred: Pred, index: int) -> int | None:
    for i, m in pred:
        if i == index:
            return m if not m & (m - 1) else None
    return None


class Indexer(Protocol):
    """What a table's index needs of the walker: the atoms' version, a rule's key atoms."""
    version: int

    def keys(self, rule: Rule) -> tuple: ...


@dataclass
class _PortIndex:
    rules: list[Rule]
    dsts: int                                   # destination atoms some rule names alone
    lists: dict[tuple, list[Rule]]              # (dst atom | 0, vlan atom | None) -> candidates


def _order(rule: Rule) -> tuple:
    return rule.order


def _discard(rules: list[Rule], rule: Rule) -> bool:
    """Take ``rule`` out of a list in ``_order`` (found by bisection: orders are unique)."""
    pos = bisect.bisect_left(rules, rule.order, key=_order)
    if pos < len(rules) and rules[pos] is rule:
        del rules[pos]
        return True
    return False


@dataclass
class Table:
    """One table's rules, highest priority first, with an index for frames from one
    in_port: a frame whose destination MAC is one atom and whose VLAN is one atom can
    only match the rules naming that atom (or not one atom) in both fields. A rule
    added or removed is put into or taken out of the lists built so far, in order."""
    rules: dict[tuple, Rule] = field(default_factory=dict)
    _by_port: dict[int, _PortIndex] = field(default_factory=dict)
    _ordered: list[Rule] | None = None
    _version: int = -1

    def add(self, rule: Rule, walker: "Indexer") -> None:
        old = self.rules.get(rule.key)
        if old is not None:
            self.remove(old)
        self.rules[rule.key] = rule
        if self._version != walker.version:
            self._by_port.clear()
            self._ordered = None
            return
        if self._ordered is not None:
            bisect.insort(self._ordered, rule, key=_order)
        kd, kv = walker.keys(rule)
        for port, index in self._by_port.items():
            if rule.in_port is not None and rule.in_port != port:
                continue
            bisect.insort(index.rules, rule, key=_order)
            index.dsts |= kd or 0
            for (dst, vlan), rules in index.lists.items():
                if (kd is None or kd == dst) and (kv is None or vlan is None or kv == vlan):
                    bisect.insort(rules, rule, key=_order)
            if kd is not None and (kd, None) not in index.lists:
                # a destination keyed for the first time: its lists start from the rest
                for key in [k for k in index.lists if k[0] == kd]:
                    del index.lists[key]

    def remove(self, rule: Rule) -> None:
        del self.rules[rule.key]
        if self._ordered is not None:
            _discard(self._ordered, rule)
        for index in self._by_port.values():
            if _discard(index.rules, rule):
                for rules in index.lists.values():
                    _discard(rules, rule)

    def index(self, in_port: int, walker: "Indexer") -> _PortIndex:
        if self._version != walker.version:
            self._by_port.clear()
            self._ordered = None
            self._version = walker.version
        got = self._by_port.get(in_port)
        if got is None:
            if self._ordered is None:
                self._ordered = sorted(self.rules.values(), key=_order)
            rules = [r for r in self._ordered if r.in_port is None or r.in_port == in_port]
            dsts = 0
            for rule in rules:
                dsts |= walker.keys(rule)[0] or 0
            got = self._by_port[in_port] = _PortIndex(rules, dsts, {})
        return got

    def candidates(self, in_port: int, dst: int, vlan: int | None, walker: "Indexer") -> list[Rule]:
        """Rules that may match frames from ``in_port`` to destination atom ``dst`` (0: an atom
        no rule names alone) with VLAN atom ``vlan`` (None: more than one)."""
        index = self.index(in_port, walker)
        got = index.lists.get((dst, vlan))
        if got is None:
            got = []
            for rule in index.rules:
                kd, kv = walker.keys(rule)
                if (kd is None or kd == dst) and (kv is None or vlan is None or kv == vlan):
                    got.append(rule)
            index.lists[(dst, vlan)] = got
        return got


@dataclass
class Switch:
    dp_id: int
    tables: dict[str, Table] = field(default_factory=dict)
    groups: dict[int, GroupSpec] = field(default_factory=dict)
    meters: dict[int, MeterSpec] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        got = self.tables.get(name)
        if got is None:
            got = self.tables[name] = Table()
        return got

    def rule(self, key: tuple) -> Rule | None:
        table = self.tables.get(key[0])
        return None if table is None else table.rules.get(key)
