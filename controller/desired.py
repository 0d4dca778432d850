"""What a switch should hold — flows, groups and meters — and the messages that get it there.

Providers (apps: ``controller.appbase.App``) tell the core what they want on each
switch as a ``Desired``; the core merges that with its built-in flows (pipeline,
flooding) and forwarding's entries into ``Entries``, keyed the way a switch identifies
them: flows by (table, priority, match), groups and meters by id. ``merge`` refuses
what would break a switch or another owner: entries outside the provider's cookie or
id range, flows in a table another owner owns, flows in a shared table outside the
provider's priority band whose match overlaps another owner's flow there (naming
both owners), keys another owner already holds, flows that send to a group or meter
nobody declared, chains of groups that loop.

``plan`` diffs wanted against installed entries. Its messages come in phases, so a
flow never points at a group or meter that is missing, and nothing that still works
is torn down before its replacement exists:

    0 meter adds and modifies
    1 group adds and modifies   (a chained group after the group it sends to)
    2 flow adds                 (new keys)
    3 flow changes              (OFPFC_ADD replacing a flow with the same key)
    4 flow deletes
    5 group deletes             (a chaining group before the group it sends to)
    6 meter deletes

A changed group or meter is modified in place, never deleted and re-added (a switch
deletes the flows that use a group or meter when it goes). Barriers separate phases
where a switch reordering messages would break a reference. The core runs each
phase on every switch before the next; and since switches work through their
messages independently, it sends a change in three steps, each once every switch
has confirmed the one before (``Plan.hold_breaks``, ``after_makes``): additions
(meters, groups, new flows), then flow changes, then deletions. So network-wide, new
paths carry traffic before old ones go: a changed flow is what turns traffic onto a
new path (the ingress of a reroute) and must not land before the new path's flows
further along, and the old path's flows must not go before it has.

``read_dump`` turns what a (re)connected switch reports into installed ``Entries``.
Flows, groups and meters we cannot read stay in it as foreign entries: the plan
replaces them where we want the key and deletes them everywhere else. Flows with a
``learned`` cookie are the exception: the switch made them itself (NX learn, e.g. a
pinned connection), so they are left out of the entries — never kept as ours, never
deleted as stale — and live until their own timeouts. ``merge`` makes sure every
learn action a provider asks for gives its flows such a cookie.
"""

from __future__ import annotations

import importlib
import struct
from dataclasses import dataclass, field
from typing import Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flows, groups, meters
from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec
from controller.pipeline import PIPELINE

DUMP_KINDS = ("flows", "groups", "meters")
N_PHASES = 7
(METER_MAKE, GROUP_MAKE, FLOW_ADD, FLOW_CHANGE, FLOW_DELETE, GROUP_DELETE, METER_DELETE) = range(N_PHASES)


class ProviderError(ValueError):
    """A provider cannot be registered or loaded; the message says why."""


@dataclass(frozen=True)
class Desired:
    """What one provider wants on one switch: flows, groups and meters, and the ports
    it wants held administratively down (``OFPPC_PORT_DOWN``: ``controller.ports``)."""

    flows: tuple[FlowSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    meters: tuple[MeterSpec, ...] = ()
    ports_down: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("flows", "groups", "meters"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        ports = tuple(self.ports_down)
        for port in ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= ofp.OFPP_MAX:
                raise ValueError(f"ports_down: {port!r} is not a port number (1..{ofp.OFPP_MAX:#x})")
        object.__setattr__(self, "ports_down", tuple(sorted(set(ports))))


class _Unreadable:
    """A dumped group or meter we cannot read: equal to no spec, so it is replaced or deleted."""

    def __repr__(self) -> str:
        return "<unreadable>"


UNREADABLE = _Unreadable()


@dataclass
class Entries:
    """A switch's flows, groups and meters, keyed as the switch identifies them."""

    flows: dict[tuple, FlowSpec] = field(default_factory=dict)
    groups: dict[int, GroupSpec | _Unreadable] = field(default_factory=dict)
    meters: dict[int, MeterSpec | _Unreadable] = field(default_factory=dict)
    foreign_flows: list = field(default_factory=list)   # OFPFlowStats we cannot read

    def copy(self) -> "Entries":
        """A copy whose tables can change without changing these (the entries are immutable)."""
        return Entries(dict(self.flows), dict(self.groups), dict(self.meters), list(self.foreign_flows))

    def owned_by(self, owner: str) -> Desired:
        """The entries in owner's ranges (what to keep when its provider fails)."""
        return Desired(
            tuple(s for s in self.flows.values() if cookies.owner_of(s.cookie) == owner),
            tuple(g for g in self.groups.values()
                  if isinstance(g, GroupSpec) and cookies.id_owner(g.group_id) == owner),
            tuple(m for m in self.meters.values()
                  if isinstance(m, MeterSpec) and cookies.id_owner(m.meter_id) == owner))


# ---- merging what providers want -----------------------------------------------------------

def merge(builtin: Iterable[FlowSpec], provided: Iterable[tuple[str, Desired]]) -> tuple[Entries, list[str]]:
    """Built-in flows plus every provider's entries; returns (entries, problems).

    Entries that would break the switch or another owner are left out, each with a
    problem that names the provider and the entry."""
    want = Entries(flows={s.key: s for s in builtin})
    problems: list[str] = []
    from_providers: list[tuple] = []
    out_of_band: list[tuple[str, FlowSpec]] = []
    for name, desired in provided:
        if not isinstance(desired, Desired):
            problems.append(f"provider {name}: desired() returned {type(desired).__name__}, not Desired")
            continue
        from_providers += _merge_one(name, desired, want, problems, out_of_band)
    _drop_overlaps(want, out_of_band, problems)
    _drop_dangling(want, from_providers, problems)
    return want, problems


def _merge_ids(name: str, kind: str, entries, cls, id_of, table: dict, problems: list[str]) -> None:
    """Add a provider's meters or groups to ``table`` (by id), refusing what is not its own."""
    for entry in entries:
        if not isinstance(entry, cls):
            problems.append(f"provider {name}: {entry!r} is not a {cls.__name__}")
        elif cookies.id_owner(id_of(entry)) != name:
            problems.append(f"provider {name}: {kind} {id_of(entry):#x} is outside its id range")
        elif not _same(table.setdefault(id_of(entry), entry), entry):
            problems.append(f"provider {name}: {kind} {id_of(entry):#x} declared twice, differently")


def _merge_one(name: str, desired: Desired, want: Entries, problems: list[str],
               out_of_band: list[tuple[str, FlowSpec]]) -> list[tuple]:
    """Add one provider's entries to want; return the keys of the flows it added. Its
    flows in a shared table outside its band go to ``out_of_band`` for the overlap check."""
    keys = []
    _merge_ids(name, "meter", desired.meters, MeterSpec, lambda m: m.meter_id, want.meters, problems)
    _merge_ids(name, "group", desired.groups, GroupSpec, lambda g: g.group_id, want.groups, problems)
    for spec in desired.flows:
        if not isinstance(spec, FlowSpec):
            problems.append(f"provider {name}: {spec!r} is not a FlowSpec")
        elif cookies.owner_of(spec.cookie) != name:
            problems.append(f"provider {name}: flow {spec.describe()} has cookie {spec.cookie:#x} "
                            f"outside its range")
        elif spec.learns and not all(cookies.is_learned(pin.cookie) for pin in spec.learns):
            problems.append(f"provider {name}: flow {spec.describe()} learns flows with a cookie outside "
                            f"the {cookies.LEARNED!r} range: switches create those flows and only that "
                            f"range is left alone on reconnect")
        elif (where := _table_problem(name, spec)) is not None:
            problems.append(f"provider {name}: flow {spec.describe()} {where}")
        elif not _same(held := want.flows.setdefault(spec.key, spec), spec):
            problems.append(f"provider {name}: flow {spec.describe()} takes the key of {held.describe()}")
        else:
            keys.append(spec.key)
            table = PIPELINE.table(spec.table)
            if table.shared:
                band = PIPELINE.band(table.name, name)
                if band is None or spec.priority not in band:
                    out_of_band.append((name, spec))
    return keys


def _table_problem(name: str, spec: FlowSpec) -> str | None:
    """Why ``name`` may not put ``spec`` in its table, or None."""
    table = PIPELINE.table(spec.table)
    if table.shared or table.owner == name:
        return None
    return f"is in table {table.name!r}, which is {table.owner}'s"


def _drop_overlaps(want: Entries, out_of_band: list[tuple[str, FlowSpec]], problems: list[str]) -> None:
    """A provider's flow outside its band in a shared table stays only while its match
    overlaps no other owner's flow there (a table's priority-0 miss aside: it is there
    to be overridden); else both owners are named."""
    if not out_of_band:
        return
    by_table: dict[str, list[FlowSpec]] = {}
    for spec in want.flows.values():
        by_table.setdefault(spec.table, []).append(spec)
    for name, spec in out_of_band:
        band = PIPELINE.band(spec.table, name)
        for other in by_table.get(spec.table, ()):
            owner = cookies.owner_of(other.cookie)
            if owner == name or (other.priority == 0 and not other.match) or not flows.overlap(spec, other):
                continue
            where = f"its band {band.low}..{band.high}" if band else "the bands it registered (none there)"
            problems.append(f"provider {name}: flow {spec.describe()} is outside {where} in shared table "
                            f"{spec.table!r} and overlaps {owner or 'an unowned flow'}'s {other.describe()}")
            want.flows.pop(spec.key, None)
            break


def _same(a, b) -> bool:
    """Equal entries. An unchanged entry is usually the very object already held
    (providers reuse what they built), which spares comparing it field by field."""
    return a is b or a == b


def _drop_dangling(want: Entries, flow_keys: list[tuple], problems: list[str]) -> None:
    # A group is kept once every group it chains to is kept: groups in a loop, or
    # chaining to an undeclared group, never are.
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for gid, group in want.groups.items():
            if gid not in kept and group.groups <= kept:
                kept.add(gid)
                changed = True
    for gid in sorted(set(want.groups) - kept):
        problems.append(f"group {gid:#x} chains to a missing group or loops: "
                        f"{want.groups.pop(gid).describe()}")
    for key in flow_keys:       # built-in flows use only groups the core declares itself
        spec = want.flows.get(key)
        if spec is None:
            continue
        missing = sorted(spec.groups - kept) if spec.groups else ()
        if spec.meter is not None and spec.meter not in want.meters:
            problems.append(f"flow {spec.describe()} uses meter {spec.meter:#x}, which nobody declared")
            del want.flows[key]
        elif missing:
            problems.append(f"flow {spec.describe()} sends to group(s) "
                            f"{', '.join(f'{g:#x}' for g in missing)}, which nobody declared")
            del want.flows[key]


# ---- reading what a switch holds ------------------------------------------------------------

def read_dump(flow_stats: Iterable, group_stats: Iterable, meter_stats: Iterable) -> Entries:
    have = Entries()
    for stats in flow_stats:
        if cookies.is_learned(stats.cookie):
            continue        # the switch's own (NX learn): not ours to keep or delete
        try:
            spec = flows.from_stats(stats)
        except flows.ForeignFlow:
            have.foreign_flows.append(stats)
            continue
        have.flows[spec.key] = spec
    for stats in group_stats:
        try:
            have.groups[stats.group_id] = groups.from_stats(stats)
        except groups.ForeignGroup:
            have.groups[stats.group_id] = UNREADABLE
    for stats in meter_stats:
        try:
            have.meters[stats.meter_id] = meters.from_stats(stats)
        except meters.ForeignMeter:
            have.meters[stats.meter_id] = UNREADABLE
    return have


def dump_requests() -> list:
    return [flows.flow_stats_request(), groups.desc_request(), meters.config_request()]


_MULTIPART_KINDS = {ofp.OFPMP_FLOW: "flows", ofp.OFPMP_GROUP_DESC: "groups",
                    ofp.OFPMP_METER_CONFIG: "meters"}


def failed_dump_kind(request: bytes) -> str | None:
    """Which dump a switch refused, from the request an OpenFlow error echoes back
    (a switch without meters refuses the meter dump); None if it was no dump."""
    if len(request) < 10 or request[1] != ofp.OFPT_MULTIPART_REQUEST:
        return None
    (mp_type,) = struct.unpack_from("!H", request, 8)
    return _MULTIPART_KINDS.get(mp_type)


# ---- the diff ---------------------------------------------------------------------------------

@dataclass
class Plan:
    """Messages for one switch, by phase (see the module docstring)."""

    phases: list[list] = field(default_factory=lambda: [[] for _ in range(N_PHASES)])
    counts: dict[str, int] = field(default_factory=dict)

    def messages(self) -> list:
        return [msg for phase in self.phases for msg in phase]

    @property
    def makes(self) -> bool:
        """Anything new: meters and groups added or modified, flows added (phases 0-2)."""
        return any(self.phases[:FLOW_CHANGE])

    def hold_breaks(self, first: int = FLOW_CHANGE) -> bool:
        """Leave out phases ``first`` .. 6 (flow changes and deletions, or deletions
        alone), to be planned again later; True if there were any. The switch then
        holds ``after_makes(want, have, changed=first > FLOW_CHANGE)``."""
        held = any(self.phases[first:])
        if first <= FLOW_CHANGE:
            changes = sum(1 for m in self.phases[FLOW_CHANGE] if not isinstance(m, parser.OFPBarrierRequest))
            if changes:
                self.counts["flow_adds"] -= changes
                if not self.counts["flow_adds"]:
                    del self.counts["flow_adds"]
        for phase in range(first, N_PHASES):
            self.phases[phase] = []
        for name in ("flow_deletes", "group_deletes", "meter_deletes"):
            self.counts.pop(name, None)
        return held


def after_makes(want: Entries, have: Entries, changed: bool = False) -> Entries:
    """What a switch holds once a plan's additions (and, ``changed``, its flow changes)
    are in and before the rest: the meters and groups wanted, the new (and changed)
    flows wanted, and whatever else it had as it was."""
    def kept(wanted: dict, had: dict) -> dict:
        return {**{k: v for k, v in had.items() if k not in wanted}, **wanted}
    flows_ = kept(want.flows, have.flows) if changed else \
        {**have.flows, **{k: v for k, v in want.flows.items() if k not in have.flows}}
    return Entries(flows_, kept(want.groups, have.groups),
                   kept(want.meters, have.meters),
                   [s for s in have.foreign_flows if flows.stats_key(s) not in want.flows])


def _count(plan: Plan, name: str, n: int = 1) -> None:
    if n:
        plan.counts[name] = plan.counts.get(name, 0) + n


def _levels(changed: dict[int, GroupSpec]) -> list[list[int]]:
    """Changed groups by chain depth: a group comes after the changed groups it sends to."""
    depth: dict[int, int] = {}

    def level(gid: int, seen: frozenset[int] = frozenset()) -> int:
        if gid not in depth:
            refs = [r for r in changed[gid].groups if r in changed and r not in seen]
            depth[gid] = 1 + max((level(r, seen | {gid}) for r in refs), default=-1)
        return depth[gid]

    for gid in changed:
        level(gid)
    out: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for gid in sorted(depth):
        out[depth[gid]].append(gid)
    return out


def plan(want: Entries, have: Entries) -> Plan:
    result = Plan()
    phases = result.phases
    if want.meters or have.meters:
        _plan_meters(want, have, result)
    if want.groups or have.groups:
        _plan_groups(want, have, result)
    for key, spec in want.flows.items():
        had = have.flows.get(key)
        if had is None:
            phases[FLOW_ADD].append(flows.to_flowmod(spec))
        elif not _same(had, spec):
            phases[FLOW_CHANGE].append(flows.to_flowmod(spec))
    for stats in have.foreign_flows:
        if flows.stats_key(stats) not in want.flows:     # else the add above replaced it
            phases[FLOW_DELETE].append(flows.delete_stats(stats))
    for key, spec in have.flows.items():
        if key not in want.flows:
            phases[FLOW_DELETE].append(flows.to_delete(spec))
    _count(result, "flow_adds", len(phases[FLOW_ADD]) + len(phases[FLOW_CHANGE]))
    _count(result, "flow_deletes", len(phases[FLOW_DELETE]))
    # A switch may reorder messages between barriers: flows must not arrive before
    # their groups and meters, nor groups and meters leave before the flows that
    # stopped using them have been replaced.
    first_flows = FLOW_ADD if phases[FLOW_ADD] else FLOW_CHANGE if phases[FLOW_CHANGE] else None
    if first_flows is not None and (phases[METER_MAKE] or phases[GROUP_MAKE]):
        phases[first_flows].insert(0, flows.barrier())
    if first_flows is not None and (phases[GROUP_DELETE] or phases[METER_DELETE]):
        first = GROUP_DELETE if phases[GROUP_DELETE] else METER_DELETE
        phases[first].insert(0, flows.barrier())
    return result


def _plan_meters(want: Entries, have: Entries, result: Plan) -> None:
    for mid, spec in sorted(want.meters.items()):
        if mid not in have.meters:
            result.phases[METER_MAKE].append(meters.to_add(spec))
            _count(result, "meter_adds")
        elif not _same(have.meters[mid], spec):
            result.phases[METER_MAKE].append(meters.to_modify(spec))
            _count(result, "meter_modifies")
    gone = sorted(mid for mid in have.meters if mid not in want.meters)
    result.phases[METER_DELETE] += [meters.to_delete(mid) for mid in gone]
    _count(result, "meter_deletes", len(gone))


def _plan_groups(want: Entries, have: Entries, result: Plan) -> None:
    changed = {gid: spec for gid, spec in want.groups.items() if not _same(have.groups.get(gid), spec)}
    for i, level in enumerate(_levels(changed)):
        if i:
            result.phases[GROUP_MAKE].append(flows.barrier())
        for gid in level:
            if gid in have.groups:
                result.phases[GROUP_MAKE].append(groups.to_modify(changed[gid]))
                _count(result, "group_modifies")
            else:
                result.phases[GROUP_MAKE].append(groups.to_add(changed[gid]))
                _count(result, "group_adds")
    doomed = {gid: g for gid, g in have.groups.items() if gid not in want.groups}
    readable = {gid: g for gid, g in doomed.items() if isinstance(g, GroupSpec)}
    order = [gid for level in reversed(_levels(readable)) for gid in level]
    order += sorted(set(doomed) - set(readable))
    result.phases[GROUP_DELETE] += [groups.to_delete(gid) for gid in order]
    _count(result, "group_deletes", len(order))


def load_factory(path: str):
    """Import ``package.module:factory``; ProviderError names what is missing."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ProviderError(f"provider {path!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ProviderError(f"provider {path!r}: cannot import {module_name}: {err}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ProviderError(f"provider {path!r}: {module_name} has no callable {attr!r}")
    return factory
