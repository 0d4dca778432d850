"""What the data-plane verifier finds, and how each finding is worded.

``Finding`` is one problem (its check, where it shows, an example frame), ``Report``
what an update or a full check added and removed. The functions here turn a class's
way (the events of ``apps.provisioning.walk``) into its loop and black-hole findings
and a policy pair's failing class into its reach or isolation finding; ``References``
keeps the findings that need no walk: flows and groups naming a group or meter their
switch lacks, recomputed per group or meter id when something naming it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

from controller.flows import FlowSpec
from apps.provisioning.switches import Switch

LOST = ("drop", "noport", "dead", "nogroup", "loop", "ctl")
_FOUND = frozenset({"noport", "dead", "nogroup", "loop"})         # ends that are a finding of any class
_FOUND_TO_HOST = _FOUND | {"drop", "ctl"}                        # and of a class sent to a host
_KIND = itemgetter(0)


@dataclass(frozen=True)
class Finding:
    """One problem. Two findings are the same problem when their check and ``ident`` are
    equal: by default where it shows; for reach and isolation, the host pair (the frame
    and the way that witness it may change while the problem stays)."""
    check: str                              # loop, black-hole, reach, isolation, missing-group, missing-meter
    switches: tuple[int, ...] = field(compare=False)
    table: str | None = field(compare=False)
    flow: str | None = field(compare=False)     # "priority P match ..." or None (no flow matched)
    detail: str = field(compare=False)
    example: dict | None = field(default=None, compare=False, hash=False)
    ident: tuple = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.ident:
            object.__setattr__(self, "ident", (self.switches, self.table, self.flow, self.detail))

    def __str__(self) -> str:
        where = ",".join(f"s{dp}" for dp in self.switches)
        if self.table:
            where += f" table {self.table}"
        where += f" flow {self.flow}" if self.flow else " (no flow)" if self.table else ""
        example = ""
        if self.example:
            example = "; e.g. " + " ".join(f"{k}={v:#x}" if k == "eth_type" else f"{k}={v}"
                                           for k, v in self.example.items())
        return f"{self.check}: {self.detail} [{where}]{example}"


@dataclass
class Report:
    added: list[Finding]
    removed: list[Finding]
    elapsed_s: float
    rewalked: int = 0                       # classes walked again

    def __str__(self) -> str:
        lines = [f"{len(self.added)} new, {len(self.removed)} gone, {self.rewalked} classes walked, "
                 f"{self.elapsed_s * 1e3:.2f} ms"]
        lines += [f"  + {f}" for f in self.added] + [f"  - {f}" for f in self.removed]
        return "\n".join(lines)


def describe_flow(key: tuple | None) -> str | None:
    if key is None:
        return None
    match = ",".join(f"{k}={v}" for k, v in key[2]) or "*"
    return f"priority {key[1]} match {match}"


def class_findings(ingress: str, dst: str | None, ingress_dp: int, events: tuple) -> list[Finding]:
    """Loops and black holes of one class: frames ``ingress`` (on switch ``ingress_dp``) sends
    to host ``dst`` (None: to no host) that take the way ``events`` (examples are added
    when reported)."""
    out = []
    last: tuple | None = None
    dst_host = dst if dst != ingress else None     # frames to oneself: nobody's loss
    if set(map(_KIND, events)).isdisjoint(_FOUND_TO_HOST if dst_host else _FOUND):
        return out      # the common case (a flooded way ends in drops and hosts), told in C
    for event in events:
        kind = event[0]
        if kind == "v":
            last = event
            continue
        if kind not in LOST or kind == "ctl" and (not dst_host or event[1] == ingress_dp) \
                or kind == "drop" and (not dst_host or event[3] != "miss"):
            continue        # most events are no finding: their flow is not worded
        table, flow = (last[2], describe_flow(last[3])) if last else (None, None)
        if kind == "loop":
            path = event[3]
            start = path.index((event[1], event[2]))
            hops = " -> ".join(f"s{dp}:{port}" for dp, port in path[start:])
            out.append(Finding("loop", tuple(dp for dp, _ in path[start:-1]), table, flow,
                               f"from {ingress}: {hops}"))
        elif kind in ("noport", "dead"):
            what = "nothing behind it" if kind == "noport" else "it is down"
            out.append(Finding("black-hole", (event[1],), table, flow,
                               f"from {ingress}: out of port {event[2]}, {what}"))
        elif kind == "nogroup":
            out.append(Finding("black-hole", (event[1],), table, flow,
                               f"from {ingress}: to group {event[2]:#x}, which does not exist"))
        elif dst_host and kind == "drop" and event[3] == "miss":
            out.append(Finding("black-hole", (event[1],), table, flow,
                               f"from {ingress} to {dst_host}: no flow takes it"))
        elif dst_host and kind == "ctl" and event[1] != ingress_dp:
            out.append(Finding("black-hole", (event[1],), table, flow,
                               f"from {ingress} to {dst_host}: sent to the controller past "
                               f"its first switch"))
    return out


def reach_finding(a: str, b: str, events: tuple, delivers: frozenset, example: dict) -> Finding:
    """``a`` does not reach ``b``: the frames of a class that takes the way ``events`` are lost."""
    last, end = None, "delivered elsewhere"
    for event in events:
        if event[0] == "v":
            last = event
        elif event[0] in LOST:
            end = describe_end(event)
            break
    else:
        if b not in delivers:
            end = f"delivered to {', '.join(sorted(delivers)) or 'no host'}"
    return Finding("reach", (last[1],) if last else (), last[2] if last else None,
                   describe_flow(last[3]) if last else None, f"{a} -> {b}: {end}",
                   example, ident=(a, b))

def isolation_finding(a: str, b: str, switches: tuple[int, int], events: tuple, example: dict) -> Finding:
    """``a`` reaches ``b`` (on ``switches``), isolated from it, by the way ``events``."""
    last, way = None, []
    for event in events:
        if event[0] == "v":
            last = event
            way.append(f"s{event[1]} {event[2]} {describe_flow(event[3]) or '(no flow)'}")
        elif event == ("host", b):
            break
    return Finding("isolation", switches,
                   last[2] if last else None, describe_flow(last[3]) if last else None,
                   f"{a} reaches {b}, which is isolated from it: {' -> '.join(way)}",
                   example, ident=(a, b))


class References:
    """Flows and groups naming a group or meter their switch lacks: ``found`` is keyed by
    (check, dp, missing id, the flow key or group id naming it)."""

    def __init__(self) -> None:
        self.found: dict[tuple, Finding] = {}
        self.journal: dict[Finding, bool] | None = None     # see Verifier.apply

    def _drop(self, key: tuple) -> None:
        finding = self.found.pop(key)
        if self.journal is not None:
            self.journal.setdefault(finding, True)

    def _put(self, key: tuple, finding: Finding) -> None:
        if self.journal is not None:
            self.journal.setdefault(finding, False)
        self.found[key] = finding

    def flow_changed(self, sw: Switch, old: FlowSpec | None, new: FlowSpec | None) -> None:
        for spec in (old, new):
            if spec is None:
                continue
            for gid in spec.groups:
                self.group_changed(sw, gid)
            if spec.meter is not None:
                self.meter_changed(sw, spec.meter)

    def group_changed(self, sw: Switch, gid: int) -> None:
        for key in [k for k in self.found if k[0] == "missing-group" and k[1] == sw.dp_id and k[2] == gid]:
            self._drop(key)
        if gid in sw.groups:
            return
        for table in sw.tables.values():
            for rule in table.rules.values():
                if gid in rule.spec.groups:
                    self._put(("missing-group", sw.dp_id, gid, rule.key), Finding(
                        "missing-group", (sw.dp_id,), rule.spec.table, describe_flow(rule.key),
                        f"sends to group {gid:#x}, which s{sw.dp_id} does not have"))
        for group in sw.groups.values():
            if gid in group.groups:
                self._put(("missing-group", sw.dp_id, gid, group.group_id), Finding(
                    "missing-group", (sw.dp_id,), None, None,
                    f"group {group.group_id:#x} chains to group {gid:#x}, which s{sw.dp_id} does not have"))

    def meter_changed(self, sw: Switch, mid: int) -> None:
        for key in [k for k in self.found if k[0] == "missing-meter" and k[1] == sw.dp_id and k[2] == mid]:
            self._drop(key)
        if mid in sw.meters:
            return
        for table in sw.tables.values():
            for rule in table.rules.values():
                if rule.spec.meter == mid:
                    self._put(("missing-meter", sw.dp_id, mid, rule.key), Finding(
                        "missing-meter", (sw.dp_id,), rule.spec.table, describe_flow(rule.key),
                        f"uses meter {mid:#x}, which s{sw.dp_id} does not have"))

    def switch(self, sw: Switch) -> None:
        """Every reference of switch ``sw``'s flows and groups."""
        gids, mids = set(), set()
        for table in sw.tables.values():
            for rule in table.rules.values():
                gids |= rule.spec.groups
                if rule.spec.meter is not None:
                    mids.add(rule.spec.meter)
        for group in sw.groups.values():
            gids |= group.groups
        for gid in sorted(gids):
            self.group_changed(sw, gid)
        for mid in sorted(mids):
            self.meter_changed(sw, mid)


def describe_end(event: tuple) -> str:
    kind = event[0]
    if kind == "drop":
        return f"dropped at s{event[1]} ({'no flow takes it' if event[3] == 'miss' else 'a flow drops it'})"
    if kind == "ctl":
        return f"sent to the controller at s{event[1]}"
    if kind == "noport":
        return f"sent out of s{event[1]} port {event[2]}, with nothing behind it"
    if kind == "dead":
        return f"sent out of s{event[1]} port {event[2]}, which is down"
    if kind == "nogroup":
        return f"sent to group {event[2]:#x} at s{event[1]}, which does not exist"
    return f"loops at s{event[1]} port {event[2]}"
