"""An in-memory OpenFlow 1.3 network for unit tests: switches, links and hosts.

Each switch is a ``fakeswitch.FakeOFTable`` (flow, group and meter tables that
refuse what Open vSwitch refuses and run packets the way it does); its names are
re-exported here.

``FakeNetwork`` wires a ``ControllerCore`` to such switches. It connects them,
answers flow, group and meter dumps with what is really in the tables (in parts,
like multipart replies), carries frames over links and to hosts (LLDP included,
so discovery runs for real), hands table-miss packets to ``core.packet_in`` and
installs whatever comes back. Frames rewritten by set_field leave with their bytes
rewritten (checksums recomputed). ``trace`` and ``walk`` follow a frame through the tables without
asking the controller anything, so a test sees what the installed flows alone
would do.

Bundles (``controller.bundles``) are opened, filled, checked and committed as Open
vSwitch does it (``fakebundles.FakeBundles``, ``FakeNetwork.bundles``).

Messages get xids as ``datapath.send_msg`` gives them, and go through the shell's
bookkeeping (``controller.refusals.InFlight``): SyncBarriers are answered by xid.
What a switch refuses fails the test (``FakeSwitchError``: the core sent what it
should not) unless ``REFUSE_WITH_ERRORS`` is on; then the switch answers with the
OpenFlow error Open vSwitch sends (``fakeswitch.error_reply``), before it processes
the next message, and the error goes where the shell sends it
(``controller.refusals.error_received``).
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field

from os_ken.lib.packet import arp, ethernet, ipv4, packet, tcp, udp, vlan
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_LLDP
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import refusals
from controller.bundles import BundleCheck
from controller.config import Config, LinkMeta, SwitchMeta, TopologyMeta
from controller.core import ControllerCore, SyncBarrier
from controller.topology import Port
from tests.lib.fakebundles import FakeBundles
from tests.lib.fakeswitch import (CONTROLLER, Egress, FakeOFTable, FakeSwitchError, Refused, WireGroup,  # noqa: F401
                                  WireMeter, encode, error_reply, match_key, wire_flowmod, wire_groupmod,
                                  wire_metermod)

# FORESIGHT_FAKE_BUNDLES=1: every fake network's core sends bundles (a whole-suite check).
BUNDLES_EVERYWHERE = os.environ.get("FORESIGHT_FAKE_BUNDLES") == "1"
MAX_HOPS = 64
MAX_MESSAGES = 20000        # per delivery: more means the controller is in a storm
BROADCAST = "ff:ff:ff:ff:ff:ff"


class TraceError(AssertionError):
    """A frame did not get where it should: dropped, sent to the controller, misdelivered."""


class LoopError(TraceError):
    """A frame came back to a switch port it had already entered through."""


# ---- frames -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FakeHost:
    name: str
    dp_id: int
    port_no: int
    mac: str
    ip: str


def frame_fields(data: bytes, in_port: int) -> dict:
    pkt = packet.Packet(data)
    eth = pkt.get_protocol(ethernet.ethernet)
    fields = {"in_port": in_port}
    if eth is not None:
        fields.update(eth_src=eth.src, eth_dst=eth.dst, eth_type=eth.ethertype)
    tag = pkt.get_protocol(vlan.vlan)
    if tag is not None:     # OpenFlow's eth_type is the type inside the tag
        fields.update(vlan_vid=ofp.OFPVID_PRESENT | tag.vid, eth_type=tag.ethertype)
    ip = pkt.get_protocol(ipv4.ipv4)
    if ip is not None:
        fields.update(ipv4_src=ip.src, ipv4_dst=ip.dst, ip_proto=ip.proto, ip_dscp=ip.tos >> 2)
        for proto, name in ((tcp.tcp, "tcp"), (udp.udp, "udp")):
            l4 = pkt.get_protocol(proto)
            if l4 is not None:
                fields.update({f"{name}_src": l4.src_port, f"{name}_dst": l4.dst_port})
    return fields


def rewrite(data: bytes, changes: dict) -> bytes:
    """The frame with header fields changed as set_field, push_vlan and pop_vlan would
    (checksums recomputed); ``vlan_vid: None`` removes the tag."""
    if not changes:
        return data
    pkt = packet.Packet(data)
    eth, ip = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4)
    for name, value in changes.items():
        if name == "vlan_vid" and eth is not None:
            _retag(pkt, eth, value)
        elif name in ("eth_src", "eth_dst") and eth is not None:
            setattr(eth, name[4:], value)
        elif name in ("ipv4_src", "ipv4_dst") and ip is not None:
            setattr(ip, name[5:], value)
        elif name == "ip_dscp" and ip is not None:
            ip.tos = (value << 2) | (ip.tos & 3)
        else:
            raise FakeSwitchError(f"cannot rewrite {name} in this frame")
    if ip is not None:
        ip.csum = 0
        for proto in (tcp.tcp, udp.udp):
            l4 = pkt.get_protocol(proto)
            if l4 is not None:
                l4.csum = 0         # covers the IPv4 pseudo-header
    pkt.serialize()
    return bytes(pkt.data)


def _retag(pkt: packet.Packet, eth, vid: int | None) -> None:
    """Push, pop or change the frame's 802.1Q tag (in place)."""
    tag = pkt.get_protocol(vlan.vlan)
    if vid is None:
        if tag is not None:
            eth.ethertype = tag.ethertype
            pkt.protocols.remove(tag)
    elif tag is not None:
        tag.vid = vid & 0xFFF
    else:
        tag = vlan.vlan(vid=vid & 0xFFF, ethertype=eth.ethertype)
        pkt.protocols.insert(pkt.protocols.index(eth) + 1, tag)
        eth.ethertype = 0x8100


def _frame(*protocols) -> bytes:
    pkt = packet.Packet()
    for proto in protocols:
        pkt.add_protocol(proto)
    pkt.serialize()
    return bytes(pkt.data)


def arp_request(src: FakeHost, target_ip: str) -> bytes:
    return _frame(ethernet.ethernet(dst=BROADCAST, src=src.mac, ethertype=ETH_TYPE_ARP),
                  arp.arp(opcode=arp.ARP_REQUEST, src_mac=src.mac, src_ip=src.ip,
                          dst_mac="00:00:00:00:00:00", dst_ip=target_ip))


def arp_reply(src: FakeHost, dst: FakeHost) -> bytes:
    """``src`` answering ``dst``'s request for src.ip."""
    return _frame(ethernet.ethernet(dst=dst.mac, src=src.mac, ethertype=ETH_TYPE_ARP),
                  arp.arp(opcode=arp.ARP_REPLY, src_mac=src.mac, src_ip=src.ip,
                          dst_mac=dst.mac, dst_ip=dst.ip))


def gratuitous_arp(src: FakeHost) -> bytes:
    return arp_request(src, src.ip)


def ipv4_frame(src: FakeHost, dst: FakeHost, payload: bytes = b"foresight") -> bytes:
    return _frame(ethernet.ethernet(dst=dst.mac, src=src.mac, ethertype=ETH_TYPE_IP),
                  ipv4.ipv4(src=src.ip, dst=dst.ip, proto=253), payload)


def udp_frame(src: FakeHost, dst_mac: str, dst_ip: str, src_port: int, dst_port: int,
              payload: bytes = b"foresight") -> bytes:
    """A UDP datagram from a host to any address (a VIP, say)."""
    return _frame(ethernet.ethernet(dst=dst_mac, src=src.mac, ethertype=ETH_TYPE_IP),
                  ipv4.ipv4(src=src.ip, dst=dst_ip, proto=17),
                  udp.udp(src_port=src_port, dst_port=dst_port), payload)


def broadcast_frame(src: FakeHost) -> bytes:
    """A non-ARP broadcast (think DHCP): handled by the flood table, not the controller."""
    return _frame(ethernet.ethernet(dst=BROADCAST, src=src.mac, ethertype=ETH_TYPE_IP),
                  ipv4.ipv4(src="0.0.0.0", dst="255.255.255.255", proto=17))


# ---- the network ----------------------------------------------------------------------------

@dataclass
class Walk:
    """Where one frame went through the tables alone (no controller involvement)."""
    delivered: list[str] = field(default_factory=list)                 # host names
    to_controller: list[tuple[int, int]] = field(default_factory=list)  # (dp_id, in_port)
    dropped: list[tuple[int, int]] = field(default_factory=list)        # (dp_id, in_port)
    entered: list[tuple[int, int]] = field(default_factory=list)        # (dp_id, in_port) in order
    packets: list[tuple[str, dict]] = field(default_factory=list)       # (host, headers) delivered
    meters: set[tuple[int, int]] = field(default_factory=set)           # (dp_id, meter_id) passed


def config_for(links, capacities: dict | None = None, fast_failover: bool = True, drain_s: float = 0.0,
               bundles: bool = False, **discovery) -> Config:
    """A Config whose topology metadata names every switch ``s<dp_id>`` and gives
    link capacities for the switch pairs in ``capacities`` ({(a, b): mbps});
    ``fast_failover`` and ``drain_s`` as ``controller.routing``'s. No drain by
    default: fake switches have no packets in flight and no datapath flow cache, so
    held deletions go as soon as the turn is confirmed (test_barriers tests the drain)."""
    dps = sorted({link[0] for link in links} | {link[2] for link in links})
    meta = TopologyMeta(
        switches=tuple(SwitchMeta(dp_id=dp, name=f"s{dp}") for dp in dps),
        links=tuple(LinkMeta(a=a, b=b, capacity_mbps=mbps)
                    for (a, b), mbps in sorted((capacities or {}).items())))
    routing = {"fast_failover": fast_failover, "drain_s": drain_s}
    data = {"topology": meta.model_dump(),
            "controller": {"routing": routing, "sync": {"bundles": bundles or BUNDLES_EVERYWHERE}}}
    if discovery:
        data["controller"]["discovery"] = discovery
    return Config.model_validate(data)


class FakeNetwork:
    """Switches, links and hosts around a real ``ControllerCore``; time is simulated.

    ``links`` are ``(a_dp, a_port, b_dp, b_port)``; ``hosts`` are ``FakeHost``s.
    Every message the core returns is encoded, then acted on: flow-, group- and
    meter-mods change the fake tables, packet-outs put frames on ports, flow, group
    and meter dumps are answered with the switch's real contents (in parts of
    ``DUMP_PART``, as multipart replies), SyncBarriers are answered (unless
    ``ANSWER_BARRIERS`` is off), everything is recorded in ``sent``, and the
    OpenFlow errors switches answered with (``REFUSE_WITH_ERRORS``) in ``errors``.
    """

    TICK_S = 0.25
    DUMP_PART = 4
    # A switch answers a barrier once it has processed what came before it; the
    # core's SyncBarriers are answered at once unless a test holds them.
    ANSWER_BARRIERS = True
    # What a switch refuses: a failed test (the core should never send it), or, on,
    # the OpenFlow error a real switch answers with, handled as the shell handles it.
    REFUSE_WITH_ERRORS = False

    def __init__(self, links, hosts, config: Config | None = None, port_speed_mbps: float = 0.0):
        self.links = [tuple(link) for link in links]
        self.hosts = {h.name: h for h in hosts}
        self.config = config or config_for(self.links)
        self.core = ControllerCore(self.config)
        self.port_speed_mbps = port_speed_mbps
        self.peer: dict[tuple[int, int], tuple[int, int]] = {}
        for a, pa, b, pb in self.links:
            self.peer[(a, pa)] = (b, pb)
            self.peer[(b, pb)] = (a, pa)
        self.host_at = {(h.dp_id, h.port_no): h for h in hosts}
        self.ports: dict[int, list[int]] = collections.defaultdict(list)
        for dp, port in sorted(set(self.peer) | set(self.host_at)):
            self.ports[dp].append(port)
        self.up = {key: True for key in set(self.peer) | set(self.host_at)}
        self.admin_down: set[tuple[int, int]] = set()     # OFPPC_PORT_DOWN, by port mods or set_admin
        self.switches = {dp: FakeOFTable(dp, live=lambda port, dp=dp: self.up.get((dp, port), False))
                         for dp in self.ports}
        self.bundles = FakeBundles(self.switches, self._refused)
        self.connected: set[int] = set()
        self.received: dict[str, list[bytes]] = {name: [] for name in self.hosts}
        self.link_frames: list[tuple[int, int, bytes]] = []     # non-LLDP frames put on links
        self.packet_outs: list[tuple[int, list[int], bytes]] = []
        self.sent: list[tuple[int, object]] = []
        self.errors: list[tuple[int, parser.OFPErrorMsg]] = []
        # The shell's record of what is in flight, and the xids send_msg would give.
        self.in_flight = refusals.InFlight()
        self._xid = 0
        self.now = 0.0
        self._queue: collections.deque = collections.deque()
        self._draining = False

    # -- set-up --

    def start(self) -> "FakeNetwork":
        """Connect every switch, then run until links and host ports are known."""
        for dp in sorted(self.switches):
            self.connect(dp)
        disc = self.config.controller.discovery
        self.run(max(disc.edge_after_s, disc.lldp_interval_s) + 2 * disc.lldp_interval_s)
        return self

    def port_objects(self, dp_id: int) -> list[Port]:
        return [self._port(dp_id, p) for p in self.ports[dp_id]]

    def _port(self, dp_id: int, port_no: int) -> Port:
        return Port(port_no=port_no, name=f"s{dp_id}-eth{port_no}", hw_addr=self.hw_addr(dp_id, port_no),
                    up=self.up[(dp_id, port_no)], admin_down=(dp_id, port_no) in self.admin_down,
                    speed_mbps=self.port_speed_mbps)

    @staticmethod
    def hw_addr(dp_id: int, port_no: int) -> str:
        return f"0e:00:00:00:{dp_id:02x}:{port_no:02x}"

    def connect(self, dp_id: int) -> None:
        self.connected.add(dp_id)
        self.in_flight.forget(dp_id)
        self.deliver(self.core.switch_connected(dp_id, self.port_objects(dp_id), self.now))

    def disconnect(self, dp_id: int) -> None:
        self.connected.discard(dp_id)
        self.in_flight.forget(dp_id)
        self.deliver(self.core.switch_disconnected(dp_id, self.now))

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.deliver(self.core.tick(self.now))
            self.now += self.TICK_S

    def set_port(self, dp_id: int, port_no: int, up: bool) -> None:
        self.up[(dp_id, port_no)] = up
        self.deliver(self.core.port_changed(dp_id, self._port(dp_id, port_no), False, self.now))

    def set_admin(self, dp_id: int, port_no: int, down: bool) -> None:
        """Someone else (``ovs-ofctl mod-port``) takes a port administratively down or up."""
        self.deliver(self._admin(dp_id, port_no, down, by_controller=False))

    def _admin(self, dp_id: int, port_no: int, down: bool, by_controller: bool) -> list:
        """Set a port's admin state as Open vSwitch does with a veth: the interface goes
        down (or up), so the far end loses (or regains) carrier; each end whose link
        state changed reports a port status to the controller, and so does the port
        itself when someone else changed it (OVS does not tell the controller that sent
        a port mod about the config it changed, OpenFlow 1.0-1.3). Returns the
        controller's answers."""
        key = (dp_id, port_no)
        if (key in self.admin_down) == down:
            return []               # unchanged: no port status
        (self.admin_down.add if down else self.admin_down.discard)(key)
        ends = [key] + ([self.peer[key]] if key in self.peer else [])
        out = []
        for dp, port in ends:
            other = self.peer.get((dp, port))
            up = (dp, port) not in self.admin_down and (other is None or other not in self.admin_down)
            if up != self.up[(dp, port)] or ((dp, port) == key and not by_controller):
                self.up[(dp, port)] = up
                if dp in self.connected:
                    out += self.core.port_changed(dp, self._port(dp, port), False, self.now)
        return out

    def link_down(self, dp_id: int, port_no: int) -> None:
        """Pull the cable: both ends report their port down."""
        self.set_port(dp_id, port_no, False)
        self.set_port(*self.peer[(dp_id, port_no)], False)

    # -- hosts --

    def host(self, name: str) -> FakeHost:
        return self.hosts[name]

    def send(self, name: str, data: bytes) -> None:
        """Host ``name`` puts a frame on its wire."""
        host = self.hosts[name]
        self._arrive(host.dp_id, host.port_no, data, 0)
        self._drain()

    def announce(self, *names: str) -> None:
        for name in names:
            self.send(name, gratuitous_arp(self.hosts[name]))

    def inbox(self, name: str, ethertype: int | None = None) -> list[packet.Packet]:
        pkts = [packet.Packet(d) for d in self.received[name]]
        if ethertype is not None:
            pkts = [p for p in pkts if p.get_protocol(ethernet.ethernet).ethertype == ethertype]
        return pkts

    def clear_inboxes(self) -> None:
        for frames in self.received.values():
            frames.clear()
        self.link_frames.clear()
        self.packet_outs.clear()

    # -- messages from the core --

    def deliver(self, ofmsgs) -> None:
        self._queue.extend(ofmsgs)
        self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        handled = 0
        try:
            while self._queue:
                handled += 1
                if handled > MAX_MESSAGES:
                    self._queue.clear()
                    raise LoopError(f"more than {MAX_MESSAGES} messages from one event: a storm")
                dp_id, msg = self._queue.popleft()
                self._handle(dp_id, msg)
        finally:
            self._draining = False

    def _handle(self, dp_id: int, msg) -> None:
        if dp_id not in self.connected:
            raise FakeSwitchError(f"message for dp {dp_id}, which is not connected: {msg}")
        self._xid += 1
        msg.xid = self._xid             # as datapath.send_msg gives it
        self.sent.append((dp_id, msg))
        self.in_flight.sent(dp_id, msg)
        if isinstance(msg, (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod)):
            try:
                self.switches[dp_id].apply(msg)
            except Refused as refused:
                self._refused(dp_id, msg, refused)
            return
        if isinstance(msg, (parser.ONFBundleCtrlMsg, parser.ONFBundleAddMsg)):
            self.bundles.handle(dp_id, msg)
            return
        if isinstance(msg, BundleCheck):
            self.reply_to_check(dp_id, msg)
            return
        encode(msg)
        if isinstance(msg, parser.OFPPortMod):
            self._port_mod(dp_id, msg)
            return
        switch = self.switches[dp_id]
        if isinstance(msg, parser.OFPPacketOut):
            self._packet_out(dp_id, msg)
        elif isinstance(msg, parser.OFPFlowStatsRequest):
            self._reply_in_parts(dp_id, switch.dump(), self.core.flows_dumped)
        elif isinstance(msg, parser.OFPGroupDescStatsRequest):
            self._reply_in_parts(dp_id, switch.dump_groups(), self.core.groups_dumped)
        elif isinstance(msg, parser.OFPMeterConfigStatsRequest):
            self._reply_in_parts(dp_id, switch.dump_meters(), self.core.meters_dumped)
        elif isinstance(msg, parser.OFPPortDescStatsRequest):
            self._queue.extend(self.core.ports_described(dp_id, self.port_objects(dp_id), self.now))
        elif isinstance(msg, SyncBarrier):
            if self.ANSWER_BARRIERS:
                self.reply_to_barrier(dp_id, msg)
        elif not isinstance(msg, (parser.OFPSetConfig, parser.OFPPortStatsRequest,
                                  parser.OFPGroupStatsRequest, parser.OFPMeterStatsRequest,
                                  parser.OFPBarrierRequest)):
            raise FakeSwitchError(f"unexpected message to dp {dp_id}: {type(msg).__name__}")

    def _port_mod(self, dp_id: int, msg: parser.OFPPortMod) -> None:
        # Open vSwitch refuses an unknown port (OFPPMFC_BAD_PORT) and a hardware address
        # that is not the port's (OFPPMFC_BAD_HW_ADDR): the core should send neither.
        if msg.port_no not in self.ports[dp_id]:
            raise FakeSwitchError(f"port mod for dp {dp_id} port {msg.port_no}, which it does not have")
        if msg.hw_addr != self.hw_addr(dp_id, msg.port_no):
            raise FakeSwitchError(f"port mod for dp {dp_id} port {msg.port_no} with hw_addr {msg.hw_addr}, "
                                  f"not the port's {self.hw_addr(dp_id, msg.port_no)}")
        if msg.mask != ofp.OFPPC_PORT_DOWN or msg.config & ~ofp.OFPPC_PORT_DOWN or msg.advertise:
            raise FakeSwitchError(f"port mod changes more than the admin state: config {msg.config:#x} "
                                  f"mask {msg.mask:#x} advertise {msg.advertise:#x}")
        self._queue.extend(self._admin(dp_id, msg.port_no, bool(msg.config & ofp.OFPPC_PORT_DOWN),
                                       by_controller=True))

    def _refused(self, dp_id: int, msg, refused: Refused) -> None:
        if not self.REFUSE_WITH_ERRORS:
            raise refused
        self.refuse(dp_id, msg, refused)

    def reply_to_check(self, dp_id: int, msg: BundleCheck) -> None:
        """Switch ``dp_id`` answers a bundle's check barrier, as the shell hands it on."""
        checked = self.in_flight.bundle_checked(dp_id, msg.xid)
        if checked is not None:
            self._queue.extend(self.core.bundle_checked(dp_id, *checked, self.now))

    def refuse(self, dp_id: int, msg, refused: Refused) -> None:
        """Switch ``dp_id`` answers ``msg`` (sent) with the OpenFlow error for ``refused``;
        the controller handles it at once, as it arrives before any later reply."""
        error = error_reply(msg, refused)
        self.errors.append((dp_id, error))
        self._queue.extend(refusals.error_received(self.core, self.in_flight, dp_id, error, self.now))

    def reply_to_barrier(self, dp_id: int, msg: parser.OFPBarrierRequest) -> None:
        """Switch ``dp_id`` answers the barrier ``msg`` (sent), matched by xid like the shell does."""
        generation = self.in_flight.barrier_replied(dp_id, msg.xid)
        if generation is not None:
            self._queue.extend(self.core.barrier_replied(dp_id, generation, self.now))

    def _reply_in_parts(self, dp_id: int, body: list, method) -> None:
        parts = [body[i:i + self.DUMP_PART] for i in range(0, len(body), self.DUMP_PART)] or [[]]
        for i, part in enumerate(parts):
            self._queue.extend(method(dp_id, part, self.now, more=i < len(parts) - 1))

    def _packet_out(self, dp_id: int, msg: parser.OFPPacketOut) -> None:
        ports = []
        for act in msg.actions:
            if not isinstance(act, parser.OFPActionOutput):
                raise FakeSwitchError(f"packet-out action {type(act).__name__} not modelled")
            ports.append(act.port)
        self.packet_outs.append((dp_id, ports, bytes(msg.data)))
        for port in ports:
            if port == ofp.OFPP_TABLE:
                self._arrive(dp_id, msg.in_port, bytes(msg.data), 0)
            else:
                self._transmit(dp_id, port, bytes(msg.data), 0)

    # -- frames on wires --

    def _transmit(self, dp_id: int, port_no: int, data: bytes, hops: int) -> None:
        if port_no not in self.ports[dp_id]:
            raise FakeSwitchError(f"dp {dp_id} has no port {port_no}")
        if not self.up[(dp_id, port_no)]:
            return
        host = self.host_at.get((dp_id, port_no))
        if host is not None:
            if frame_fields(data, 0).get("eth_type") != ETH_TYPE_LLDP:
                self.received[host.name].append(data)
            return
        peer = self.peer.get((dp_id, port_no))
        if peer is None or not self.up[peer]:
            return
        if frame_fields(data, 0).get("eth_type") != ETH_TYPE_LLDP:
            self.link_frames.append((dp_id, port_no, data))
        self._arrive(peer[0], peer[1], data, hops + 1)

    def _arrive(self, dp_id: int, in_port: int, data: bytes, hops: int) -> None:
        if hops > MAX_HOPS:
            raise LoopError(f"frame still travelling after {MAX_HOPS} links")
        # A switch without its controller keeps forwarding with the flows it has
        # (OVS fail-mode secure); only its packet-ins are lost.
        before = frame_fields(data, in_port)
        for egress in self.switches[dp_id].process(before):
            after = egress.headers
            changes = {k: v for k, v in after.items() if before.get(k) != v}
            if "vlan_vid" in before and "vlan_vid" not in after:
                changes["vlan_vid"] = None
            frame = rewrite(data, changes)
            if egress.port == CONTROLLER:
                if dp_id in self.connected:
                    self._queue.extend(self.core.packet_in(dp_id, in_port, frame, self.now))
            else:
                self._transmit(dp_id, egress.port, frame, hops)

    # -- following frames through the tables alone --

    def walk(self, dp_id: int, in_port: int, fields: dict) -> Walk:
        """Every copy of a frame entering at dp_id:in_port, through tables and links."""
        result = Walk()
        todo = [(dp_id, in_port, dict(fields))]
        while todo:
            dp, port, headers = todo.pop(0)
            if (dp, port) in result.entered:
                raise LoopError(f"frame entered {dp}:{port} twice; path so far {result.entered}")
            result.entered.append((dp, port))
            copies = self.switches[dp].process(dict(headers, in_port=port))
            if not copies:
                result.dropped.append((dp, port))
            for egress in copies:
                result.meters |= {(dp, m) for m in egress.meters}
                outcome, after = egress.port, egress.headers
                if outcome == CONTROLLER:
                    result.to_controller.append((dp, port))
                    continue
                if not self.up.get((dp, outcome), False):
                    result.dropped.append((dp, port))
                elif (dp, outcome) in self.host_at:
                    result.delivered.append(self.host_at[(dp, outcome)].name)
                    result.packets.append((self.host_at[(dp, outcome)].name, after))
                elif (dp, outcome) in self.peer and self.up[self.peer[(dp, outcome)]]:
                    todo.append((*self.peer[(dp, outcome)], after))
                else:
                    result.dropped.append((dp, port))
        return result

    def trace(self, src: str, dst: str) -> list[int]:
        """dp_ids a unicast frame from host src to host dst crosses; raises if it
        loops, is dropped, reaches the controller or reaches anyone but dst."""
        s, d = self.hosts[src], self.hosts[dst]
        fields = {"eth_src": s.mac, "eth_dst": d.mac, "eth_type": ETH_TYPE_IP}
        walk = self.walk(s.dp_id, s.port_no, fields)
        path = [dp for dp, _ in walk.entered]
        if walk.to_controller:
            raise TraceError(f"{src}->{dst}: sent to the controller at {walk.to_controller} (path {path})")
        if walk.dropped:
            raise TraceError(f"{src}->{dst}: dropped at {walk.dropped} (path {path})")
        if walk.delivered != [dst]:
            raise TraceError(f"{src}->{dst}: delivered to {walk.delivered} (path {path})")
        if len(set(path)) != len(path):
            raise LoopError(f"{src}->{dst}: visits a switch twice: {path}")
        return path

    def out_of_sync(self) -> dict[int, tuple[set, set]]:
        """{dp_id: (missing, unexpected)} where a switch's flows, groups or meters
        differ from what the core wants on it now; {} when every connected switch is exact."""
        diffs = {}
        for dp in sorted(self.connected):
            want_entries = self.core.desired(dp, self.now)
            want = set(want_entries.flows.values()) | set(want_entries.groups.values()) \
                | set(want_entries.meters.values())
            switch = self.switches[dp]
            have = switch.specs() | switch.group_specs() | switch.meter_specs()
            if want != have:
                diffs[dp] = (want - have, have - want)
        return diffs


# ---- shapes used by several test modules ------------------------------------------------------

def hosts_on(*where: tuple[str, int, int]) -> list[FakeHost]:
    return [FakeHost(name, dp, port, f"02:00:00:00:00:{i:02x}", f"10.0.0.{i}")
            for i, (name, dp, port) in enumerate(where, start=1)]


TRIANGLE_LINKS = [(1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 3, 2)]
# Two equal-cost routes from s1 to s4: 1-2-4 and 1-3-4.
DIAMOND_LINKS = [(1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 4, 1), (3, 2, 4, 2)]


def triangle(capacities: dict | None = None, fast_failover: bool = True, **discovery) -> FakeNetwork:
    """s1, s2, s3 in a ring; host hN on port 3 of sN. Started."""
    return FakeNetwork(TRIANGLE_LINKS, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                       config_for(TRIANGLE_LINKS, capacities, fast_failover, **discovery)).start()


def diamond(capacities: dict | None = None, fast_failover: bool = True, **discovery) -> FakeNetwork:
    """s1..s4 as a diamond; h1 on s1 port 3, h4 on s4 port 3. Started."""
    return FakeNetwork(DIAMOND_LINKS, hosts_on(("h1", 1, 3), ("h4", 4, 3)),
                       config_for(DIAMOND_LINKS, capacities, fast_failover, **discovery)).start()
