"""An incremental, in-memory verifier of the data plane the controller would install.

Given the topology (links between switch ports, the hosts on switch ports) and, per
switch, the flows, groups and meters the controller would install, the verifier
finds

    loop          a frame comes back to a switch port it already entered
    black-hole    a frame to a known host's MAC is lost on the way: no flow or only a
                  table's catch-all takes it, it is sent to the controller past its first
                  switch, or (any frame) it goes to a port with nothing behind it, a
                  port that is down, or a group that does not exist
    reach         a host pair of the policy that must reach, does not (both ways)
    isolation     a host reaches a host of another isolated set
    missing-group / missing-meter   a flow (or group bucket) names an id the switch lacks

Each finding names the check, the switch(es), the table and flow (priority and match)
where it shows, and an example header: concrete field values of a frame, as its host
sends it, that shows it.

**The model** (``apps.provisioning.headerspace``, ``apps.provisioning.switches``,
``apps.provisioning.walk``). Header fields are cut into per-field atoms at the
boundaries of the values and prefixes in use (Delta-net); a set of packets is a cube
of atom masks. Hosts send frames with their own eth_src and ipv4_src, untagged; every
other field is left free. A host's cube is walked through the tables: each table splits
it among the flows that win its parts, so the walk ends with *classes* -- a cube and the
whole way its packets take (every table visit and winning flow, group, link, and where
each copy ends). Two cubes of a host with the same way are one class (APKeep's merge of
atoms that behave alike). Checks read classes (their wording: ``apps.provisioning.findings``):
loops and black holes from each class's ends, reach and isolation from the classes of
the pair's source. The inputs (topology, policy, updates) are ``apps.provisioning.inputs``;
the classes and their indexes ``apps.provisioning.classes``.

**What is incremental** (``apply``). One update -- a flow added, replaced or deleted, a
group or meter added, changed or deleted -- touches only the classes whose way it can
change, found through an index of table visits: deleting or replacing a flow, the
classes that flow won; adding one, the classes that visited its table, were won there
by a flow of lower or equal priority, and overlap its match; a group change, the
classes that ran (or missed) that group; a meter change, none (meters only limit
rates); the same flow or group again, none. New values split atoms in place (stored
cubes are fixed bit by bit, nothing is re-walked for it). Only the touched classes are
walked again, and only from where they entered the changed switch
(``walk.Walker.rewalk``): a class's way is the same as before outside its sub-walks
into that switch (the other switches make it, from the packet alone), so those
sub-walks are walked again and spliced into the old way (a hop event carries the
length of the sub-walk after it, so they are found without walking from the host);
a sub-walk that splits the cube splits the class. A sub-walk that came to the
changed table by gotos alone is walked again from that table, after its old visits
before it. The sub-walks are taken from the
walk cache (``walk.WalkCache``) when it holds them, keyed by the cube fields they
read, so the classes flooded by different hosts share each spanning-tree branch; a
cached walk through a switch that changed since is still good for a cube no frame of
which can meet the changed flow where the walk looked that flow's table up (the
in_port, registers and written values of its visits there, the cube's values for
the fields not written), so one change does not make every walk through its switch
be walked again. Values a flow or group writes are atoms of their own (one value
each): a written value recorded in a stored visit never needs fixing. A class walked
again keeps its id for one of its new ways (``Classes.rewalked``): only the index entries that
differ are changed -- the table visits it lost and gained where it entered the changed
switch (its old and new visits share their start and end), its groups, hosts reached
and findings -- rather than the class being dropped and added again with its hundred
visits (a flooded class's). Only the findings that depend on the touched classes are
recomputed: their own loops and black holes, the
reach of the policy pairs they are sent to, the isolation of the pairs they deliver
to, and the references of the changed entry. ``load`` on a verifier that has not been
checked yet is a plain load; on one that has, it is a full rebuild.

**What it does not model**: flows that learn actions make (switches make them, the
controller never installs them; the learn itself is a no-op for the packet), which
bucket a select group's hash picks (every bucket with weight is followed: reach needs
all of them to reach, a loop or black hole in any is reported), packets hosts send
tagged or with another host's source addresses, meters' rates (only that they exist),
traffic entering from outside the network, table-miss behaviour beyond the flows
given (a table without a catch-all drops), and masks that are not prefixes in the
field's bit order (refused). Port liveness is fixed by the topology (``down``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Iterable

from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec
from controller.pipeline import PIPELINE, Pipeline, PipelineError
from apps.provisioning.classes import Class, Classes
from apps.provisioning.findings import Finding, References, Report, isolation_finding, reach_finding
from apps.provisioning.headerspace import INDEX, HeaderSpace, VerifyError
from apps.provisioning.inputs import Host, Policy, Topology, Update, add, delete
from apps.provisioning.switches import Rule, Switch, is_reg, make_rule
from apps.provisioning.walk import OFPVID_PRESENT, Walker

__all__ = ["Finding", "Host", "Policy", "Report", "Topology", "Update", "Verifier", "VerifyError", "add",
           "delete"]


class Verifier:
    """Every switch's tables in memory, their classes, and the findings (module docstring)."""

    def __init__(self, topology: Topology, pipeline: Pipeline = PIPELINE, policy: Policy | None = None):
        self.topology = topology
        self.pipeline = pipeline
        self.policy = policy or Policy()
        self.space = HeaderSpace()
        self.switches: dict[int, Switch] = {dp: Switch(dp) for dp in sorted(topology.dp_ids)}
        first = min(pipeline.tables, key=lambda t: t.table_id).name
        self.walker = Walker(self.space, self.switches, first, topology)
        self._inject: dict[str, list] = {}
        # values some flow or group ever wrote (VLAN: pushed and popped too), as intervals and,
        # for the atoms of the version noted, as a mask per field; never shrinks
        vlan = INDEX["vlan_vid"]
        self._written: set[tuple] = {(vlan, 0, 0), (vlan, OFPVID_PRESENT, OFPVID_PRESENT)}
        self._written_masks: tuple[int, dict[int, int]] = (-1, {})
        self._host_atoms()
        self._built = False
        self._refs = References()
        self._policy_findings: dict[tuple, Finding] = {}

    def _host_intervals(self, host: Host) -> list:
        space = self.space
        return [space.interval("eth_src", host.mac), space.interval("ipv4_src", host.ip),
                space.interval("vlan_vid", 0)]

    def _host_atoms(self) -> None:
        """Hosts' own addresses are atoms (as sources and as destinations), so a probe
        (frames to a host) and a host's MAC as the only destination are exact."""
        space = self.space
        for host in self.topology.hosts.values():
            self._inject[host.name] = self._host_intervals(host)
            space.add(self._inject[host.name] + [space.interval("eth_dst", host.mac),
                                                 space.interval("ipv4_dst", host.ip)])
        vlan = INDEX["vlan_vid"]
        space.add([(vlan, 0, 0), (vlan, OFPVID_PRESENT, OFPVID_PRESENT), space.interval("eth_type", 0x0800)])
        dst_names = {}
        for host in self.topology.hosts.values():
            i, lo, hi = space.interval("eth_dst", host.mac)
            dst_names[space.fields[i].mask(lo, hi)] = host.name
        self._classes = Classes(dst_names, {h.name: h.dp_id for h in self.topology.hosts.values()})
        self.classes = self._classes.by_id

    # -- input --

    def load(self, dp_id: int, flows: Iterable[FlowSpec] = (), groups: Iterable[GroupSpec] = (),
             meters: Iterable[MeterSpec] = ()) -> None:
        """Replace switch ``dp_id``'s flows, groups and meters (all checked before any is taken)."""
        sw = self._switch(dp_id)
        rules = [self._rule(dp_id, spec) for spec in flows]
        groups = [self._check_group(dp_id, g) for g in groups]
        meters = [self._check_meter(dp_id, m) for m in meters]
        for table in sw.tables.values():
            for rule in table.rules.values():
                self.space.remove(rule.intervals + rule.sets)
        for group in sw.groups.values():
            self.space.remove(self._group_sets(dp_id, group))
        sw.tables.clear()
        for rule in rules:
            self._fix(self.space.add(rule.intervals + rule.sets))
            table = sw.table(rule.spec.table)
            old = table.rules.get(rule.key)
            if old is not None:
                self.space.remove(old.intervals + old.sets)
            table.add(rule, self.walker)
        for group in groups:
            self._fix(self.space.add(self._group_sets(dp_id, group)))
        sw.groups = {g.group_id: g for g in groups}
        sw.meters = {m.meter_id: m for m in meters}
        self.walker.changed(dp_id)
        self._built = False

    def apply(self, update: Update) -> Report:
        """Take one update; the findings it adds and removes. Refused (VerifyError) before any
        change if the update is malformed or names an unknown switch."""
        started = time.perf_counter()
        self._ensure()
        sw = self._switch(update.dp_id)
        if update.op not in ("add", "delete"):
            raise VerifyError(f"update op {update.op!r}: 'add' or 'delete'")
        entry = update.entry
        # Every finding that appears or goes while the update is taken is noted once, with
        # whether it was there before: the report costs what the change touched.
        journal: dict[Finding, bool] = {}
        self._classes.journal = self._refs.journal = journal
        try:
            if isinstance(entry, FlowSpec):
                touched = self._apply_flow(sw, update.op, entry)
            elif isinstance(entry, GroupSpec):
                touched = self._apply_group(sw, update.op, entry)
            elif isinstance(entry, MeterSpec):
                touched = self._apply_meter(sw, update.op, entry)
            else:
                raise VerifyError(f"update of {type(entry).__name__}: a FlowSpec, GroupSpec or MeterSpec")
            rewalked = self._rewalk(touched, sw.dp_id, entry.table if isinstance(entry, FlowSpec) else None)
        finally:
            self._classes.journal = self._refs.journal = None
        added, removed = [], []
        for finding, was in journal.items():
            now = self._holds(finding)
            if now and not was:
                added.append(finding)
            elif was and not now:
                removed.append(finding)
        return Report(sorted(self._with_example(added), key=str), sorted(removed, key=str),
                      time.perf_counter() - started, rewalked)

    def _holds(self, finding: Finding) -> bool:
        """Whether ``finding`` is among the findings now."""
        if finding.check in ("reach", "isolation"):
            return (finding.check, *finding.ident) in self._policy_findings
        if finding.check in ("missing-group", "missing-meter"):
            return finding in self._refs.found.values()
        return finding in self._classes.findings

    def check_all(self, policy: Policy | None = None) -> Report:
        """Every finding now, under ``policy`` (kept for later updates; default: the current one)."""
        started = time.perf_counter()
        if policy is not None:
            policy.check(self.topology.hosts)
            self.policy = policy
        self._ensure()
        self._policy_findings.clear()
        for a, b in self.policy.pairs():
            self._check_pair(a, b)
        return Report(self.findings(), [], time.perf_counter() - started, 0)

    def findings(self) -> list[Finding]:
        self._ensure()
        return sorted(self._with_example(self.findings_set()), key=str)

    def findings_set(self) -> set[Finding]:
        """The findings (without examples), for comparing verdicts."""
        self._ensure()
        return {*self._classes.findings, *self._refs.found.values(), *self._policy_findings.values()}

    def reaches(self, src: str, dst: str) -> bool:
        """Whether every frame ``src`` sends to ``dst`` (its MAC and IPv4 address) is delivered."""
        self._ensure()
        return self._pair_problem(src, dst) is None

    def outcome(self, host: str, headers: dict[str, Any]) -> dict[str, Any]:
        """Where one concrete frame ``host`` sends goes (the walk of the atoms holding its
        values): delivered hosts, switches that send it to the controller or drop it, and
        whether it loops. Fields not given are zero, as on a switch; in_port is the host's."""
        self._ensure()
        if host not in self.topology.hosts:
            raise VerifyError(f"host {host!r} is not in the topology")
        cube = list(self.space.full())
        for name, value in headers.items():
            if name == "in_port":
                continue
            i, lo, _ = self.space.interval(name, value)
            cube[i] = self.space.fields[i].mask(lo, lo)
        for i, spec in enumerate(self.space.fields):
            if spec.spec.name not in headers:
                cube[i] = spec.mask(0, 0)
        ((_, events),) = self._walk(host, tuple(cube))
        return {"delivered": sorted(e[1] for e in events if e[0] == "host"),
                "controller": sorted({e[1] for e in events if e[0] == "ctl"}),
                "dropped": sorted({e[1] for e in events if e[0] in ("drop", "noport", "dead", "nogroup")}),
                "loop": any(e[0] == "loop" for e in events),
                "switches": sorted({e[1] for e in events if e[0] == "v"})}

    # -- checking input --

    def _switch(self, dp_id: int) -> Switch:
        sw = self.switches.get(dp_id)
        if sw is None:
            raise VerifyError(f"switch {dp_id} is not in the topology "
                              f"(switches: {sorted(self.switches)})")
        return sw

    def _rule(self, dp_id: int, spec: FlowSpec) -> Rule:
        if not isinstance(spec, FlowSpec):
            raise VerifyError(f"s{dp_id}: {spec!r} is not a FlowSpec")
        what = f"s{dp_id}: flow {spec.table}/{spec.priority} {dict(spec.match)}"
        try:
            self.pipeline.check(spec.table, {k for k, _ in spec.match}, spec.goto)
            for action in spec.actions:
                if action[0] == "resubmit":
                    self.pipeline.resubmit_target(action[1])
            if not 0 <= spec.priority <= 0xFFFF:
                raise VerifyError(f"priority {spec.priority} outside 0..65535")
            rule = make_rule(self.space, spec)
            self._written.update(rule.sets)
            return rule
        except (PipelineError, VerifyError) as err:
            raise VerifyError(f"{what}: {err}") from None

    def _check_group(self, dp_id: int, group: GroupSpec) -> GroupSpec:
        if not isinstance(group, GroupSpec):
            raise VerifyError(f"s{dp_id}: {group!r} is not a GroupSpec")
        self._group_sets(dp_id, group)
        return group

    def _group_sets(self, dp_id: int, group: GroupSpec) -> list:
        """The values the group's buckets set, as intervals. They are atom boundaries, as
        a flow's set-field values are: a walk records a written value as its atom, which
        must stay that one value (an atom holding more could split later, and classes
        would keep the old atom's id in their visits, apart from a flow added for the
        value)."""
        try:
            sets = [self.space.interval(a[1], a[2]) for b in group.buckets for a in b.actions
                    if a[0] == "set_field" and not is_reg(a[1])]
        except VerifyError as err:
            raise VerifyError(f"s{dp_id}: group {group.group_id:#x}: {err}") from None
        self._written.update(sets)
        return sets

    def _check_meter(self, dp_id: int, meter: MeterSpec) -> MeterSpec:
        if not isinstance(meter, MeterSpec):
            raise VerifyError(f"s{dp_id}: {meter!r} is not a MeterSpec")
        return meter

    # -- updates --

    def _apply_flow(self, sw: Switch, op: str, spec: FlowSpec) -> set[int]:
        dp = sw.dp_id
        if op == "delete":
            table = sw.tables.get(spec.table)
            old = None if table is None else table.rules.get(spec.key)
            if old is None:
                return set()
            touched = set(self._classes.visits[(dp, spec.table)].get(spec.key, ()))
            table.remove(old)
            self.walker.flow_changed(dp, old, self._unwritten(old))
            self.space.remove(old.intervals + old.sets)
            self._refs.flow_changed(sw, old.spec, None)
            return touched
        rule = self._rule(dp, spec)
        table = sw.table(spec.table)
        old = table.rules.get(spec.key)
        if old is not None and old.spec == spec:
            return set()                    # the same flow again: nothing changes
        self._fix(self.space.add(rule.intervals + rule.sets))
        if old is not None:
            touched = set(self._classes.visits[(dp, spec.table)].get(spec.key, ()))
            self.space.remove(old.intervals + old.sets)
        else:
            touched = self._overlapping(dp, rule)
        table.add(rule, self.walker)
        if old is not None:
            self.walker.flow_changed(dp, old, self._unwritten(old))
        self.walker.flow_changed(dp, rule, self._unwritten(rule))
        self._refs.flow_changed(sw, old.spec if old else None, spec)
        return touched

    def _unwritten(self, rule: Rule) -> tuple | None:
        """The flow's match on the fields where it takes no value any flow or group writes
        (a frame it takes has there the value its host sent), for the walk cache to tell
        the cubes the flow cannot take at a glance; None when that is no field."""
        version, masks = self._written_masks
        if version != self.walker.version:
            masks = {}
            for i, lo, hi in self._written:
                masks[i] = masks.get(i, 0) | self.space.fields[i].mask(lo, hi)
            self._written_masks = (self.walker.version, masks)
        match = tuple((i, m) for i, m in self.walker.pred(rule) if not masks.get(i, 0) & m)
        return match or None

    def _overlapping(self, dp: int, rule: Rule) -> set[int]:
        """Classes a new flow may take: they visit its table, were won there at no higher
        priority, and overlap its match where they visit."""
        touched = set()
        prio = rule.spec.priority
        table = self.switches[dp].tables.get(rule.spec.table)
        for key, cids in self._classes.visits[(dp, rule.spec.table)].items():
            if key is not None and key[1] > prio:
                continue
            # Every frame of a class won by a flow matches that flow: a new flow whose match
            # is apart from the winner's takes none of them (most paths' flows are apart).
            winner = None if key is None or table is None else table.rules.get(key)
            if winner is not None and self._apart(rule, winner):
                continue
            for cid, where in cids.items():
                if self._class_meets(self.classes[cid], rule, where):
                    touched.add(cid)
        return touched

    def _apart(self, rule: Rule, other: Rule) -> bool:
        """Whether no frame can match both flows (on in_port, a field or a register)."""
        if rule.in_port is not None and other.in_port is not None and rule.in_port != other.in_port:
            return True
        theirs = dict(self.walker.pred(other))
        for i, m in self.walker.pred(rule):
            if not theirs.get(i, m) & m:
                return True
        regs = {name: (value, mask) for name, value, mask in other.regs}
        for name, value, mask in rule.regs:
            if name in regs and (value ^ regs[name][0]) & mask & regs[name][1]:
                return True
        return False

    def _class_meets(self, cls: Class, rule: Rule, where: list) -> bool:
        pred = self.walker.pred(rule)
        for _, _, _, _, in_port, regs, over in where:
            if rule.in_port is not None and rule.in_port != in_port:
                continue
            if rule.regs and not rule.regs_ok(regs):
                continue
            written = dict(over)
            for cube in cls.cubes:
                if all((written[i] if i in written else cube[i]) & m for i, m in pred):
                    return True
        return False

    def _apply_group(self, sw: Switch, op: str, group: GroupSpec) -> set[int]:
        self._check_group(sw.dp_id, group)
        old = sw.groups.get(group.group_id)
        if op == "delete":
            if old is None:
                return set()
            del sw.groups[group.group_id]
        elif old == group:
            return set()                    # the same group again: nothing changes
        else:
            self._fix(self.space.add(self._group_sets(sw.dp_id, group)))
            sw.groups[group.group_id] = group
        if old is not None:
            self.space.remove(self._group_sets(sw.dp_id, old))
        self.walker.group_changed(sw.dp_id, group.group_id)
        self._refs.group_changed(sw, group.group_id)
        return set(self._classes.group_users.get((sw.dp_id, group.group_id), ()))

    def _apply_meter(self, sw: Switch, op: str, meter: MeterSpec) -> set[int]:
        self._check_meter(sw.dp_id, meter)
        if op == "delete":
            sw.meters.pop(meter.meter_id, None)
        else:
            sw.meters[meter.meter_id] = meter
        self._refs.meter_changed(sw, meter.meter_id)
        return set()

    def _fix(self, splits: list) -> None:
        """Atoms split: every stored cube takes the new atom where it had the old one."""
        if not splits:
            return
        self.walker.version += 1
        self._classes.fix(splits)

    # -- classes --

    def _ensure(self) -> None:
        if self._built:
            return
        self._built = True
        self._classes.clear()
        self._policy_findings.clear()
        self._refs = References()
        for sw in self.switches.values():
            self._refs.switch(sw)
        for name in sorted(self.topology.hosts):
            for cube, events in self._walk(name, self._host_cube(name)):
                self._classes.add_walked(name, cube, events)
        for a, b in self.policy.pairs():
            self._check_pair(a, b)

    def _host_cube(self, name: str):
        cube = list(self.space.full())
        for i, lo, hi in self._inject[name]:
            cube[i] = self.space.fields[i].mask(lo, hi)
        return tuple(cube)

    def _walk(self, name: str, cube) -> list:
        host = self.topology.hosts[name]
        return self.walker.from_host(host.dp_id, host.port_no, cube)

    def _rewalk(self, cids: set[int], dp: int, table: str | None = None) -> int:
        """Classes ``cids`` walked again after switch ``dp`` changed (a flow of ``table``, if
        given): from where they entered it, or where they came to ``table`` (``Walker.rewalk``)."""
        if not cids:
            return 0
        classes = self._classes
        hosts = self.topology.hosts
        self.walker.begin(dp)
        rewalk = self.walker.rewalk
        changed = []
        for cid in sorted(cids):
            cls = classes.by_id.get(cid)
            if cls is None:
                continue
            host = hosts[cls.ingress]
            walked = rewalk(dp, host.dp_id, host.port_no, cls.cubes, cls.events, table)
            changed += classes.rewalked(cid, walked)
        # A pair's reach verdict reads the classes sent to its destination's MAC, its
        # isolation verdict those delivering to it: only those of changed classes change.
        # (Frames flooded from a deliver everywhere: they are only isolation's concern.)
        must_reach, must_not = self.policy.must_reach, self.policy.must_not_reach
        reach, isolation = set(), set()
        for a, dst, delivers in changed:
            if (a, dst) in must_reach:
                reach.add((a, dst))
            if must_not and (dst is not None or not self.policy.flood_ok):
                isolation.update((a, b) for b in delivers if (a, b) in must_not)
        for a, b in sorted(reach):
            self._check_reach(a, b)
        for a, b in sorted(isolation):
            self._check_isolation(a, b)
        return len(cids)

    def _with_example(self, findings: Iterable[Finding]) -> list[Finding]:
        out = []
        for finding in findings:
            holders = self._classes.findings.get(finding)
            if holders:
                finding = replace(finding, example=self.space.example(holders[min(holders)]))
            else:
                for held in (*self._refs.found.values(), *self._policy_findings.values()):
                    if held == finding:
                        finding = held
                        break
            out.append(finding)
        return out

    # -- policy --

    def _probe(self, src: str, dst: str):
        """Frames ``src`` sends to ``dst``: its MAC, IPv4 and address, any protocol."""
        d = self.topology.hosts[dst]
        space = self.space
        return space.pred(sorted([space.interval("eth_dst", d.mac), space.interval("eth_type", 0x0800),
                                  space.interval("ipv4_dst", d.ip)]))

    def _pair_problem(self, src: str, dst: str) -> tuple[Class, Any] | None:
        pred = self._probe(src, dst)
        for cid in sorted(self._classes.by_pair.get((src, dst), ())):     # frames to dst's MAC: its classes
            cls = self.classes[cid]
            if dst in cls.delivers and not cls.lost:
                continue
            for cube in cls.cubes:
                if all(cube[i] & m for i, m in pred):
                    return cls, tuple(cube[j] & dict(pred).get(j, -1) for j in range(len(cube)))
        return None

    def _check_pair(self, a: str, b: str) -> None:
        self._check_reach(a, b)
        self._check_isolation(a, b)

    def _set_policy_finding(self, key: tuple, finding: Finding | None) -> None:
        old = self._policy_findings.pop(key, None)
        journal = self._classes.journal
        if journal is not None and old is not None:
            journal.setdefault(old, True)
        if finding is not None:
            if journal is not None:
                journal.setdefault(finding, False)
            self._policy_findings[key] = finding

    def _check_reach(self, a: str, b: str) -> None:
        finding = None
        if (a, b) in self.policy.must_reach:
            problem = self._pair_problem(a, b)
            if problem is not None:
                cls, cube = problem
                finding = reach_finding(a, b, cls.events, cls.delivers, self.space.example(cube))
        self._set_policy_finding(("reach", a, b), finding)

    def _check_isolation(self, a: str, b: str) -> None:
        finding = None
        if (a, b) in self.policy.must_not_reach:
            cids = sorted(self._classes.delivering.get((a, b), ()))
            if self.policy.flood_ok:
                cids = [cid for cid in cids if self.classes[cid].dst is not None]
            if cids:
                cls = self.classes[cids[0]]
                hosts = self.topology.hosts
                finding = isolation_finding(a, b, (hosts[a].dp_id, hosts[b].dp_id), cls.events,
                                            self.space.example(cls.cubes[0]))
        self._set_policy_finding(("isolation", a, b), finding)
