"""An in-memory OpenFlow 1.3 network for unit tests: switches, links and hosts.

``FakeOFTable`` is one switch's multi-table flow store (the idea of Faucet's
``clib/fakeoftable.py``, written from scratch). It takes the flow-mods the core
emits *after* they have been encoded with a real os-ken datapath description and
parsed back from the wire bytes, so a message that does not encode, or encodes to
something else, cannot pass. ``lookup(fields)`` walks table 0 and its goto chain
the way a switch would: the highest-priority matching flow wins, apply-actions
output ports or send to the controller, no matching flow is a drop, and OpenFlow
never outputs a frame back on the port it came in on.

``FakeNetwork`` wires a ``ControllerCore`` to such switches. It connects them,
answers flow-stats requests with what is really in the tables, carries frames
over links and to hosts (LLDP included, so discovery runs for real), hands
table-miss packets to ``core.packet_in`` and installs whatever comes back.
``trace`` and ``walk`` follow a frame through the tables without asking the
controller anything, so a test sees what the installed flows alone would do.
"""

from __future__ import annotations

import collections
import ipaddress
from dataclasses import dataclass, field

from os_ken.lib.packet import arp, ethernet, ipv4, packet
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_LLDP
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from controller import flows
from controller.config import Config, LinkMeta, SwitchMeta, TopologyMeta
from controller.core import ControllerCore
from controller.topology import Port

CONTROLLER = "controller"
MAX_HOPS = 64
MAX_MESSAGES = 20000        # per delivery: more means the controller is in a storm
BROADCAST = "ff:ff:ff:ff:ff:ff"


class FakeSwitchError(AssertionError):
    """The core sent something a real switch would reject or that we cannot model."""


class TraceError(AssertionError):
    """A frame did not get where it should: dropped, sent to the controller, misdelivered."""


class LoopError(TraceError):
    """A frame came back to a switch port it had already entered through."""


# ---- encoding -------------------------------------------------------------------------

def encode(msg) -> bytes:
    """Serialise ``msg`` as it would go on the wire to an OpenFlow 1.3 switch."""
    msg.datapath = ProtocolDesc(ofp.OFP_VERSION)
    msg.serialize()
    return bytes(msg.buf)


def wire_flowmod(msg: parser.OFPFlowMod) -> parser.OFPFlowMod:
    """Encode a flow-mod and parse it back: what the switch actually receives."""
    buf = encode(msg)
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    if msg_type != ofp.OFPT_FLOW_MOD or msg_len != len(buf):
        raise FakeSwitchError(f"flow-mod encoded as type {msg_type}, length {msg_len}/{len(buf)}")
    return ofproto_parser.msg(ProtocolDesc(ofp.OFP_VERSION), version, msg_type, msg_len, xid, buf)


# ---- matching ---------------------------------------------------------------------------

def _as_int(name: str, value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.count(":") == 5:
        return int(value.replace(":", ""), 16)
    if isinstance(value, str) and value.count(".") == 3:
        return int(ipaddress.IPv4Address(value))
    raise FakeSwitchError(f"cannot model a match on {name}={value!r}")


def _norm_field(name: str, value) -> tuple[int, int | None]:
    """(value, mask) as integers; mask None for an exact match."""
    if isinstance(value, tuple):
        val, mask = value
        return _as_int(name, val), _as_int(name, mask)
    return _as_int(name, value), None


def match_key(match: parser.OFPMatch) -> frozenset:
    return frozenset((name, _norm_field(name, value)) for name, value in match.items())


def _matches(match: parser.OFPMatch, fields: dict) -> bool:
    for name, value in match.items():
        if name not in fields:
            return False
        want, mask = _norm_field(name, value)
        have = _as_int(name, fields[name])
        if mask is None:
            if have != want:
                return False
        elif have & mask != want & mask:
            return False
    return True


def _outputs(flowmod) -> list[int]:
    ports = []
    for inst in flowmod.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            ports += [a.port for a in inst.actions if isinstance(a, parser.OFPActionOutput)]
    return ports


def _groups(flowmod) -> list[int]:
    groups = []
    for inst in flowmod.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            groups += [a.group_id for a in inst.actions if isinstance(a, parser.OFPActionGroup)]
    return groups


# ---- one switch ---------------------------------------------------------------------------

class FakeOFTable:
    """The flow tables of one OpenFlow 1.3 switch."""

    def __init__(self, dp_id: int = 1):
        self.dp_id = dp_id
        self.tables: dict[int, list] = collections.defaultdict(list)

    # -- changes --

    def apply(self, msg: parser.OFPFlowMod) -> None:
        if not isinstance(msg, parser.OFPFlowMod):
            raise FakeSwitchError(f"not a flow-mod: {type(msg).__name__}")
        fm = wire_flowmod(msg)
        if fm.command == ofp.OFPFC_ADD:
            if fm.table_id > ofp.OFPTT_MAX:
                raise FakeSwitchError(f"dp {self.dp_id}: add to table {fm.table_id}")
            self._remove(fm.table_id, lambda f: self._same(f, fm))
            self.tables[fm.table_id].append(fm)
        elif fm.command == ofp.OFPFC_DELETE_STRICT:
            self._remove(fm.table_id, lambda f: self._same(f, fm) and self._out_filter(f, fm))
        elif fm.command == ofp.OFPFC_DELETE:
            wanted = match_key(fm.match)
            self._remove(fm.table_id, lambda f: wanted <= match_key(f.match)
                         and self._out_filter(f, fm))
        else:
            raise FakeSwitchError(f"dp {self.dp_id}: flow-mod command {fm.command} not modelled")

    def apply_all(self, msgs) -> None:
        for msg in msgs:
            self.apply(msg)

    @staticmethod
    def _same(a, b) -> bool:
        return a.priority == b.priority and match_key(a.match) == match_key(b.match)

    @staticmethod
    def _out_filter(flow, delete) -> bool:
        # OpenFlow: deletes only touch flows that output to out_port / out_group,
        # unless those are ANY. (A delete left with out_port=0 deletes nothing.)
        if delete.cookie_mask and (flow.cookie & delete.cookie_mask) != (delete.cookie & delete.cookie_mask):
            return False
        if delete.out_port != ofp.OFPP_ANY and delete.out_port not in _outputs(flow):
            return False
        if delete.out_group != ofp.OFPG_ANY and delete.out_group not in _groups(flow):
            return False
        return True

    def _remove(self, table_id: int, doomed) -> None:
        ids = list(self.tables) if table_id == ofp.OFPTT_ALL else [table_id]
        for tid in ids:
            self.tables[tid] = [f for f in self.tables[tid] if not doomed(f)]

    # -- reads --

    def flows(self, table_id: int | None = None) -> list:
        out = []
        for tid in sorted(self.tables):
            if table_id is None or tid == table_id:
                out += sorted(self.tables[tid], key=lambda f: -f.priority)
        return out

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def dump(self) -> list[parser.OFPFlowStats]:
        """What a flow-stats reply for every table would carry."""
        return [parser.OFPFlowStats(table_id=f.table_id, duration_sec=0, duration_nsec=0,
                                    priority=f.priority, idle_timeout=f.idle_timeout,
                                    hard_timeout=f.hard_timeout, flags=f.flags, cookie=f.cookie,
                                    packet_count=0, byte_count=0, match=f.match,
                                    instructions=f.instructions)
                for f in self.flows()]

    def specs(self) -> set[flows.FlowSpec]:
        return {flows.from_stats(stats) for stats in self.dump()}

    def lookup(self, fields: dict) -> list:
        """Outcomes for a frame with these header fields (``in_port`` included):
        output port numbers and/or ``CONTROLLER``, in action order; [] is a drop."""
        if "in_port" not in fields:
            raise FakeSwitchError("lookup needs in_port")
        outcomes: list = []
        table_id = 0
        while True:
            candidates = [f for f in self.tables.get(table_id, ()) if _matches(f.match, fields)]
            if not candidates:
                break               # OpenFlow 1.3 table miss with no miss flow: drop
            best = max(f.priority for f in candidates)
            winners = [f for f in candidates if f.priority == best]
            if len(winners) > 1:
                raise FakeSwitchError(f"dp {self.dp_id} table {table_id}: {len(winners)} flows "
                                      f"at priority {best} match {fields}")
            goto = None
            for inst in winners[0].instructions:
                if isinstance(inst, parser.OFPInstructionGotoTable):
                    goto = inst.table_id
                elif isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS:
                    for act in inst.actions:
                        if not isinstance(act, parser.OFPActionOutput):
                            raise FakeSwitchError(f"action {type(act).__name__} not modelled")
                        if act.port == ofp.OFPP_CONTROLLER:
                            outcomes.append(CONTROLLER)
                        elif act.port != fields["in_port"]:
                            outcomes.append(act.port)
                else:
                    raise FakeSwitchError(f"instruction {type(inst).__name__} not modelled")
            if goto is None:
                break
            if goto <= table_id:
                raise FakeSwitchError(f"dp {self.dp_id}: goto {goto} from table {table_id}")
            table_id = goto
        return outcomes


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
    return fields


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


def config_for(links, capacities: dict | None = None, **discovery) -> Config:
    """A Config whose topology metadata names every switch ``s<dp_id>`` and gives
    link capacities for the switch pairs in ``capacities`` ({(a, b): mbps})."""
    dps = sorted({l[0] for l in links} | {l[2] for l in links})
    meta = TopologyMeta(
        switches=tuple(SwitchMeta(dp_id=dp, name=f"s{dp}") for dp in dps),
        links=tuple(LinkMeta(a=a, b=b, capacity_mbps=mbps)
                    for (a, b), mbps in sorted((capacities or {}).items())))
    data = {"topology": meta.model_dump()}
    if discovery:
        data["controller"] = {"discovery": discovery}
    return Config.model_validate(data)


class FakeNetwork:
    """Switches, links and hosts around a real ``ControllerCore``; time is simulated.

    ``links`` are ``(a_dp, a_port, b_dp, b_port)``; ``hosts`` are ``FakeHost``s.
    Every message the core returns is encoded, then acted on: flow-mods change the
    fake tables, packet-outs put frames on ports, flow-stats requests are answered
    with the switch's real table contents, anything else is recorded in ``sent``.
    """

    TICK_S = 0.25

    def __init__(self, links, hosts, config: Config | None = None, port_speed_mbps: float = 0.0):
        self.links = [tuple(l) for l in links]
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
        self.switches = {dp: FakeOFTable(dp) for dp in self.ports}
        self.connected: set[int] = set()
        self.received: dict[str, list[bytes]] = {name: [] for name in self.hosts}
        self.link_frames: list[tuple[int, int, bytes]] = []     # non-LLDP frames put on links
        self.packet_outs: list[tuple[int, list[int], bytes]] = []
        self.sent: list[tuple[int, object]] = []
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
        return [Port(port_no=p, name=f"s{dp_id}-eth{p}", hw_addr=self.hw_addr(dp_id, p),
                     up=self.up[(dp_id, p)], speed_mbps=self.port_speed_mbps)
                for p in self.ports[dp_id]]

    @staticmethod
    def hw_addr(dp_id: int, port_no: int) -> str:
        return f"0e:00:00:00:{dp_id:02x}:{port_no:02x}"

    def connect(self, dp_id: int) -> None:
        self.connected.add(dp_id)
        self.deliver(self.core.switch_connected(dp_id, self.port_objects(dp_id), self.now))

    def disconnect(self, dp_id: int) -> None:
        self.connected.discard(dp_id)
        self.deliver(self.core.switch_disconnected(dp_id, self.now))

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.deliver(self.core.tick(self.now))
            self.now += self.TICK_S

    def set_port(self, dp_id: int, port_no: int, up: bool) -> None:
        self.up[(dp_id, port_no)] = up
        port = Port(port_no=port_no, name=f"s{dp_id}-eth{port_no}",
                    hw_addr=self.hw_addr(dp_id, port_no), up=up, speed_mbps=self.port_speed_mbps)
        self.deliver(self.core.port_changed(dp_id, port, False, self.now))

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
        self.sent.append((dp_id, msg))
        if isinstance(msg, parser.OFPFlowMod):
            self.switches[dp_id].apply(msg)
            return
        encode(msg)
        if isinstance(msg, parser.OFPPacketOut):
            self._packet_out(dp_id, msg)
        elif isinstance(msg, parser.OFPFlowStatsRequest):
            self._queue.extend(self.core.flows_dumped(dp_id, self.switches[dp_id].dump(), self.now))
        elif not isinstance(msg, (parser.OFPSetConfig, parser.OFPPortStatsRequest,
                                  parser.OFPBarrierRequest, parser.OFPPortDescStatsRequest)):
            raise FakeSwitchError(f"unexpected message to dp {dp_id}: {type(msg).__name__}")

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
        for outcome in self.switches[dp_id].lookup(frame_fields(data, in_port)):
            if outcome == CONTROLLER:
                if dp_id in self.connected:
                    self._queue.extend(self.core.packet_in(dp_id, in_port, data, self.now))
            else:
                self._transmit(dp_id, outcome, data, hops)

    # -- following frames through the tables alone --

    def walk(self, dp_id: int, in_port: int, fields: dict) -> Walk:
        """Every copy of a frame entering at dp_id:in_port, through tables and links."""
        result = Walk()
        todo = [(dp_id, in_port)]
        while todo:
            dp, port = todo.pop(0)
            if (dp, port) in result.entered:
                raise LoopError(f"frame entered {dp}:{port} twice; path so far {result.entered}")
            result.entered.append((dp, port))
            outcomes = self.switches[dp].lookup(dict(fields, in_port=port))
            if not outcomes:
                result.dropped.append((dp, port))
            for outcome in outcomes:
                if outcome == CONTROLLER:
                    result.to_controller.append((dp, port))
                    continue
                if not self.up.get((dp, outcome), False):
                    result.dropped.append((dp, port))
                elif (dp, outcome) in self.host_at:
                    result.delivered.append(self.host_at[(dp, outcome)].name)
                elif (dp, outcome) in self.peer and self.up[self.peer[(dp, outcome)]]:
                    todo.append(self.peer[(dp, outcome)])
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
        """{dp_id: (missing, unexpected)} where a switch's tables differ from what
        the core wants on it now; {} when every connected switch is exact."""
        diffs = {}
        for dp in sorted(self.connected):
            want = set(self.core.desired(dp, self.now).values())
            have = self.switches[dp].specs()
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


def triangle(capacities: dict | None = None, **discovery) -> FakeNetwork:
    """s1, s2, s3 in a ring; host hN on port 3 of sN. Started."""
    return FakeNetwork(TRIANGLE_LINKS, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                       config_for(TRIANGLE_LINKS, capacities, **discovery)).start()


def diamond(capacities: dict | None = None, **discovery) -> FakeNetwork:
    """s1..s4 as a diamond; h1 on s1 port 3, h4 on s4 port 3. Started."""
    return FakeNetwork(DIAMOND_LINKS, hosts_on(("h1", 1, 3), ("h4", 4, 3)),
                       config_for(DIAMOND_LINKS, capacities, **discovery)).start()
