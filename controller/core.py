"""The controller core: every decision, no I/O.

The os-ken shell (``controller.app``) unpacks OpenFlow events and calls a method
here with ``now``; each method returns the messages to send as ``[(dp_id, msg)]``.
The core keeps, per switch, the flows, groups and meters it believes are installed,
and after every change computes the desired ones from its managers (pipeline,
flooding, forwarding) and from registered providers (apps: ``add_provider``), and
sends only the difference, ordered by ``controller.desired.plan``: meters and
groups before the flows that use them, additions before deletions (make before
break); forwarding's fast-failover groups are merged like a provider's. A switch
that (re)connects is first dumped — flows, groups and meters — and reconciled
against the desired state once all three dumps are in, so it ends with exactly
what we want: none missing, none stale, none duplicated.

Packet-ins: the built-in flows that send data-plane frames to the controller (the
forward table's miss, broadcast ARP) pass one packets/s meter per switch
(``discovery.packet_in_pps``, the ``pipeline`` owner's meter); LLDP does not, so a
flood of first packets is cut at the switch instead of queueing LLDP behind it
until links expire. A switch that refuses the meter dump gets them unmetered.

Ports providers want held administratively down (``Desired.ports_down``) are
brought there by port mods (``controller.ports``), at connect, on every sync and on
port status; LLDP is never sent out of a port wanted down.

Switch synchronisation (dumps, reconciliation, make before break, confirmation,
refusals) is ``controller.sync``; bundle outcomes and rollback ``controller.deploys``;
packet-in handling (LLDP, ARP, learning, first packets) is ``controller.packets``;
port admin state ``controller.ports``. All are parts of ``ControllerCore`` (mixins
on the same state), kept apart because each is a concern of its own.

All public methods take ``self.lock``: gRPC threads read while os-ken threads write.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter, deque

from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_LLDP
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller import cookies, desired, flooding, flows, groups, lldp, meters
from controller.config import Config, DiscoveryConfig
from controller.appbase import REGISTERED, App, CoreView
from controller.deploys import Deploys
from controller.desired import Desired, Entries, ProviderError
from controller.events import Event, EventBus
from controller.flows import FlowSpec, flow
from controller.forwarding import Forwarding, Hop
from controller.hosts import Host, HostTable
from controller.meters import MeterSpec
from controller.pipeline import CORE_TABLE_NAMES, PIPELINE
from controller.packets import ARP_ECHO_WINDOW_S, PacketIn  # noqa: F401 - re-exported
from controller.ports import PortAdmin
from controller.state import Snapshot, StateStore
from controller.sync import (BREAK_WAIT_S, REFUSALS_KEPT, ChangeRefused, Mark, Out, Refusal,  # noqa: F401
                             Refused, SwitchLost, SwitchState, SwitchSync, SyncBarrier, locked)
from controller.telemetry import CounterDeltas, PortRates, PortSample
from controller.topology import Port, Topology

LOG = logging.getLogger(__name__)

PIPELINE_COOKIE = cookies.cookie("pipeline")
# Every data-plane frame a switch sends to the controller passes this meter (LLDP never does).
PACKET_IN_METER = cookies.meter_id("pipeline", 1)


class NotFound(LookupError):
    """A named switch, host or path does not exist."""


class InvalidArgument(ValueError):
    """A request names something in a form we cannot read."""


def pipeline_flows(packet_in_meter: int | None = None, app_tables: tuple[str, ...] = ()) -> list[FlowSpec]:
    """The built-in flows: the controller's tables' misses and control frames, and the
    misses of ``app_tables`` (the tables of the apps this core runs). With
    ``packet_in_meter``, every one that sends data-plane frames to the controller
    (broadcast ARP, the forward table's miss) passes that meter. LLDP never does: a
    flood of first packets must not crowd out discovery."""
    return list(_pipeline_flows(packet_in_meter, app_tables))


@functools.lru_cache(maxsize=16)
def _pipeline_flows(packet_in_meter: int | None, app_tables: tuple[str, ...]) -> tuple[FlowSpec, ...]:
    # Built once per meter: every sync of every switch starts from these (same objects,
    # so the diff against what a switch holds is an identity check).
    return (
        flow("ingress", 3000, {"eth_type": ETH_TYPE_LLDP}, [("controller",)], cookie=PIPELINE_COOKIE),
        # Broadcast ARP is answered by the controller (proxy ARP). Unicast ARP
        # (replies, and the probes hosts send to refresh a neighbour) travels the
        # pair's path like any unicast frame, so it keeps working without us.
        flow("ingress", 2000, {"eth_type": ETH_TYPE_ARP, "eth_dst": "ff:ff:ff:ff:ff:ff"},
             [("controller",)], cookie=PIPELINE_COOKIE, meter=packet_in_meter),
        flow("forward", 10, {"eth_dst": ("01:00:00:00:00:00", "01:00:00:00:00:00")},
             goto="flood", cookie=PIPELINE_COOKIE),
        # Every table's catch-all, as the pipeline declares it.
        *(_through_meter(spec, packet_in_meter)
          for spec in flows.miss_flows(PIPELINE_COOKIE, tables=CORE_TABLE_NAMES | set(app_tables))),
    )


def _through_meter(spec: FlowSpec, meter: int | None) -> FlowSpec:
    """``spec`` with ``meter`` if it sends frames to the controller."""
    if meter is None or ("controller",) not in spec.actions:
        return spec
    return flow(spec.table, spec.priority, spec.match_dict, spec.actions, spec.goto, spec.cookie, meter=meter)


def packet_in_meter(discovery: DiscoveryConfig) -> MeterSpec | None:
    """The meter data-plane packet-ins pass on every switch (``discovery.packet_in_pps``),
    or None when they are unmetered."""
    if not discovery.packet_in_pps:
        return None
    return MeterSpec(PACKET_IN_METER, rate_pps=discovery.packet_in_pps, burst_pkts=discovery.packet_in_burst)


class ControllerCore(SwitchSync, Deploys, PacketIn, PortAdmin):
    def __init__(self, config: Config, bus: EventBus | None = None, store: StateStore | None = None):
        self.config = config
        self.store = store
        self._saved_marker: tuple | None = None
        self.lock = threading.RLock()
        self._confirmations = threading.Condition(self.lock)     # notified on barrier replies, disconnects
        self._generation = 0                # of the last SyncBarrier (or barrier-free reconciliation)
        # dp_id -> the generation whose additions it must confirm before anything is deleted.
        self._makes_due: dict[int, int] = {}
        self._holding_since: float | None = None
        self._drain_until: float | None = None  # held deletions wait for this time
        self.bus = bus or EventBus()
        self.topology = Topology(config.topology, config.controller.routing)
        self.hosts = HostTable()
        self.forwarding = Forwarding(self.topology, self.hosts, config.controller.routing.fast_failover)
        self.rates = PortRates()
        self.switches: dict[int, SwitchState] = {}
        self.providers: dict[str, App] = {}
        self.view = CoreView(self)          # what apps see of the core
        self._app_tables: tuple[str, ...] = ()      # tables of the running apps (their misses are ours)
        self._id_apps: tuple[str, ...] = ()         # running apps with group/meter id ranges
        self._problems_seen: set[tuple[int, str]] = set()
        self._refusals: deque[Refusal] = deque(maxlen=REFUSALS_KEPT)
        self.counters: Counter[str] = Counter()
        self.packet_in_meter = packet_in_meter(config.controller.discovery)
        self._packet_in_meter_seen = CounterDeltas()     # by dp_id: (packets, dropped)
        self._next_lldp = 0.0
        self._next_stats = 0.0
        self._edge_snapshot: dict[int, frozenset[int]] = {}
        # (sender MAC, target IP) -> (dp_id, port, time) of ARP requests we flooded,
        # to recognise our own flood coming back over a link not yet discovered.
        self._arp_floods: dict[tuple[str, str], tuple[int, int, float]] = {}
        self._clock = 0.0
        self._init_ports()

    @property
    def _edge_after_s(self) -> float:
        return self.config.controller.discovery.edge_after_s

    # ---- durable state ----------------------------------------------------------------

    @locked
    def restore_state(self, now: float) -> bool:
        """Load what the store holds (at start-up, before any switch connects)."""
        if self.store is None:
            return False
        snap = self.store.load()
        if not snap:
            return False
        hold_s = self.config.controller.discovery.restart_hold_s
        self.topology.restore(snap.switches, snap.links, now, hold_s)
        for host in snap.hosts:
            self.hosts.restore(**host)
        self.forwarding.wanted |= snap.pairs
        self.forwarding.refresh()
        self.ports_held = set(snap.held_ports)
        self._saved_marker = self._marker()
        LOG.info("restored state: %d switches, %d links, %d hosts, %d host pairs (%d with a path), "
                 "%d ports held down; holding them %.0f s for switches to reconnect", len(snap.switches),
                 len(snap.links), len(snap.hosts), len(snap.pairs), len(self.forwarding.paths),
                 len(snap.held_ports), hold_s)
        return True

    def _marker(self) -> tuple:
        return (self.topology.version, self.hosts.version, len(self.forwarding.wanted), self.held_version)

    @locked
    def save_state(self) -> bool:
        """Write a snapshot if anything changed since the last one."""
        if self.store is None or self._marker() == self._saved_marker:
            return False
        switches, links = self.topology.snapshot()
        hosts = [{"mac": h.mac, "dp_id": h.dp_id, "port_no": h.port_no, "ipv4": sorted(h.ipv4),
                  "last_seen": h.last_seen} for h in self.hosts.all()]
        self.store.save(Snapshot(switches, links, hosts, set(self.forwarding.wanted), set(self.ports_held)))
        self._saved_marker = self._marker()
        self.counters["state_saves"] += 1
        return True

    # ---- switch lifecycle ------------------------------------------------------

    @locked
    def switch_connected(self, dp_id: int, ports: list[Port], now: float) -> Out:
        events = self.topology.add_switch(dp_id, ports, now)
        self.switches[dp_id] = SwitchState()
        self.rates.forget(dp_id)
        self._publish(events)
        self._forget_port_mods(dp_id)
        self.desired(dp_id, now)            # gathers the ports providers want held down
        out: Out = [(dp_id, flows.set_async_defaults())] + self._port_mods(dp_id, now, "at connect")
        out += self.request_dumps(dp_id)
        if len(events) > 1:     # ports changed while it was away
            out += self._after_topology_change(now)
        # LLDP from every switch now, so links towards the newcomer appear at once.
        for other in sorted(self.switches):
            out += self._lldp_for(other)
        LOG.info("dp %016x connected with %d ports; dumping flows, groups and meters to reconcile",
                 dp_id, len(ports))
        if self.packet_in_meter is None:
            LOG.info("dp %016x: data-plane packet-ins unmetered (discovery.packet_in_pps 0)", dp_id)
        else:
            LOG.info("dp %016x: data-plane packet-ins (first packets, broadcast ARP) through %s; "
                     "LLDP unmetered", dp_id, self.packet_in_meter.describe())
        return out

    @locked
    def switch_disconnected(self, dp_id: int, now: float) -> Out:
        self.switches.pop(dp_id, None)
        self._makes_due.pop(dp_id, None)
        self._confirmations.notify_all()
        self.rates.forget(dp_id)
        self._publish(self.topology.switch_lost(dp_id, now))
        LOG.warning("dp %016x disconnected; keeping its links until they time out", dp_id)
        return self._release_breaks(now)

    @locked
    def port_changed(self, dp_id: int, port: Port, deleted: bool, now: float) -> Out:
        if deleted:
            events = self.topology.delete_port(dp_id, port.port_no, now)
            self._forget_port(dp_id, port.port_no)
        else:
            events = self.topology.update_port(dp_id, port, now)
        self._publish(events)
        out = [] if deleted else self._port_mods(dp_id, now, "port status")
        if events:
            out += self._after_topology_change(now)
        if port.up and not deleted and port.port_no not in self.ports_wanted_down(dp_id):
            sw = self.topology.switches.get(dp_id)
            if sw and port.hw_addr:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", port.port_no)],
                                                    lldp.build(dp_id, port.port_no, port.hw_addr))))
        return out

    # ---- periodic work -------------------------------------------------------------

    @locked
    def tick(self, now: float) -> Out:
        """Called often (e.g. every 0.25 s): LLDP, link expiry, edge ports, stats polls."""
        out: Out = []
        disc = self.config.controller.discovery
        if now >= self._next_lldp:
            self._next_lldp = now + disc.lldp_interval_s
            for dp_id in sorted(self.switches):
                out += self._lldp_for(dp_id)
        events = self.topology.expire_links(now, disc.link_timeout_s)
        events += self.topology.prune(now, disc.link_timeout_s)
        self._publish(events)
        edges = {dp: frozenset(self.topology.edge_ports(dp, now, self._edge_after_s))
                 for dp in self.switches}
        if events or edges != self._edge_snapshot:
            self._edge_snapshot = edges
            out += self._after_topology_change(now)
        if self._drain_until is not None and now >= self._drain_until:
            out += self._release_breaks(now)
        if self._port_mods_sent:
            out += self._port_mod_retries(now)
        if self._holding_since is not None and now - self._holding_since > BREAK_WAIT_S:
            LOG.warning("switches %s did not confirm additions within %.1f s; deleting anyway",
                        ", ".join(self.switch_label(dp) for dp in sorted(self._makes_due)), BREAK_WAIT_S)
            self.counters["break_wait_timeouts"] += 1
            self._makes_due.clear()
            out += self._release_breaks(now, force=True)
        if now >= self._next_stats:
            self._next_stats = now + self.config.controller.telemetry.poll_interval_s
            out += [(dp_id, flows.port_stats_request()) for dp_id in sorted(self.switches)]
            # Counters of meters and groups: the packet-in meter's, and those in the id
            # ranges of the apps (each gets its own: meter_stats, group_stats).
            if self.packet_in_meter is not None or self._id_apps:
                out += [(dp_id, meters.stats_request()) for dp_id in sorted(self.switches)]
            if self._id_apps:
                out += [(dp_id, groups.stats_request()) for dp_id in sorted(self.switches)]
        try:
            self.save_state()
        except Exception:  # noqa: BLE001 - a full disk must not stop forwarding; it is counted
            self.counters["state_save_errors"] += 1
            LOG.exception("saving state failed")
        return out

    @locked
    def port_stats(self, dp_id: int, samples: dict[int, PortSample]) -> None:
        rates = self.rates.update(dp_id, samples)
        self.topology.set_port_rates(dp_id, rates)

    @locked
    def meter_stats(self, dp_id: int, stats: list, now: float) -> None:
        """Meter counters from a switch, handed to the providers owning the meters; the
        packet-in meter's feed the ``packet_in_meter_*`` counters."""
        for stat in stats:
            if stat.meter_id == PACKET_IN_METER:
                self._count_packet_in_meter(dp_id, stat, now)
        self._hand_stats("meter", dp_id, stats, [s.meter_id for s in stats], now)

    def _count_packet_in_meter(self, dp_id: int, stat, now: float) -> None:
        """Add what the switch's packet-in meter counted since its last report: packets
        that reached it and packets it dropped (a meter that went back to zero, e.g.
        re-added, counts from zero)."""
        seen = (stat.packet_in_count, sum(band.packet_band_count for band in stat.band_stats))
        delta = self._packet_in_meter_seen.read(dp_id, now, seen)
        self.counters["packet_in_meter_packets"] += delta.grown[0]
        self.counters["packet_in_meter_drops"] += delta.grown[1]

    @locked
    def group_stats(self, dp_id: int, stats: list, now: float) -> None:
        """Group counters from a switch, handed to the providers owning the groups."""
        self._hand_stats("group", dp_id, stats, [s.group_id for s in stats], now)

    def _hand_stats(self, kind: str, dp_id: int, stats: list, ids: list[int], now: float) -> None:
        by_owner: dict[str, list] = {}
        for stat, id_ in zip(stats, ids):
            owner = cookies.id_owner(id_)
            if owner in self.providers:
                by_owner.setdefault(owner, []).append(stat)
        for owner, owned in sorted(by_owner.items()):
            app = self.providers[owner]
            try:
                if kind == "meter":
                    app.meter_stats(dp_id, owned, now)
                else:
                    app.group_stats(dp_id, owned, now)
            except Exception:  # noqa: BLE001 - counters of one app must not stop the others
                self.counters["provider_errors"] += 1
                LOG.exception("provider %s failed on %s stats from dp %016x", owner, kind, dp_id)

    def _lldp_for(self, dp_id: int) -> Out:
        switch = self.topology.switches.get(dp_id)
        if switch is None:
            return []
        out: Out = []
        held = self.ports_wanted_down(dp_id)        # a spare must not be found in the moment before it goes
        for port in sorted(switch.ports.values(), key=lambda p: p.port_no):
            if port.up and port.hw_addr and port.port_no <= ofp.OFPP_MAX and port.port_no not in held:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", port.port_no)],
                                                    lldp.build(dp_id, port.port_no, port.hw_addr))))
        self.counters["lldp_sent"] += len(out)
        return out

    # ---- desired state ---------------------------------------------------------------

    @locked
    def add_provider(self, app: App) -> None:
        """Run an app: its package registered it (``controller.appbase.register``); call
        ``resync`` to install what it wants."""
        if not isinstance(app, App):
            raise ProviderError(f"{app!r} is not a controller.appbase.App")
        if app.name not in REGISTERED:
            raise ProviderError(f"app {app.name!r} is not registered "
                                f"(registered: {sorted(REGISTERED) or 'none'})")
        if app.name in self.providers:
            raise ProviderError(f"app {app.name!r} is already running")
        self.providers[app.name] = app
        self._apps_changed()
        LOG.info("app %s registered", app.name)

    @locked
    def remove_provider(self, name: str) -> None:
        """Forget an app; the next ``resync`` removes everything it installed."""
        if self.providers.pop(name, None) is None:
            raise NotFound(f"no app named {name!r}")
        self._apps_changed()

    def _apps_changed(self) -> None:
        self._app_tables = tuple(sorted(t.name for name in self.providers for t in PIPELINE.owned_by(name)))
        self._id_apps = tuple(sorted(name for name in self.providers if REGISTERED[name].ids))

    @locked
    def mode(self) -> str:
        """"predictive" while some app decides on forecasts, else "reactive"."""
        return "predictive" if any(m == "predictive" for m in self.app_modes().values()) else "reactive"

    @locked
    def app_modes(self) -> dict[str, str]:
        """Each app that decides on demand: "predictive" or "reactive" now."""
        out = {}
        for name in sorted(self.providers):
            try:
                basis = self.providers[name].basis()
            except Exception:  # noqa: BLE001 - one app's bug must not break status
                self.counters["provider_errors"] += 1
                LOG.exception("app %s failed to say its basis", name)
                continue
            if basis is not None:
                out[name] = basis
        return out

    @locked
    def resync(self, now: float) -> Out:
        """Bring every switch to the desired state (after a provider's intent changed)."""
        return self._sync(now)

    def desired(self, dp_id: int, now: float) -> Entries:
        state = self.switches.get(dp_id)
        meter = None if state is not None and state.no_meters else self.packet_in_meter
        specs = pipeline_flows(meter.meter_id if meter else None, self._app_tables)
        specs += flooding.desired(self.topology, dp_id, now, self._edge_after_s)
        # Forwarding's groups (fast failover) are merged like a provider's, checked
        # against its id range; its flows, the bulk of a switch, are built in like the
        # other core flows (they use only the groups it declares with them).
        forwarded = self.forwarding.desired(dp_id)
        specs += forwarded.flows
        provided = [("forwarding", Desired(groups=forwarded.groups))]
        if meter is not None:
            provided.append(("pipeline", Desired(meters=(meter,))))
        problems = []
        wishes: dict[str, Desired | None] = {}
        for name in sorted(self.providers):
            try:
                wish = self.providers[name].desired(dp_id, now)
                provided.append((name, wish))
                wishes[name] = wish if isinstance(wish, Desired) else None
            except Exception as err:  # noqa: BLE001 - one app's bug must not break the switch
                wishes[name] = None
                # Keep what it has installed rather than tearing its traffic down.
                self.counters["provider_errors"] += 1
                problems.append(f"provider {name} failed ({type(err).__name__}: {err}); "
                                f"keeping what it installed")
                state = self.switches.get(dp_id)
                kept = state.installed.owned_by(name) if state and state.installed else Desired()
                provided.append((name, kept))
        self._note_ports_wanted(dp_id, wishes)
        want, rejected = desired.merge(specs, provided)
        self._report(dp_id, problems + rejected + self._leave_out_refused(state, want))
        return want

    def _report(self, dp_id: int, problems: list[str]) -> None:
        for problem in problems:
            if (dp_id, problem) not in self._problems_seen:
                self._problems_seen.add((dp_id, problem))
                self.counters["desired_rejects"] += 1
                LOG.error("dp %016x: %s", dp_id, problem)

    def _after_topology_change(self, now: float) -> Out:
        for (src, dst), old, new in self.forwarding.refresh():
            self._publish([Event("PATH_CHANGE", now, host_mac=src,
                                 detail=f"{src}->{dst}: {_hops(old)} => {_hops(new)}")])
        return self._sync(now)

    @locked
    def switch_label(self, dp_id: int) -> str:
        """``s1 (dp 0000000000000001)``: a switch as messages name it."""
        return f"{self.topology.name_of(dp_id)} (dp {dp_id:016x})"

    # ---- queries (northbound API) ------------------------------------------------------

    @locked
    def hosts_list(self, dp_id: int = 0) -> list[Host]:
        return [h for h in self.hosts.all() if not dp_id or h.dp_id == dp_id]

    @locked
    def resolve(self, name: str, field: str) -> tuple[str, Host | None, int]:
        """Resolve a host (IPv4 or MAC) or a switch (dp_id or name) to (kind, host, dp_id)."""
        text = name.strip()
        if not text:
            raise InvalidArgument(f"{field}: empty; give a host IPv4 or MAC, or a switch dp_id or name")
        if text.count(":") == 5:
            host = self.hosts.get(text)
            if host is None:
                raise NotFound(f"{field}: no host with MAC {text}")
            return "host", host, host.dp_id
        if text.count(".") == 3 and all(p.isdigit() for p in text.split(".")):
            host = self.hosts.by_ip(text)
            if host is None:
                raise NotFound(f"{field}: no host with IPv4 {text}")
            return "host", host, host.dp_id
        for dp_id, switch in self.topology.switches.items():
            if switch.name == text:
                return "switch", None, dp_id
        try:
            dp_id = int(text, 0)
        except ValueError:
            raise NotFound(f"{field}: no switch or host named {text!r}") from None
        if dp_id not in self.topology.switches:
            raise NotFound(f"{field}: no switch with dp_id {dp_id}")
        return "switch", None, dp_id

    @locked
    def path(self, src: str, dst: str) -> tuple[list[Hop], float, bool]:
        kind_s, host_s, dp_s = self.resolve(src, "src")
        kind_d, host_d, dp_d = self.resolve(dst, "dst")
        if host_s is not None and host_d is not None:
            key = (host_s.mac, host_d.mac)
            installed = key in self.forwarding.paths
            hops = self.forwarding.paths.get(key) or self.forwarding.compute(*key)
        else:
            installed = False
            dps = self.topology.shortest_path(dp_s, dp_d)
            hops = None
            if dps is not None:
                hops = tuple(Hop(dp, i, o) for dp, i, o in self.topology.hop_ports(dps))
                if host_s is not None:
                    hops = (Hop(hops[0].dp_id, host_s.port_no, hops[0].out_port),) + hops[1:]
                if host_d is not None:
                    hops = hops[:-1] + (Hop(hops[-1].dp_id, hops[-1].in_port, host_d.port_no),)
        if not hops:
            raise NotFound(f"no path from {src} to {dst}")
        graph = self.topology.simple_graph()
        cost = sum(graph[a.dp_id][b.dp_id]["weight"] for a, b in zip(hops, hops[1:]))
        return list(hops), cost, installed

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self.counters[f"event_{event.kind.lower()}"] += 1
        self.bus.publish(events)


def _hops(hops) -> str:
    return "-".join(str(h.dp_id) for h in hops) if hops else "none"
