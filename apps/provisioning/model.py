"""The data plane as the verifier sees it, kept in step with what the switches should hold.

``DataPlane`` loads every switch's desired state (everything the core and every app
want, ``CoreView.desired_state``) into a ``Verifier`` once, then follows it by rule
updates: each ``sync`` diffs every switch's desired entries against those loaded and
applies only the differences (the verifier re-walks only what they touch). A change
of topology or hosts (new links, ports, hosts) builds it again.

``trial`` answers "what would this change do": it applies a change's entries on top
of the current state as rule updates, collects the findings that appear (compared
with those already there, which are not the change's doing) and whether the host
pairs the change promises reach, then applies the inverse updates, so the model is
back where it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from apps.provisioning.inputs import Host, Policy, Topology, Update, add, delete
from apps.provisioning.verify import Finding, Verifier, VerifyError
from controller.desired import Desired, Entries
from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec

LOG = logging.getLogger(__name__)


@dataclass
class Trial:
    """What a change would do to the data plane."""

    updates: int
    new: list[Finding] = field(default_factory=list)  # findings the change adds
    unreached: list[tuple[str, str]] = field(default_factory=list)  # promised pairs that do not reach
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.new and not self.unreached

    def describe(self) -> str:
        if self.ok:
            return (
                f"{self.updates} rule updates, no new finding, promised pairs reach "
                f"({self.elapsed_s * 1e3:.1f} ms)"
            )
        parts = [str(f) for f in self.new[:5]]
        if len(self.new) > 5:
            parts.append(f"... {len(self.new) - 5} more")
        parts += [f"reach: {a} does not reach {b}" for a, b in self.unreached[:5]]
        return "; ".join(parts)


def _as_updates(dp: int, before: Entries, after: Entries) -> list[Update]:
    """Rule updates taking ``before`` to ``after``: meters and groups first, then flows,
    deletions of flows, groups and meters last (no flow ever names a missing group)."""
    out: list[Update] = []
    for kind in ("meters", "groups"):
        b, a = getattr(before, kind), getattr(after, kind)
        out += [add(dp, e) for k, e in sorted(a.items()) if b.get(k) != e]
    out += [add(dp, f) for k, f in _sorted(after.flows) if before.flows.get(k) != f]
    out += [delete(dp, f) for k, f in _sorted(before.flows) if k not in after.flows]
    for kind in ("groups", "meters"):
        b, a = getattr(before, kind), getattr(after, kind)
        out += [delete(dp, e) for k, e in sorted(b.items()) if k not in a]
    return out


def _sorted(flows: Mapping) -> list:
    return sorted(flows.items(), key=lambda kv: repr(kv[0]))


def _inverse(update: Update, have: Entries) -> Update:
    """The update that takes back ``update`` on a switch holding ``have`` before it."""
    e = update.entry
    table = (
        have.flows if isinstance(e, FlowSpec) else have.groups if isinstance(e, GroupSpec) else have.meters
    )
    key = e.key if isinstance(e, FlowSpec) else e.group_id if isinstance(e, GroupSpec) else e.meter_id
    old = table.get(key)
    if update.op == "delete":
        return add(update.dp_id, e)
    return delete(update.dp_id, e) if old is None else add(update.dp_id, old)


class DataPlane:
    def __init__(self, view, isolate: Iterable[Iterable[str]] = ()):
        self.view = view
        self.isolate = tuple(frozenset(s) for s in isolate)
        self.verifier: Verifier | None = None
        self.loaded: dict[int, Entries] = {}
        self._versions: tuple | None = None
        self.builds = 0
        self.updates = 0

    # -- following the switches
    def sync(self, now: float) -> int:
        """Bring the model to the switches' desired state; the rule updates it took."""
        versions = (self.view.topology_version, self.view.hosts_version, tuple(self.view.switch_ids()))
        if self.verifier is None or versions != self._versions:
            self._build(now)
            self._versions = versions
            return 0
        n = 0
        for dp in self.view.switch_ids():
            if dp not in self.loaded:
                continue  # not in the model's topology (no link, no host): as _build leaves it out
            want = _clean(self.view.desired_state(dp, now))
            for update in _as_updates(dp, self.loaded.get(dp, Entries()), want):
                self.verifier.apply(update)
                n += 1
            self.loaded[dp] = want
        self.updates += n
        return n

    def _build(self, now: float) -> None:
        view = self.view
        links = [(lk.src_dp, lk.src_port, lk.dst_dp, lk.dst_port) for lk in view.links()]
        hosts = [Host(h.mac, h.dp_id, h.port_no, h.mac, sorted(h.ipv4)[0]) for h in view.hosts() if h.ipv4]
        topology = Topology(links, hosts)
        names = set(topology.hosts)
        by_ip = {h.ip: h.name for h in topology.hosts.values()}
        isolate = tuple(frozenset(by_ip.get(x, x.lower()) for x in s) for s in self.isolate)
        reach = tuple((a, b) for a, b in view.forwarded_pairs() if a < b and a in names and b in names)
        isolate = tuple(s & names for s in isolate if s & names)
        verifier = Verifier(topology, policy=Policy(reach=reach, isolate=isolate, flood_ok=True))
        loaded = {}
        for dp in view.switch_ids():
            if dp not in topology.dp_ids:
                continue
            want = _clean(view.desired_state(dp, now))
            verifier.load(dp, want.flows.values(), want.groups.values(), want.meters.values())
            loaded[dp] = want
        verifier.check_all()
        self.verifier, self.loaded = verifier, loaded
        self.builds += 1
        LOG.info(
            "provisioning: data-plane model built: %d switches, %d hosts, %d pairs that must reach, "
            "%d findings already",
            len(loaded),
            len(names),
            len(reach),
            len(verifier.findings_set()),
        )

    # -- what a change would do
    def trial(self, entries: Mapping[int, Desired], pairs: Iterable[tuple[str, str]] = ()) -> Trial:
        """Apply ``entries`` (added to what each switch holds) as rule updates, note what
        they break, and take them back."""
        if self.verifier is None:
            raise VerifyError("the data-plane model is not built yet (no switch connected)")
        started = time.perf_counter()
        v = self.verifier
        before = v.findings_set()
        undo: list[Update] = []
        try:
            for dp, d in sorted(entries.items()):
                if dp not in self.loaded:
                    raise VerifyError(f"switch {self.view.switch_label(dp)} is not in the data-plane model")
                have = self.loaded[dp]
                after = Entries(dict(have.flows), dict(have.groups), dict(have.meters))
                after.meters.update((m.meter_id, m) for m in d.meters)
                after.groups.update((g.group_id, g) for g in d.groups)
                after.flows.update((f.key, f) for f in d.flows)
                for update in _as_updates(dp, have, after):
                    v.apply(update)
                    undo.append(_inverse(update, have))
            added = v.findings_set() - before
            new = [f for f in v.findings() if f in added]
            unknown = sorted({h for pair in pairs for h in pair if h not in v.topology.hosts})
            if unknown:
                raise VerifyError(
                    f"host(s) {', '.join(unknown)} the change promises to connect are not in the "
                    f"data-plane model (not learned with an IPv4 address)"
                )
            unreached = [(a, b) for a, b in pairs if not v.reaches(a, b)]
        finally:
            for update in reversed(undo):
                v.apply(update)
        done = len(undo)
        return Trial(done, new, unreached, time.perf_counter() - started)

    def findings(self) -> list[Finding]:
        return [] if self.verifier is None else self.verifier.findings()


def _clean(entries: Entries) -> Entries:
    """Only what the verifier reads: readable groups and meters (a switch's unreadable
    entries are not wanted ones)."""
    return Entries(
        dict(entries.flows),
        {k: g for k, g in entries.groups.items() if isinstance(g, GroupSpec)},
        {k: m for k, m in entries.meters.items() if isinstance(m, MeterSpec)},
    )
