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

All public methods take ``self.lock``: gRPC threads read while os-ken threads write.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from os_ken.lib.packet import arp as arp_pkt
from os_ken.lib.packet import ethernet, ipv4, packet
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_LLDP
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import arp, cookies, desired, flooding, flows, groups, lldp, meters
from controller.config import Config, DiscoveryConfig
from controller.appbase import REGISTERED, App, CoreView
from controller.desired import DUMP_KINDS, Desired, Entries, ProviderError
from controller.events import Event, EventBus
from controller.flows import FlowSpec, flow
from controller.forwarding import Forwarding, Hop
from controller.groups import GroupSpec
from controller.hosts import Host, HostTable
from controller.meters import MeterSpec
from controller.pipeline import CORE_TABLE_NAMES, PIPELINE
from controller.state import Snapshot, StateStore
from controller.telemetry import CounterDeltas, PortRates, PortSample
from controller.topology import Port, Topology

LOG = logging.getLogger(__name__)

Out = list[tuple[int, object]]

PIPELINE_COOKIE = cookies.cookie("pipeline")
# Every data-plane frame a switch sends to the controller passes this meter (LLDP never does).
PACKET_IN_METER = cookies.meter_id("pipeline", 1)
_MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                 "meter_adds", "meter_modifies", "meter_deletes")
# A flooded ARP request seen again within this window on another port is our own
# flood echoed over a link that LLDP has not confirmed yet: ignored, not learned.
ARP_ECHO_WINDOW_S = 1.0
# Deletions held for additions to be confirmed go out anyway after this long.
BREAK_WAIT_S = 2.0
# Refusals kept for waits to find (a wait looks only at those of its own switches
# since they last confirmed, so only the latest few matter).
REFUSALS_KEPT = 256


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return wrapper


class NotFound(LookupError):
    """A named switch, host or path does not exist."""


class InvalidArgument(ValueError):
    """A request names something in a form we cannot read."""


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


class _Refusal(NamedTuple):
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


class ControllerCore:
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
        self._refusals: deque[_Refusal] = deque(maxlen=REFUSALS_KEPT)
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

    @property
    def _edge_after_s(self) -> float:
        return self.config.controller.discovery.edge_after_s

    # ---- durable state ----------------------------------------------------------------

    @_locked
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
        self._saved_marker = self._marker()
        LOG.info("restored state: %d switches, %d links, %d hosts, %d host pairs (%d with a path); "
                 "holding them %.0f s for switches to reconnect", len(snap.switches), len(snap.links),
                 len(snap.hosts), len(snap.pairs), len(self.forwarding.paths), hold_s)
        return True

    def _marker(self) -> tuple:
        return (self.topology.version, self.hosts.version, len(self.forwarding.wanted))

    @_locked
    def save_state(self) -> bool:
        """Write a snapshot if anything changed since the last one."""
        if self.store is None or self._marker() == self._saved_marker:
            return False
        switches, links = self.topology.snapshot()
        hosts = [{"mac": h.mac, "dp_id": h.dp_id, "port_no": h.port_no, "ipv4": sorted(h.ipv4),
                  "last_seen": h.last_seen} for h in self.hosts.all()]
        self.store.save(Snapshot(switches, links, hosts, set(self.forwarding.wanted)))
        self._saved_marker = self._marker()
        self.counters["state_saves"] += 1
        return True

    # ---- switch lifecycle ------------------------------------------------------

    @_locked
    def switch_connected(self, dp_id: int, ports: list[Port], now: float) -> Out:
        events = self.topology.add_switch(dp_id, ports, now)
        self.switches[dp_id] = SwitchState()
        self.rates.forget(dp_id)
        self._publish(events)
        out: Out = [(dp_id, flows.set_async_defaults())] + self.request_dumps(dp_id)
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

    @_locked
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

    @_locked
    def flows_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a flow dump (``more``: further parts follow)."""
        return self._dumped(dp_id, "flows", dumped, now, more)

    @_locked
    def groups_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a group-description dump."""
        return self._dumped(dp_id, "groups", dumped, now, more)

    @_locked
    def meters_dumped(self, dp_id: int, dumped: list, now: float, more: bool = False) -> Out:
        """One part of a meter-config dump."""
        return self._dumped(dp_id, "meters", dumped, now, more)

    @_locked
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

    @_locked
    def switch_disconnected(self, dp_id: int, now: float) -> Out:
        self.switches.pop(dp_id, None)
        self._makes_due.pop(dp_id, None)
        self._confirmations.notify_all()
        self.rates.forget(dp_id)
        self._publish(self.topology.switch_lost(dp_id, now))
        LOG.warning("dp %016x disconnected; keeping its links until they time out", dp_id)
        return self._release_breaks(now)

    @_locked
    def port_changed(self, dp_id: int, port: Port, deleted: bool, now: float) -> Out:
        if deleted:
            events = self.topology.delete_port(dp_id, port.port_no, now)
        else:
            events = self.topology.update_port(dp_id, port, now)
        self._publish(events)
        out = self._after_topology_change(now) if events else []
        if port.up and not deleted:
            sw = self.topology.switches.get(dp_id)
            if sw and port.hw_addr:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", port.port_no)],
                                                    lldp.build(dp_id, port.port_no, port.hw_addr))))
        return out

    # ---- packets -------------------------------------------------------------------

    @_locked
    def packet_in(self, dp_id: int, in_port: int, data: bytes, now: float) -> Out:
        self.counters["packet_in"] += 1
        self._clock = now
        if dp_id not in self.switches:
            return []
        try:
            pkt = packet.Packet(data)
            eth = pkt.get_protocol(ethernet.ethernet)
        except Exception as err:  # noqa: BLE001 - any parser failure means a garbage frame
            self.counters["bad_packets"] += 1
            LOG.debug("dp %016x port %d: unparseable frame (%s)", dp_id, in_port, err)
            return []
        problem = _frame_problem(pkt, eth)
        if problem:
            self.counters["bad_packets"] += 1
            LOG.debug("dp %016x port %d: dropped frame: %s", dp_id, in_port, problem)
            return []
        if eth.ethertype == ETH_TYPE_LLDP:
            return self._lldp_in(dp_id, in_port, pkt, now)
        if self.topology.is_link_port(dp_id, in_port):
            return self._transit_miss(dp_id, in_port, eth, data)
        if eth.ethertype == ETH_TYPE_ARP and _is_multicast(eth.dst):
            return self._arp_in(dp_id, in_port, pkt.get_protocol(arp_pkt.arp), now)
        if eth.ethertype == ETH_TYPE_ARP:
            sender_ip = pkt.get_protocol(arp_pkt.arp).src_ip
        else:
            ip = pkt.get_protocol(ipv4.ipv4)
            sender_ip = ip.src if ip else None
        out = self._learn(eth.src, dp_id, in_port, sender_ip, now)
        if _is_multicast(eth.dst):
            return out
        return out + self._route(eth.src, eth.dst, dp_id, in_port, data, now)

    def _lldp_in(self, dp_id: int, in_port: int, pkt: packet.Packet, now: float) -> Out:
        sender = lldp.parse(pkt)
        if sender is None:
            return []
        events = self.topology.link_seen(sender[0], sender[1], dp_id, in_port, now)
        if not events:
            return []
        self._publish(events)
        return self._after_topology_change(now)

    def _transit_miss(self, dp_id: int, in_port: int, eth, data: bytes) -> Out:
        """A packet reached a switch on the path before its flow did: forward it on."""
        if _is_multicast(eth.dst):
            return []
        path = self.forwarding.paths.get((eth.src.lower(), eth.dst.lower()))
        if path is None or not any(h.dp_id == dp_id for h in path):
            return []
        return [(dp_id, flows.packet_out_to_table(in_port, data))]

    def _arp_in(self, dp_id: int, in_port: int, req, now: float) -> Out:
        if req is None:
            self.counters["bad_packets"] += 1
            return []
        if req.opcode == arp_pkt.ARP_REQUEST:
            origin = self._arp_floods.get((req.src_mac.lower(), req.dst_ip))
            if origin and origin[:2] != (dp_id, in_port) and now - origin[2] < ARP_ECHO_WINDOW_S:
                self.counters["arp_echoes_dropped"] += 1
                return []
        out = self._learn(req.src_mac, dp_id, in_port, req.src_ip, now)
        if req.opcode == arp_pkt.ARP_REQUEST and req.src_ip != req.dst_ip:
            claimed = self._claimed(req.dst_ip)
            if claimed:
                self.counters["proxy_arp_replies"] += 1
                frame = arp.reply(req.src_mac, req.src_ip, claimed, req.dst_ip)
                return out + [(dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", in_port)], frame))]
            target = self.hosts.by_ip(req.dst_ip)
            if target is not None:
                self.counters["proxy_arp_replies"] += 1
                frame = arp.reply(req.src_mac, req.src_ip, target.mac, req.dst_ip)
                return out + [(dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", in_port)], frame))]
            return out + self._flood_to_hosts(dp_id, in_port, req)
        return out

    def _flood_to_hosts(self, src_dp: int, src_port: int, req) -> Out:
        """An ARP for an unknown address goes to every port that is not a known link."""
        self.counters["arp_floods"] += 1
        self._arp_floods = {k: v for k, v in self._arp_floods.items()
                            if v[2] > self._clock - ARP_ECHO_WINDOW_S}
        self._arp_floods[(req.src_mac.lower(), req.dst_ip)] = (src_dp, src_port, self._clock)
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=req.src_mac,
                                           ethertype=ETH_TYPE_ARP))
        pkt.add_protocol(arp_pkt.arp(opcode=arp_pkt.ARP_REQUEST, src_mac=req.src_mac,
                                     src_ip=req.src_ip, dst_mac="00:00:00:00:00:00", dst_ip=req.dst_ip))
        pkt.serialize()
        data = bytes(pkt.data)
        out: Out = []
        for dp_id in sorted(self.switches):
            switch = self.topology.switches.get(dp_id)
            if switch is None:
                continue
            links = self.topology.link_ports(dp_id)
            ports = [p.port_no for p in switch.ports.values()
                     if p.up and p.port_no not in links and not p.lldp_seen
                     and (dp_id, p.port_no) != (src_dp, src_port)]
            if ports:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER,
                                                    [("output", p) for p in sorted(ports)], data)))
        return out

    def _learn(self, mac: str, dp_id: int, port_no: int, ip: str | None, now: float) -> Out:
        if _is_multicast(mac):
            return []
        if ip and self._claimed(ip):
            # An app's virtual address (a slice VIP rewritten onto a reply): not the host's own.
            ip = None
        events = self.hosts.learn(mac, dp_id, port_no, ip, now)
        if not events:
            return []
        self._publish(events)
        if any(e.kind == "HOST_MOVE" for e in events):
            return self._after_topology_change(now)
        if self.providers:
            # Providers may be waiting for this host (a slice member) to place their rules.
            return self._sync(now)
        return []

    def _claimed(self, ip: str) -> str | None:
        """The MAC a provider answers ARP for ``ip`` with, if some provider claims it."""
        for name in sorted(self.providers):
            try:
                mac = self.providers[name].claims(ip)
            except Exception:  # noqa: BLE001 - one app's bug must not break ARP for the others
                self.counters["provider_errors"] += 1
                LOG.exception("provider %s failed to answer for %s", name, ip)
                continue
            if mac:
                return mac
        return None

    def _route(self, src: str, dst: str, dp_id: int, in_port: int, data: bytes, now: float) -> Out:
        if self.hosts.get(dst) is None:
            self.counters["unknown_destination"] += 1
            return []
        path = self.forwarding.ensure(src, dst)
        if path is None:
            self.counters["no_path"] += 1
            LOG.info("no path from %s to %s", src, dst)
            return []
        out = self._sync(now, only=self.forwarding.dps_of((src.lower(), dst.lower())))
        return out + [(dp_id, flows.packet_out_to_table(in_port, data))]

    # ---- periodic work -------------------------------------------------------------

    @_locked
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

    @_locked
    def port_stats(self, dp_id: int, samples: dict[int, PortSample]) -> None:
        rates = self.rates.update(dp_id, samples)
        self.topology.set_port_rates(dp_id, rates)

    @_locked
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

    @_locked
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
        for port in sorted(switch.ports.values(), key=lambda p: p.port_no):
            if port.up and port.hw_addr and port.port_no <= ofp.OFPP_MAX:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", port.port_no)],
                                                    lldp.build(dp_id, port.port_no, port.hw_addr))))
        self.counters["lldp_sent"] += len(out)
        return out

    # ---- desired state ---------------------------------------------------------------

    @_locked
    def add_provider(self, app: App) -> None:
        """Run an app: its package registered it (``controller.appbase.register``); call
        ``resync`` to install what it wants."""
        if not isinstance(app, App):
            raise ProviderError(f"{app!r} is not a controller.appbase.App")
        if app.name not in REGISTERED:
            raise ProviderError(f"app {app.name!r} is not registered (registered: {sorted(REGISTERED) or 'none'})")
        if app.name in self.providers:
            raise ProviderError(f"app {app.name!r} is already running")
        self.providers[app.name] = app
        self._apps_changed()
        LOG.info("app %s registered", app.name)

    @_locked
    def remove_provider(self, name: str) -> None:
        """Forget an app; the next ``resync`` removes everything it installed."""
        if self.providers.pop(name, None) is None:
            raise NotFound(f"no app named {name!r}")
        self._apps_changed()

    def _apps_changed(self) -> None:
        self._app_tables = tuple(sorted(t.name for name in self.providers for t in PIPELINE.owned_by(name)))
        self._id_apps = tuple(sorted(name for name in self.providers if REGISTERED[name].ids))

    @_locked
    def mode(self) -> str:
        """"predictive" while some app decides on forecasts, else "reactive"."""
        return "predictive" if any(m == "predictive" for m in self.app_modes().values()) else "reactive"

    @_locked
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

    @_locked
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
        for name in sorted(self.providers):
            try:
                provided.append((name, self.providers[name].desired(dp_id, now)))
            except Exception as err:  # noqa: BLE001 - one app's bug must not break the switch
                # Keep what it has installed rather than tearing its traffic down.
                self.counters["provider_errors"] += 1
                problems.append(f"provider {name} failed ({type(err).__name__}: {err}); "
                                f"keeping what it installed")
                state = self.switches.get(dp_id)
                kept = state.installed.owned_by(name) if state and state.installed else Desired()
                provided.append((name, kept))
        want, rejected = desired.merge(specs, provided)
        self._report(dp_id, problems + rejected + self._leave_out_refused(state, want))
        return want

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
            wanted[dp_id] = self.desired(dp_id, now)
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
        # Phase by phase across switches: every new flow is in before any old one goes.
        out: Out = [(dp_id, msg) for phase in range(desired.N_PHASES)
                    for dp_id, p in plans.items() for msg in p.phases[phase]]
        changed = [dp_id for dp_id, p in plans.items() if any(p.phases)]
        if hold_from == desired.FLOW_DELETE and any(p.phases[desired.FLOW_CHANGE] for p in plans.values()):
            self._drain_until = None            # a new turn: its own drain starts once it is confirmed
        if changed or settled:
            self._generation += 1
            for dp_id in changed:
                self.switches[dp_id].sent = self._generation
                out.append((dp_id, SyncBarrier(self._generation)))
                if plans[dp_id].makes or plans[dp_id].phases[desired.FLOW_CHANGE]:
                    self._makes_due[dp_id] = self._generation
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

    # ---- confirmation (barrier replies) ------------------------------------------------

    @_locked
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

    @_locked
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
            self._refusals.append(_Refusal(dp_id, generation or state.sent, state.confirmed,
                                           f"{label} refused {described}: {error}"))
            self._confirmations.notify_all()
        return self.request_dumps(dp_id) if dump else []

    @_locked
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

    @_locked
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

    def _refused_for(self, mark: Mark) -> list[_Refusal]:
        """Refusals of what ``mark`` waits for: sent after its switch last confirmed,
        refused before the switch confirmed what the mark asks."""
        return [r for r in self._refusals if r.dp_id in mark
                and r.generation > mark.since.get(r.dp_id, 0) and r.confirmed < mark[r.dp_id]]

    def _lost(self, mark: Mark) -> list[int]:
        return sorted(dp_id for dp_id in mark if dp_id not in self.switches)

    @_locked
    def switch_label(self, dp_id: int) -> str:
        """``s1 (dp 0000000000000001)``: a switch as messages name it."""
        return f"{self.topology.name_of(dp_id)} (dp {dp_id:016x})"

    # ---- queries (northbound API) ------------------------------------------------------

    @_locked
    def hosts_list(self, dp_id: int = 0) -> list[Host]:
        return [h for h in self.hosts.all() if not dp_id or h.dp_id == dp_id]

    @_locked
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

    @_locked
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


def _frame_problem(pkt: packet.Packet, eth) -> str | None:
    """Why a frame from the network cannot be trusted for learning, or None."""
    if eth is None:
        return "no Ethernet header"
    if eth.ethertype == ETH_TYPE_LLDP:
        return None
    if _is_multicast(eth.src) or eth.src == "00:00:00:00:00:00":
        return f"source MAC {eth.src} is not a unicast host address"
    if eth.ethertype == ETH_TYPE_ARP:
        req = pkt.get_protocol(arp_pkt.arp)
        if req is None:
            return "ARP frame without a parseable ARP body"
        if (req.hwtype, req.proto, req.hlen, req.plen) != (1, 0x0800, 6, 4):
            return (f"ARP for hwtype {req.hwtype} proto {req.proto:#x} hlen {req.hlen} plen {req.plen}"
                    " (only Ethernet/IPv4 is served)")
        if req.opcode not in (arp_pkt.ARP_REQUEST, arp_pkt.ARP_REPLY):
            return f"ARP opcode {req.opcode}"
        if req.src_mac.lower() != eth.src.lower():
            return f"ARP sender {req.src_mac} differs from Ethernet source {eth.src}"
    elif eth.ethertype == ETH_TYPE_IP:
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is None:
            return "IPv4 frame without a parseable IPv4 header"
        if ip.version != 4 or ip.header_length < 5 or ip.total_length < ip.header_length * 4:
            return f"IPv4 header inconsistent (version {ip.version}, length {ip.total_length})"
    return None


def _is_multicast(mac: str) -> bool:
    return bool(int(mac.split(":")[0], 16) & 1)


def _hops(hops) -> str:
    return "-".join(str(h.dp_id) for h in hops) if hops else "none"
