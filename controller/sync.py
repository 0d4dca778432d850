"""Switch synchronisation: the part of the controller core that brings each switch to
its desired state and knows when it is there.

A switch that (re)connects is dumped (flows, groups, meters) and reconciled once all
three dumps are in; after that every change is a diff (``controller.desired.plan``)
sent in phases.

Make before break across switches: each switch works through its own messages, so
a deletion sent right behind another switch's addition may take effect first (a
reroute would then drop packets in between). A sync that adds or changes anything
therefore holds back every deletion — the switch's installed entries keep what is
still to go — until each switch that got additions has answered their SyncBarrier;
then one more sync sends the flow changes (a rerouted pair's turn at its ingress),
held and confirmed the same way, and the deletions go ``routing.drain_s`` after the
last change is confirmed: a barrier reply says the switch's tables changed, not that
every packet sent the old way has left the network (nor that Open vSwitch has
revalidated its datapath flow cache, which it does after replying). A switch that
never answers holds them at most ``BREAK_WAIT_S``.

Confirmation: every sync that sends a switch anything ends that switch's messages
with a ``SyncBarrier`` carrying the sync's generation, a number that only grows.
The shell reports each reply (``barrier_replied``); the switch has then processed
everything sent to it up to that generation (an OpenFlow error, if one was
refused, arrives before the reply). A reconciliation that needs no change is
confirmed by the dumps themselves. ``sync_mark()`` says what every connected
switch must confirm to cover everything sent so far, ``wait_confirmed(mark,
timeout_s)`` waits for it; a switch that disconnects first fails the wait
(``SwitchLost``).

Refusals: an OpenFlow error for a mod in flight (matched by xid in the shell,
``controller.refusals``) reaches ``refused``. The switch is dumped again and
reconciled against what it really holds; until then its barrier replies confirm
nothing (they covered what it refused), its reconciliation does. The refused entry —
that very flow, group or meter — is left out of the switch's desired state, and
reported as a desired-state problem, until its owner wants something else for that
key or the switch reconnects, so it is not sent, refused and dumped again in a loop.
A wait whose switch refused something it waits for fails (``ChangeRefused``).

Bundles: with ``controller.sync.bundles`` each switch's share of a sync is one OpenFlow
bundle (``controller.bundles``), all of it applied or none; its SyncBarrier follows
the commit (``controller.deploys``: check, commit or discard, failures, and
``restore`` to roll switches back). The steps above stay: one bundle per switch and step.

All public methods take the core's lock (``locked``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import bundles, desired
from controller.bundles import Pending
from controller.desired import DUMP_KINDS, Entries
from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec

# The core's parts log as the core: one logger to configure and to filter on.
LOG = logging.getLogger("controller.core")

Out = list[tuple[int, object]]
_MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                 "meter_adds", "meter_modifies", "meter_deletes")
# Deletions held for additions to be confirmed go out anyway after this long.
BREAK_WAIT_S = 2.0
# Refusals kept for waits to find (a wait looks only at those of its own switches
# since they last confirmed, so only the latest few matter).
REFUSALS_KEPT = 256


def locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return wrapper


class SwitchLost(RuntimeError):
    """Switches disconnected before confirming what was sent to them; ``dp_ids`` names them."""

    def __init__(self, dp_ids: list[int], names: list[str]):
        super().__init__(f"{', '.join(names)} disconnected before confirming")
        self.dp_ids = dp_ids


class ChangeRefused(RuntimeError):
    """Switches refused part of what a wait waits for: ``dp_ids`` names them, ``errors``
    says what each refused and the OpenFlow error it answered with."""

    def __init__(self, dp_ids: list[int], errors: list[str]):
        super().__init__("; ".join(errors))
        self.dp_ids = dp_ids
        self.errors = errors


class SyncBarrier(parser.OFPBarrierRequest):
    """The barrier closing one sync's messages to a switch: its reply confirms
    ``generation`` (the shell maps the reply's xid back to it)."""

    def __init__(self, generation: int):
        super().__init__(datapath=None)
        self.generation = generation


class Mark(dict):
    """What a wait asks of each switch: {dp_id: the generation it must confirm}.
    ``since`` holds the generation each had confirmed when the mark was taken: what it
    refused after that is part of what the mark waits for."""

    def __init__(self, due: dict[int, int], since: dict[int, int]):
        super().__init__(due)
        self.since = since


class Refusal(NamedTuple):
    dp_id: int
    generation: int         # of the sync the refused message was part of
    confirmed: int          # what the switch had confirmed when it refused
    text: str               # "s1 (dp ...) refused <entry>: <OpenFlow error>"


Entry = FlowSpec | GroupSpec | MeterSpec


@dataclass(frozen=True)
class Refused:
    """An entry a switch refused, with the OpenFlow error; ``left_out`` False: refused as
    out of sync (it held something else than we believed), so it is sent once more."""
    entry: Entry
    error: str
    left_out: bool = True


def _describe(entry: Entry) -> str:
    """An entry as messages name it (group and meter descriptions say what they are)."""
    return f"flow {entry.describe()}" if isinstance(entry, FlowSpec) else entry.describe()


def _entry_key(entry: Entry) -> tuple:
    """Where an entry sits in ``Entries``: (its table there, its key)."""
    if isinstance(entry, FlowSpec):
        return ("flows", entry.key)
    if isinstance(entry, GroupSpec):
        return ("groups", entry.group_id)
    return ("meters", entry.meter_id)


@dataclass
class SwitchState:
    reconciled: bool = False
    installed: Entries | None = None        # what the switch holds, once reconciled
    awaiting: set[str] = field(default_factory=set)         # dumps still to complete
    dumps: dict[str, list] = field(default_factory=dict)    # parts received so far
    sent: int = 0                           # generation of the last SyncBarrier sent
    confirmed: int = 0                      # ... and of the last one the switch answered
    holding: bool = False                   # installed has deletions not sent yet (make before break)
    holding_changes: bool = False           # ... and flow changes too
    no_meters: bool = False                 # refused the meter dump: its packet-ins go unmetered
    refused: dict[tuple, Refused] = field(default_factory=dict)     # by _entry_key
    refused_deletions: set[str] = field(default_factory=set)        # re-dumped once each
    no_bundles: bool = False                # refused a bundle itself: sent plain messages
    pending: dict[int, Pending] = field(default_factory=dict)       # bundles not yet checked, by generation
    pinned: Entries | None = None           # restored to this (controller.deploys), whatever is desired


class SwitchSync:
    """Dumps, reconciliation, phased syncs, confirmation and refusals: a part of
    ``ControllerCore`` (it reads and writes the core's ``switches``, ``counters``,
    generation and marks; ``desired`` and ``forwarding`` are the core's)."""

    @locked
    def request_dumps(self, dp_id: int) -> Out:
        """Ask a switch for its flows, groups and meters; it is reconciled (and gets no
        other changes) once all three dumps are in."""
        state = self.switches.get(dp_id)
        if state is None:
            return []
        state.reconciled = False
        state.awaiting = set(DUMP_KINDS)
        state.dumps = {kind: [] for kind in DUMP_KINDS}
        return [(dp_id, msg) for msg in desired.dump_requests()]

    @locked
    def flows_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a flow dump (``more``: further parts follow)."""
        return self._dumped(dp_id, "flows", dumped, now, more)

    @locked
    def groups_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a group-description dump."""
        return self._dumped(dp_id, "groups", dumped, now, more)

    @locked
    def meters_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a meter-config dump."""
        return self._dumped(dp_id, "meters", dumped, now, more)

    @locked
    def dump_failed(self, dp_id: int, kind: str, now: float) -> Out:
        """The switch refused a dump (e.g. it has no meters): reconcile as if it were empty."""
        LOG.warning("dp %016x refused the %s dump; treating it as empty", dp_id, kind)
        self.counters["dump_failures"] += 1
        state = self.switches.get(dp_id)
        if kind == "meters" and state is not None and kind in state.awaiting:
            # No meters there: a metered table-miss would be refused and leave it without one.
            state.no_meters = True
            if self.packet_in_meter is not None:
                LOG.warning("dp %016x has no meters: its packet-ins go unmetered", dp_id)
        return self._dumped(dp_id, kind, [], now, False)

    def _dumped(self, dp_id: int, kind: str, dumped: list, now: float, more: bool) -> Out:
        state = self.switches.get(dp_id)
        if state is None or kind not in state.awaiting:
            return []           # a late reply to an earlier connection, or nobody asked
        state.dumps[kind].extend(dumped)
        if more:
            return []
        state.awaiting.discard(kind)
        if state.awaiting:
            return []
        return self._reconcile(dp_id, now)

    def _reconcile(self, dp_id: int, now: float) -> Out:
        """Reconcile a freshly (re)connected switch against the desired state."""
        state = self.switches[dp_id]
        dumps, state.dumps = state.dumps, {}
        state.installed = desired.read_dump(dumps["flows"], dumps["groups"], dumps["meters"])
        state.reconciled = True
        state.holding = False
        before = Counter(self.counters)
        out = self._sync(now, only=[dp_id])
        if not out:
            # Its dumps show it holds what we want (deletions aside, if held): that is
            # its confirmation.
            self._generation += 1
            state.sent = state.confirmed = self._generation
            self._confirmations.notify_all()
        self.counters["reconciliations"] += 1
        changes = {k: self.counters[k] - before[k] for k in _MOD_COUNTERS if self.counters[k] != before[k]}
        LOG.info("dp %016x reconciled: %d flows, %d groups, %d meters found; changes: %s", dp_id,
                 len(dumps["flows"]), len(dumps["groups"]), len(dumps["meters"]),
                 ", ".join(f"{v} {k}" for k, v in changes.items()) or "none")
        return out

    def _leave_out_refused(self, state: SwitchState | None, want: Entries) -> list[str]:
        """Take out of ``want`` what the switch refused while its owner still wants that
        very value (sent again, it would be refused again: a loop); any other value for
        the key, or none, ends the refusal. What sends to a group or meter taken out
        goes too: the switch would refuse it in turn. Returns the problems."""
        if state is None or not state.refused:
            return []
        problems = []
        tables = {"flows": want.flows, "groups": want.groups, "meters": want.meters}
        gone: dict[str, set] = {"groups": set(), "meters": set()}
        for key, refused in list(state.refused.items()):
            kind, entry_key = key
            table = tables[kind]
            if table.get(entry_key) != refused.entry:
                del state.refused[key]
            elif refused.left_out:
                del table[entry_key]
                if kind != "flows":
                    gone[kind].add(entry_key)
                problems.append(f"refused by the switch: {_describe(refused.entry)} ({refused.error}); left "
                                f"out until its owner wants something else there or the switch reconnects")
        while gone["groups"] or gone["meters"]:
            groups_, meters_ = gone["groups"], gone["meters"]
            gone = {"groups": set(), "meters": set()}
            for gid, group in list(want.groups.items()):
                if isinstance(group, GroupSpec) and group.groups & groups_:
                    del want.groups[gid]
                    gone["groups"].add(gid)
                    problems.append(f"{group.describe()} chains to a group the switch refused; left out")
            for key, spec in list(want.flows.items()):
                used = [f"meter {spec.meter:#x}"] if spec.meter in meters_ else []
                used += [f"group {gid:#x}" for gid in sorted(spec.groups & groups_)]
                if used:
                    del want.flows[key]
                    problems.append(f"flow {spec.describe()} uses {', '.join(used)}, which the switch "
                                    f"refused; left out")
        return problems

    def _sync(self, now: float, only: list[int] | None = None, force: bool = False) -> Out:
        """The messages that bring switches (``only`` these) to the desired state; each
        switch that gets any has them closed by a SyncBarrier of a new generation.
        Deletions wait while any addition is unconfirmed (module docstring), unless ``force``."""
        ingress = self.forwarding.ingress_dps()
        # Ingress switches last, so a rerouted pair's downstream hops exist first.
        dps = sorted(only if only is not None else self.switches, key=lambda d: (d in ingress, d))
        wanted = {}
        plans = {}
        for dp_id in dps:
            state = self.switches.get(dp_id)
            if state is None or not state.reconciled:
                continue
            wanted[dp_id] = state.pinned.copy() if state.pinned is not None else self.desired(dp_id, now)
            plans[dp_id] = desired.plan(wanted[dp_id], state.installed)
        # Additions first; flow changes once they are confirmed; deletions last.
        if force:
            hold_from = None
        elif self._makes_due or any(p.makes for p in plans.values()):
            hold_from = desired.FLOW_CHANGE
        elif any(p.phases[desired.FLOW_CHANGE] for p in plans.values()) or self._drain_until is not None:
            hold_from = desired.FLOW_DELETE
        else:
            hold_from = None
        settled = []        # were holding changes or deletions, now have nothing left to send
        for dp_id, p in plans.items():
            state = self.switches[dp_id]
            was_holding = state.holding
            changes = bool(p.phases[desired.FLOW_CHANGE])
            state.holding = hold_from is not None and p.hold_breaks(hold_from)
            state.holding_changes = state.holding and hold_from == desired.FLOW_CHANGE and changes
            state.installed = desired.after_makes(wanted[dp_id], state.installed,
                                                  changed=hold_from == desired.FLOW_DELETE) \
                if state.holding else wanted[dp_id]
            if was_holding and not state.holding and not any(p.phases):
                settled.append(dp_id)
            for name, n in p.counts.items():
                self.counters[name] += n
        changed = [dp_id for dp_id, p in plans.items() if any(p.phases)]
        # Each of these gets its share as one bundle (controller.bundles), closed by its
        # SyncBarrier once the bundle's check is answered and it is committed.
        bundled = [dp_id for dp_id in changed
                   if self.config.controller.sync.bundles and not self.switches[dp_id].no_bundles]
        # Phase by phase across switches: every new flow is in before any old one goes.
        out: Out = [(dp_id, msg) for phase in range(desired.N_PHASES)
                    for dp_id, p in plans.items() if dp_id not in bundled for msg in p.phases[phase]]
        if hold_from == desired.FLOW_DELETE and any(p.phases[desired.FLOW_CHANGE] for p in plans.values()):
            self._drain_until = None            # a new turn: its own drain starts once it is confirmed
        if changed or settled:
            self._generation += 1
            for dp_id in changed:
                state = self.switches[dp_id]
                state.sent = self._generation
                if plans[dp_id].makes or plans[dp_id].phases[desired.FLOW_CHANGE]:
                    self._makes_due[dp_id] = self._generation
                pending = None
                if dp_id in bundled:
                    msgs, pending = bundles.wrap(self._generation, plans[dp_id].messages())
                    out += [(dp_id, msg) for msg in msgs]
                if pending is None:
                    out.append((dp_id, SyncBarrier(self._generation)))
                else:
                    state.pending[self._generation] = pending
                    self.counters["bundles_opened"] += 1
            for dp_id in settled:       # nothing to confirm: they hold what we want
                self.switches[dp_id].sent = self.switches[dp_id].confirmed = self._generation
            if settled:
                self._confirmations.notify_all()
            self.counters["sync_barriers"] += len(changed)
        if any(s.holding for s in self.switches.values()):
            if self._holding_since is None:
                self._holding_since = now
        else:
            self._holding_since = None
        for dp_id in wanted:        # ports held down (controller.ports): desired() gathered the wishes
            out += self._port_mods(dp_id, now, "sync")
        return out

    def _release_breaks(self, now: float, force: bool = False) -> Out:
        """Send what is held once nothing sent is unconfirmed: flow changes at once,
        deletions after the drain (``force``: everything, now)."""
        if self._makes_due and not force:
            return []
        holding = sorted(dp_id for dp_id, state in self.switches.items() if state.holding)
        if not holding:
            self._holding_since = self._drain_until = None
            return []
        drain_s = self.config.controller.routing.drain_s
        if not force and drain_s > 0 and not any(self.switches[dp].holding_changes for dp in holding):
            if self._drain_until is None:
                self._drain_until = now + drain_s
            if now < self._drain_until:
                return []               # tick() comes back
        self._drain_until = None
        self.counters["break_releases"] += 1
        return self._sync(now, only=holding, force=force)

    @locked
    def barrier_replied(self, dp_id: int, generation: int, now: float) -> Out:
        """A switch answered the SyncBarrier of ``generation``; returns the deletions
        this was the last confirmation for, if any were held. A switch dumped again
        after a refusal confirms nothing this way: the reply covers what it refused;
        its reconciliation confirms it."""
        self.counters["barrier_replies"] += 1
        state = self.switches.get(dp_id)
        if state is not None and state.reconciled and generation > state.confirmed:
            state.confirmed = generation
            self._confirmations.notify_all()
        due = self._makes_due.get(dp_id)
        if due is None or generation < due:
            return []
        del self._makes_due[dp_id]
        return self._release_breaks(now)

    @locked
    def refused(self, dp_id: int, generation: int | None, what: Entry | str, error: str, now: float,
                retry: bool = False) -> Out:
        """Switch ``dp_id`` refused a message of the sync of ``generation`` (None: the
        latest sent to it) with the OpenFlow error ``error``
        (``OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT``). ``what`` is the flow, group or meter
        it carried, or a description of a message that is none (a deletion).

        Counted (``openflow_refusals``) and logged; the switch is dumped again and
        reconciled against what it holds, without the refused entry (module docstring);
        waits for what it was part of fail (``ChangeRefused``). ``retry``: the error says
        the switch held something else than we believed (the group existed, the meter
        was missing): its dump answers that, the entry goes once more and is left out
        only if refused again. Returns the dump requests."""
        self.counters["openflow_refusals"] += 1
        label = self.switch_label(dp_id)
        described = what if isinstance(what, str) else _describe(what)
        state = self.switches.get(dp_id)
        if state is None:
            LOG.error("%s refused %s: %s (it has disconnected since)", label, described, error)
            return []
        dump = state.reconciled     # else its dumps, asked for already, come after what it refused
        if isinstance(what, str):
            # Nothing to leave out: dump it to learn what it holds, once per message, so a
            # deletion it keeps refusing is not sent, refused and dumped again forever.
            dump = dump and described not in state.refused_deletions
            state.refused_deletions.add(described)
            then = "once: it may keep what it refused to delete"
        else:
            key = _entry_key(what)
            held = state.refused.get(key)
            retry = retry and (held is None or held.entry != what)
            if not retry and self.packet_in_meter is not None and what == self.packet_in_meter:
                # Left out, it would take the built-in flows to the controller with it:
                # they go unmetered instead, as on a switch that refused the meter dump.
                state.no_meters = True
                then = "its packet-ins unmetered"
            else:
                state.refused[key] = Refused(what, error, left_out=not retry)
                then = "without that until its owner wants something else there or the switch reconnects"
        if retry:
            self.counters["openflow_refusals_retried"] += 1
            LOG.warning("%s refused %s: %s; it holds something else than we believed: reconciling it "
                        "against its dump, which sends that once more", label, described, error)
        else:
            LOG.error("%s refused %s: %s; reconciling it against its dump, %s", label, described, error, then)
            self._refusals.append(Refusal(dp_id, generation or state.sent, state.confirmed,
                                           f"{label} refused {described}: {error}"))
            self._confirmations.notify_all()
        return self.request_dumps(dp_id) if dump else []

    @locked
    def sync_mark(self, since: Mark | None = None) -> Mark:
        """What every connected switch must confirm so that everything sent so far is
        in place. A switch still being reconciled must finish that first (its
        reconciliation installs the whole desired state, so it covers this too); one
        holding deletions must confirm the later sync that sends them.

        What a switch refuses after it last confirmed is part of the mark; ``since``, a
        mark taken before a change was sent, moves that point back to it: a refusal can
        be answered, and the switch reconciled, before the sender takes its mark."""
        confirmed = since.since if since is not None else \
            {dp_id: state.confirmed for dp_id, state in self.switches.items()}
        return Mark({dp_id: state.sent if state.reconciled and not state.holding else self._generation + 1
                     for dp_id, state in self.switches.items()}, confirmed)

    @locked
    def unconfirmed(self, mark: Mark) -> list[int]:
        """Switches of ``mark`` connected and not yet confirmed, by dp_id."""
        return sorted(dp_id for dp_id, generation in mark.items()
                      if (state := self.switches.get(dp_id)) is not None and state.confirmed < generation)

    def wait_confirmed(self, mark: Mark, timeout_s: float) -> bool:
        """True once every switch of ``mark`` has confirmed it, False after ``timeout_s``
        (``unconfirmed(mark)`` names the switches still due). A switch that refuses part
        of what the mark waits for raises ChangeRefused (naming it and the OpenFlow
        error): its confirmation would cover a state without it. A switch that
        disconnects first raises SwitchLost at once: nothing it holds is known any more.
        (One that is back before the wait notices is waited for: its reconciliation
        installs the whole desired state and confirms a later generation.) Call without
        ``self.lock``."""
        with self._confirmations:
            started = time.monotonic()
            done = self._confirmations.wait_for(
                lambda: self._refused_for(mark) or self._lost(mark) or not self.unconfirmed(mark),
                max(0.0, timeout_s))
            self.counters["barrier_waits"] += 1
            self.counters["barrier_wait_us"] += int((time.monotonic() - started) * 1e6)
            refused = self._refused_for(mark)
            if refused:
                self.counters["barrier_waits_refused"] += 1
                raise ChangeRefused(sorted({r.dp_id for r in refused}), [r.text for r in refused])
            lost = self._lost(mark)
            if lost:
                self.counters["barrier_waits_lost"] += 1
                raise SwitchLost(lost, [self.switch_label(dp_id) for dp_id in lost])
            if not done:
                self.counters["barrier_waits_timed_out"] += 1
            return bool(done)

    @locked
    def refusals(self, mark: Mark) -> list[str]:
        """What a switch of ``mark`` refused of what the mark waits for (each an
        OpenFlow error naming the switch and the entry), without waiting."""
        return [r.text for r in self._refused_for(mark)]

    def _refused_for(self, mark: Mark) -> list[Refusal]:
        """Refusals of what ``mark`` waits for: sent after its switch last confirmed,
        refused before the switch confirmed what the mark asks."""
        return [r for r in self._refusals if r.dp_id in mark
                and r.generation > mark.since.get(r.dp_id, 0) and r.confirmed < mark[r.dp_id]]

    def _lost(self, mark: Mark) -> list[int]:
        return sorted(dp_id for dp_id in mark if dp_id not in self.switches)
