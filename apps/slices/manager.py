"""The slices manager: slice intent, its data plane, its counters and its events.

``SliceManager`` owns the pool, the VIP ranges, the slices and the scaling policy.
Every change — create, scale, delete, a member registered, a drain finished — is
atomic: it is checked against the whole state first, stored in one SQLite
transaction, and on any error the in-memory state is put back as it was, so a
refused request leaves nothing behind. After a change the manager publishes an
immutable snapshot and asks the controller to resync; the core then calls
``desired(dp_id, now)`` (the ``controller.appbase.App`` hook), which reads only that
snapshot plus where the controller has seen each member (its host table).

Scale-down drains: the members to remove lose their load-balancer buckets at once
(no new connection reaches them) and keep their transit and reply rules and the
switches' connection pins until ``drain_s`` has passed; then they go back to the
pool and their member VIPs are reclaimed. A scale-up revives draining members
before it takes new ones.

The controller answers ARP for the slice's addresses (``claims``): the service VIP
with its virtual MAC, a member VIP with its member's MAC. Meter statistics
(``meter_stats``) become per-slice offered and delivered rates in both directions.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apps.slices import dataplane
from apps.slices.model import (Conflict, Exhausted, MemberNotFound, InvalidSlice, Slice, SliceError,
                               SliceExists, SliceNotFound, check_count, slice_from_dict)
from apps.slices.pool import Member, ResourcePool
from apps.slices.scaling import Forecast, ScalingDecision, ScalingPolicy, series_id
from apps.slices.store import SliceStore
from apps.slices.vips import VipAllocator, virtual_mac
from apps.slices import SPEC
from controller.appbase import App, CoreView, Knob, KnobError
from controller.desired import Desired
from controller.events import EventBus
from controller.telemetry import MeterRate, MeterRates

LOG = logging.getLogger(__name__)

EVENT_KINDS = ("CREATED", "SCALED", "DRAINED", "DELETED", "DISSOLVED", "DECISION", "MEMBER_REGISTERED",
               "MEMBER_UNREGISTERED", "RESIZED")
KNOB_MAX_MBPS = 100_000.0           # the most a slice's bandwidth knob accepts


@dataclass(frozen=True)
class Rates:
    """Per-slice rates at the last meter poll, Mbit/s. ``in`` is toward the members."""

    offered_in_mbps: float = 0.0
    delivered_in_mbps: float = 0.0
    offered_out_mbps: float = 0.0
    delivered_out_mbps: float = 0.0
    time: float = 0.0                  # Unix seconds of the poll (0: none yet)
    bytes_in: int = 0                  # what its meters counted since the slice was created (a
                                       # re-created meter adds what it counted anew)
    dropped_bytes_in: int = 0
    bytes_out: int = 0
    dropped_bytes_out: int = 0


@dataclass(frozen=True)
class MemberView:
    host_id: str
    ipv4: str
    vip: str                           # the member's own address in the slice's range
    draining_until: float | None       # Unix seconds; None while active
    mac: str = ""                      # where the controller has seen it ("" if not yet)
    dp_id: int = 0
    port_no: int = 0

    @property
    def placed(self) -> bool:
        return bool(self.mac)


@dataclass(frozen=True)
class SliceView:
    slice: Slice
    index: int                         # data-plane index: group, meter and cookie numbers
    service_vip: str
    virtual_mac: str
    members: tuple[MemberView, ...]
    rates: Rates = Rates()
    last_decision: ScalingDecision | None = None

    @property
    def active(self) -> tuple[MemberView, ...]:
        return tuple(m for m in self.members if m.draining_until is None)


@dataclass(frozen=True)
class SliceEvent:
    kind: str                          # one of EVENT_KINDS
    time: float
    slice_name: str
    detail: str
    view: SliceView | None = None      # the slice after the change (None once deleted)
    decision: ScalingDecision | None = None


def _describe(event: SliceEvent) -> str:
    return f"slice event {event.kind} {event.slice_name}: {event.detail}"


@dataclass
class _Snapshot:
    """What ``desired`` and ``claims`` read, replaced whole on every change."""

    slices: dict[str, tuple[Slice, int, tuple[MemberView, ...]]] = field(default_factory=dict)
    # ip -> ("vip", mac) | ("member", member ip)
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)
    meters: dict[int, tuple[str, str]] = field(default_factory=dict)   # meter id -> (slice, "in"|"out")


class SliceManager(App):
    """Slices: intent, data plane and counters (see the module docstring)."""

    name = SPEC.name

    def __init__(self, view: CoreView, resync: Callable[[], None] = lambda: None,
                 store: SliceStore | None = None,
                 drain_s: float = 30.0, policy: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.time, auto_drain: bool = True):
        super().__init__(view, resync)
        self.store = store
        self.drain_s = drain_s
        self.clock = clock
        self._lock = threading.RLock()
        self.bus = EventBus(_describe)
        params = dict(policy or {})
        if store is not None:
            state = store.load()
            self.pool, self.vips, self.slices = state.pool, state.vips, dict(state.slices)
            self.ids, self.draining = dict(state.ids), dict(state.draining)
            self.policy = state.policy(**params)
            for name in self.slices:
                if name not in self.ids:          # written before indices were stored
                    self.ids[name] = self._free_index()
                    store.put_slice_id(name, self.ids[name])
        else:
            self.pool, self.vips, self.slices = ResourcePool(), VipAllocator(), {}
            self.ids, self.draining = {}, {}
            self.policy = ScalingPolicy(**params)
        self.decisions: dict[str, ScalingDecision] = {}
        self._rates: dict[str, Rates] = {}
        # Per (slice, direction): the rates of its meters at their last readings, and
        # the bytes they counted, only growing.
        self._meters = MeterRates()
        self._snapshot = _Snapshot()
        self._publish_snapshot()
        # dp_id -> slice name -> (dependencies, entries): see _slice_entries.
        self._entries: dict[int, dict[str, tuple[tuple, Desired]]] = {}
        self.autoscaler = None             # set by apps.slices.app: steps scaling on forecasts
        self.scale_in_background = False   # ... in a thread of its own, once started
        # Drains end on a timer (tests with a fake clock call finish_drains themselves).
        self._auto_drain = auto_drain
        self._drain_timer: threading.Timer | None = None
        self._closed = False
        self._schedule_drains()

    def start(self) -> None:
        if self.autoscaler is not None and self.scale_in_background:
            self.autoscaler.start()

    def basis(self) -> str | None:
        return self.autoscaler.mode if self.autoscaler is not None else None

    def stopping(self) -> None:
        """The controller is about to stop serving: end every WatchSlice stream cleanly."""
        self.bus.close()

    def close(self) -> None:
        """Stop background work and close the state file (controller shutdown)."""
        with self._lock:
            self._closed = True
            if self._drain_timer is not None:
                self._drain_timer.cancel()
        if self.autoscaler is not None:
            self.autoscaler.stop()
        if self.store is not None:
            self.store.close()

    # --- the pool -----------------------------------------------------------------------

    def register_member(self, pool: str, host_id: str, ipv4: str, labels: Mapping[str, str] | None = None
                        ) -> Member:
        """Add a host to a pool (re-registering the same host with the same values is a no-op)."""
        with self._lock:
            old = self.pool.member(host_id)
            with self._atomic():
                member = self.pool.register(pool, host_id, ipv4, labels or {})
                if self.store is not None:
                    self.store.put_member(member)
            if old != member:
                self._emit("MEMBER_REGISTERED", "", f"member {host_id} ({member.ipv4}) in pool {pool!r}")
        return member

    def unregister_member(self, host_id: str) -> None:
        with self._lock:
            with self._atomic():
                member = self.pool.unregister(host_id)
                if member is None:
                    raise MemberNotFound(host_id)
                if self.store is not None:
                    self.store.del_member(host_id)
            self._emit("MEMBER_UNREGISTERED", "", f"member {host_id} left pool {member.pool!r}")

    def members(self, pool: str | None = None) -> list[Member]:
        with self._lock:
            return self.pool.members(pool)

    # --- slices -------------------------------------------------------------------------

    def create(self, spec: Slice | Mapping[str, Any], members: int | None = None) -> SliceView:
        """Create a slice with ``members`` members (default ``min_members``)."""
        slice_ = spec if isinstance(spec, Slice) else slice_from_dict(spec)
        with self._lock:
            if slice_.name in self.slices:
                raise SliceExists(slice_.name)
            count = slice_.min_members if members is None else self._check_members(slice_, members)
            if slice_.pool not in self.pool.pools():
                raise InvalidSlice("pool", f"no member is registered in pool {slice_.pool!r} "
                                           f"(pools: {', '.join(self.pool.pools()) or 'none'})")
            free = len(self.pool.free(slice_.pool))
            if count > free:
                raise Exhausted(f"pool {slice_.pool!r}", f"wanted {count} member(s) for slice "
                                f"{slice_.name!r}, {free} available", wanted=count, available=free)
            with self._atomic():
                self.vips.reserve_range(slice_.name, slice_.vip_cidr)
                idx = self._free_index()
                self.slices[slice_.name] = slice_
                self.ids[slice_.name] = idx
                added = self.pool.allocate(slice_.pool, slice_.name, count)
                for m in added:
                    self.vips.assign(slice_.name, m.host_id)
                if self.store is not None:
                    self.store.put_slice(slice_)
                    self.store.put_slice_id(slice_.name, idx)
                    self._store_members(slice_.name)
            view = self._emit("CREATED", slice_.name,
                              f"{slice_.bandwidth_mbps:g} Mbit/s {slice_.priority.value}, VIP "
                              f"{slice_.service_vip}, {count} member(s): {_ids(added)}")
        self.resync()
        return view

    def scale(self, name: str, members: int, why: str = "requested",
              decision: ScalingDecision | None = None) -> SliceView:
        """Set the slice's active member count (within its min and max)."""
        with self._lock:
            slice_ = self._slice(name)
            count = self._check_members(slice_, members)
            active = [m for m in self.pool.members_of(name) if m.host_id not in self.draining]
            draining = sorted((m for m in self.pool.members_of(name) if m.host_id in self.draining),
                              key=lambda m: self._offset(name, m.host_id))
            now = self.clock()
            if count == len(active):
                return self._view(name)
            with self._atomic():
                if count > len(active):
                    revived = draining[:count - len(active)]
                    for m in revived:
                        del self.draining[m.host_id]
                    added = self.pool.allocate(slice_.pool, name, count - len(active) - len(revived))
                    for m in added:
                        self.vips.assign(name, m.host_id)
                    change = f"{len(active)} -> {count}: " + ", ".join(
                        filter(None, [f"revived {_ids(revived)}" if revived else "",
                                      f"added {_ids(added)}" if added else ""]))
                else:
                    # The newest members (highest member VIPs) go first.
                    leaving = sorted(active, key=lambda m: self._offset(name, m.host_id))[count:]
                    for m in leaving:
                        self.draining[m.host_id] = now + self.drain_s
                    change = (f"{len(active)} -> {count}: draining {_ids(leaving)} "
                              f"for {self.drain_s:g} s")
                if self.store is not None:
                    self._store_members(name)
            self._emit("SCALED", name, f"{change} ({why})", decision=decision)
        self.finish_drains(now)            # with drain_s 0 the leavers go at once
        self._schedule_drains()
        self.resync()
        return self.get(name)

    def set_bandwidth(self, name: str, mbps: float, why: str = "requested") -> SliceView:
        """Change the slice's bandwidth (the rate of its meters), persisted."""
        with self._lock:
            slice_ = self._slice(name)
            new = replace(slice_, bandwidth_mbps=mbps)         # re-validates: InvalidSlice names the field
            if new == slice_:
                return self._view(name)
            with self._atomic():
                self.slices[name] = new
                if self.store is not None:
                    self.store.put_slice(new)
            view = self._emit("RESIZED", name,
                              f"bandwidth {slice_.bandwidth_mbps:g} -> {mbps:g} Mbit/s ({why})")
        self.resync()
        return view

    # -- knobs (controller.appbase.Knob): each slice's bandwidth
    def knobs(self) -> list[Knob]:
        with self._lock:
            slices = list(self.slices.values())
            active = {n: sum(1 for m in self.pool.members_of(n) if m.host_id not in self.draining)
                      for n in self.slices}
        switches = tuple(self.view.switch_ids())
        out = []
        for s in slices:
            rates = self._rates.get(s.name)
            measured = (None if rates is None or not rates.time
                        else max(rates.offered_in_mbps, rates.offered_out_mbps))
            out.append(Knob("slice", s.name, "bandwidth_mbps", s.bandwidth_mbps, low=0.001,
                            high=KNOB_MAX_MBPS, series_id=series_id(s.name), measured_mbps=measured,
                            switches=switches))
            out.append(Knob("slice", s.name, "members", float(active[s.name]), low=s.min_members,
                            high=s.max_members, switches=switches, structural=True))
        return out

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        if kind != "slice" or field not in ("bandwidth_mbps", "members"):
            return super().set_knob(kind, target, field, value)
        try:
            if field == "members":
                if value != int(value):
                    raise KnobError(f"{kind}:{target}.{field}: a member count is a whole number, "
                                    f"got {value:g}")
                self.scale(target, int(value), why="knob")
            else:
                self.set_bandwidth(target, value, why="knob")
        except SliceError as err:
            raise KnobError(f"{kind}:{target}.{field}: {err}") from None
        return next(k for k in self.knobs() if k.target == target and k.field == field)

    def delete(self, name: str, dissolved: bool = False, decision: ScalingDecision | None = None) -> None:
        """Remove a slice: its members go back to the pool, its range is freed."""
        with self._lock:
            self._slice(name)
            with self._atomic():
                released = self.pool.release_all(name)
                for host_id in released:
                    self.draining.pop(host_id, None)
                self.vips.release_range(name)
                del self.slices[name]
                del self.ids[name]
                self.policy.forget(name)
                self.decisions.pop(name, None)
                if self.store is not None:
                    self.store.del_slice(name)
                    for host_id in released:
                        self.store.put_draining(host_id, None)
            self._rates.pop(name, None)
            self._meters.forget(lambda group: group[0] == name)
            self._emit("DISSOLVED" if dissolved else "DELETED", name,
                       f"released {_ids(released) if released else 'no members'}", decision=decision)
        self.resync()

    def finish_drains(self, now: float | None = None) -> list[str]:
        """Release members whose drain time is over; the host ids released."""
        now = self.clock() if now is None else now
        with self._lock:
            due = sorted(h for h, until in self.draining.items() if until <= now)
            if not due:
                return []
            by_slice: dict[str, list[str]] = {}
            for host_id in due:
                by_slice.setdefault(self.pool.owner_of(host_id) or "", []).append(host_id)
            reclaimed: dict[str, list[str]] = {}
            with self._atomic():
                for name, host_ids in sorted(by_slice.items()):
                    for host_id in host_ids:
                        del self.draining[host_id]
                        if name:
                            reclaimed.setdefault(name, []).append(str(self.vips.reclaim(name, host_id)))
                    if name:
                        self.pool.release(name, host_ids)
                    if self.store is not None:
                        for host_id in host_ids:
                            self.store.put_draining(host_id, None)
                        if name:
                            self._store_members(name)
            for name, host_ids in sorted(by_slice.items()):
                if name:
                    self._emit("DRAINED", name, f"released {_ids(host_ids)}, reclaimed "
                               f"{', '.join(reclaimed[name])}")
        self.resync()
        return due

    def _schedule_drains(self) -> None:
        """Arm one timer for the earliest drain deadline."""
        with self._lock:
            if not self._auto_drain or self._closed:
                return
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            if not self.draining:
                return
            delay = max(0.0, min(self.draining.values()) - self.clock())
            self._drain_timer = threading.Timer(delay + 0.05, self._drains_due)
            self._drain_timer.daemon = True
            self._drain_timer.start()

    def _drains_due(self) -> None:
        try:
            self.finish_drains()
        except Exception:  # noqa: BLE001 - a timer thread must log, not die silently
            LOG.exception("finishing drains failed")
        self._schedule_drains()

    def get(self, name: str) -> SliceView:
        with self._lock:
            self._slice(name)
            return self._view(name)

    def list(self) -> list[SliceView]:
        with self._lock:
            return [self._view(name) for name in sorted(self.slices)]

    def decide(self, name: str, now: float, forecast: Forecast | None,
               measured_mbps: float) -> ScalingDecision:
        """One scaling decision for the slice at app time ``now``, applied at once."""
        with self._lock:
            slice_ = self._slice(name)
            active = sum(1 for m in self.pool.members_of(name) if m.host_id not in self.draining)
            decision = self.policy.decide(now, slice_, active, forecast, measured_mbps)
            if self.store is not None:
                self.store.put_policy(self.policy)
        LOG.info("slice %s: %s %d -> %d (basis %s, lead %g s): %s", name, decision.action,
                 decision.current_members, decision.target_members, decision.basis, decision.lead_time_s,
                 decision.reason)
        try:
            if decision.action in ("scale_up", "scale_down"):
                self.scale(name, decision.target_members, why=f"{decision.action} on {decision.basis} demand",
                           decision=decision)
            elif decision.action == "dissolve":
                self.delete(name, dissolved=True, decision=decision)
            else:
                self._record(decision, decision.reason)
        except (Exhausted, Conflict) as err:
            LOG.warning("slice %s: cannot %s: %s", name, decision.action, err)
            self._record(decision, f"{decision.reason}; not applied: {err}")
        return decision

    def _record(self, decision: ScalingDecision, detail: str) -> None:
        with self._lock:
            if decision.slice_name in self.slices:
                self.decisions[decision.slice_name] = decision
                self._emit("DECISION", decision.slice_name, detail, decision=decision)

    def grpc_services(self) -> list:
        """The slices gRPC API, for the controller shell to serve next to its own:
        [(full service name, register(server))]."""
        from apps.slices import api      # here: api imports this module
        return api.services(self)

    # --- controller.appbase.App: desired state ------------------------------------------

    def desired(self, dp_id: int, now: float) -> Desired:
        """Every slice's entries on switch ``dp_id``; unchanged slices' are reused (``_slice_entries``)."""
        toward = self._toward()
        cached = self._entries.get(dp_id, {})
        built = {name: self._slice_entries(entry, dp_id, toward, cached.get(name))
                 for name, entry in sorted(self._snapshot.slices.items())}
        self._entries[dp_id] = built        # deleted slices drop out here
        parts = [entries for _, entries in built.values()]
        return Desired(tuple(f for e in parts for f in e.flows), tuple(g for e in parts for g in e.groups),
                       tuple(m for e in parts for m in e.meters))

    def _slice_entries(self, entry: tuple[Slice, int, tuple[MemberView, ...]], dp_id: int,
                       toward: dataplane.Toward, cached: tuple[tuple, Desired] | None
                       ) -> tuple[tuple, Desired]:
        """One slice's entries on switch ``dp_id``, with what they were built from:
        ``(dependencies, entries)``.

        Every resync asks for every slice on every switch, but a change of intent
        touches one slice, and building entries (each flow checked against the
        pipeline, each address parsed) is the costly part. So the last result is kept
        per switch and slice (``self._entries``) and reused while its dependencies are
        equal. They are everything ``dataplane.switch_entries`` reads:

        - ``entry``, the snapshot's (slice, index, members), members with their
          addresses, member VIPs and drain deadlines (republished on every change);
        - per member, where the controller has seen it (MAC, switch, port), or None;
        - per member, the port this switch sends toward it: its own port here, else
          the first hop of the shortest path, so a topology change is seen too.
        """
        slice_, idx, members = entry
        seen = []
        for m in members:
            host = self.view.host_by_ip(m.ipv4)
            if host is None:
                seen.append(None)
            else:
                port = host.port_no if host.dp_id == dp_id else toward(dp_id, host.dp_id)
                seen.append((host.mac, host.dp_id, host.port_no, port))
        deps = (entry, tuple(seen))
        if cached is not None and cached[0] == deps:
            return cached
        placed = [dataplane.Placed(m.host_id, m.ipv4, _offset_of(slice_, m.vip), where[0], where[1], where[2],
                                   m.draining_until is not None)
                  for m, where in zip(members, seen) if where is not None]
        return deps, dataplane.switch_entries(slice_, idx, placed, dp_id, toward)

    def claims(self, ip: str) -> str | None:
        """The MAC to answer an ARP request for ``ip`` with, if it is a slice address."""
        claim = self._snapshot.claims.get(ip)
        if claim is None:
            return None
        kind, value = claim
        if kind == "vip":
            return value
        host = self.view.host_by_ip(value)
        return host.mac if host is not None else None

    def meter_stats(self, dp_id: int, stats: list, now: float) -> None:
        """Meter counters from one switch (``OFPMeterStats``) -> per-slice rates."""
        self._meters.update(dp_id, stats, now, self._snapshot.meters.get)
        self._rates = self._sum_rates(now)

    def rates(self, name: str) -> Rates:
        return self._rates.get(name, Rates())

    def metric_families(self) -> list:
        """Prometheus families for the controller's /metrics (read at scrape time)."""
        members = GaugeMetricFamily("foresight_slice_members", "Members per slice", labels=["slice", "state"])
        rate = GaugeMetricFamily("foresight_slice_rate_mbps", "Slice traffic at the last meter poll",
                                 labels=["slice", "direction", "measure"])
        dropped = CounterMetricFamily("foresight_slice_dropped_bytes", "Bytes the slice's meters dropped",
                                      labels=["slice", "direction"])
        target = GaugeMetricFamily("foresight_slice_target_members",
                                   "Members the last scaling decision wanted",
                                   labels=["slice", "action", "basis"])
        for view in self.list():
            name = view.slice.name
            members.add_metric([name, "active"], len(view.active))
            members.add_metric([name, "draining"], len(view.members) - len(view.active))
            r = view.rates
            for direction in ("in", "out"):
                for measure in ("offered", "delivered"):
                    rate.add_metric([name, direction, measure], getattr(r, f"{measure}_{direction}_mbps"))
                dropped.add_metric([name, direction], getattr(r, f"dropped_bytes_{direction}"))
            if view.last_decision is not None:
                d = view.last_decision
                target.add_metric([name, d.action, d.basis], d.target_members)
        return [members, rate, dropped, target]

    # --- internals ----------------------------------------------------------------------

    def _sum_rates(self, now: float) -> dict[str, Rates]:
        live = set(self._snapshot.meters.values())
        by_slice: dict[str, dict[str, MeterRate]] = {}
        for (name, direction), rate in self._meters.rates(now).items():
            if (name, direction) in live and rate.time:
                by_slice.setdefault(name, {})[direction] = rate
        out = {}
        for name, ends in by_slice.items():
            r_in, r_out = ends.get("in", MeterRate()), ends.get("out", MeterRate())
            out[name] = Rates(offered_in_mbps=r_in.offered_mbps, delivered_in_mbps=r_in.delivered_mbps,
                              offered_out_mbps=r_out.offered_mbps, delivered_out_mbps=r_out.delivered_mbps,
                              time=now, bytes_in=r_in.offered_bytes, dropped_bytes_in=r_in.dropped_bytes,
                              bytes_out=r_out.offered_bytes, dropped_bytes_out=r_out.dropped_bytes)
        return out

    def _toward(self) -> Callable[[int, int], int | None]:
        view = self.view
        cache: dict[tuple[int, int], int | None] = {}

        def toward(dp_id: int, target: int) -> int | None:
            key = (dp_id, target)
            if key not in cache:
                path = view.shortest_path(dp_id, target)
                cache[key] = view.hop_ports(path)[0][2] if path and len(path) > 1 else None
            return cache[key]
        return toward

    @contextmanager
    def _atomic(self):
        """All of a change or none of it, in memory and in the store."""
        saved = (self.pool.members(), self.pool.allocations(), self.vips.ranges(), dict(self.slices),
                 dict(self.ids), dict(self.draining), copy.deepcopy(self.policy))
        try:
            with self.store.transaction() if self.store is not None else nullcontext():
                yield
        except BaseException:
            members, allocations, ranges, slices, ids, draining, policy = saved
            self.pool = ResourcePool.restore(members, allocations)
            self.vips = VipAllocator.restore(ranges)
            self.slices, self.ids, self.draining, self.policy = slices, ids, draining, policy
            raise

    def _store_members(self, name: str) -> None:
        members = self.pool.members_of(name)
        self.store.put_allocations(name, [m.host_id for m in members])
        self.store.put_vip_range(self.vips.range_state(name))
        for m in members:
            self.store.put_draining(m.host_id, self.draining.get(m.host_id))

    def _check_members(self, slice_: Slice, members: Any) -> int:
        count = check_count("members", members, ge=0)
        if not slice_.min_members <= count <= slice_.max_members:
            raise InvalidSlice("members", f"must be within min_members..max_members "
                                          f"({slice_.min_members}..{slice_.max_members}), got {count}")
        return count

    def _slice(self, name: str) -> Slice:
        slice_ = self.slices.get(name)
        if slice_ is None:
            raise SliceNotFound(name)
        return slice_

    def _free_index(self) -> int:
        used = set(self.ids.values())
        return next(i for i in range(dataplane.MAX_SLICES) if i not in used)

    def _offset(self, name: str, host_id: str) -> int:
        address = self.vips.address_of(name, host_id)
        return _offset_of(self.slices[name], str(address)) if address is not None else 0

    def _member_views(self, name: str, members: list[Member] | None = None) -> tuple[MemberView, ...]:
        """The slice's members (``members``: its pool members, if the caller has them)."""
        views = []
        for m in self.pool.members_of(name) if members is None else members:
            address = self.vips.address_of(name, m.host_id)
            views.append(MemberView(m.host_id, str(m.ipv4), str(address) if address else "",
                                    self.draining.get(m.host_id)))
        return tuple(sorted(views, key=lambda v: _offset_of(self.slices[name], v.vip) if v.vip else 0))

    def _view(self, name: str) -> SliceView:
        slice_ = self.slices[name]
        members = []
        with self.view.reading():
            for m in self._member_views(name):
                host = self.view.host_by_ip(m.ipv4)
                members.append(replace(m, mac=host.mac, dp_id=host.dp_id, port_no=host.port_no)
                               if host else m)
        vip = str(slice_.service_vip)
        return SliceView(slice_, self.ids[name], vip, virtual_mac(vip), tuple(members),
                         self._rates.get(name, Rates()), self.decisions.get(name))

    def _publish_snapshot(self) -> None:
        snapshot = _Snapshot()
        allocated: dict[str, list[Member]] = {name: [] for name in self.slices}
        for host_id, name in self.pool.allocations().items():     # one pass, not one per slice
            allocated.setdefault(name, []).append(self.pool.member(host_id))
        for name, slice_ in self.slices.items():
            idx = self.ids[name]
            members = self._member_views(name, allocated[name])
            snapshot.slices[name] = (slice_, idx, members)
            vip = str(slice_.service_vip)
            snapshot.claims[vip] = ("vip", virtual_mac(vip))
            for m in members:
                if m.vip:
                    snapshot.claims[m.vip] = ("member", m.ipv4)
            sid = dataplane.ids(idx)
            snapshot.meters[sid.meter_in] = (name, "in")
            snapshot.meters[sid.meter_out] = (name, "out")
        self._snapshot = snapshot

    def _emit(self, kind: str, name: str, detail: str, decision: ScalingDecision | None = None
              ) -> SliceView | None:
        self._publish_snapshot()
        if decision is not None and name in self.slices:
            self.decisions[name] = decision
        view = self._view(name) if name in self.slices else None
        self.bus.publish([SliceEvent(kind, self.clock(), name, detail, view, decision)])
        return view


def _ids(members) -> str:
    return ", ".join(m if isinstance(m, str) else m.host_id for m in members)


def _offset_of(slice_: Slice, address: str) -> int:
    return int(ipaddress.IPv4Address(address)) - int(slice_.vip_cidr.network_address)

