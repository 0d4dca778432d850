"""One OpenFlow 1.3 switch in memory, for unit tests: flow, group and meter tables.

``FakeOFTable`` is one switch's multi-table flow store with its group and meter
tables (the idea of Faucet's ``clib/fakeoftable.py``, written from scratch). It takes
the flow-, group- and meter-mods the core emits *after* they have been encoded with a
real os-ken datapath description and parsed back from the wire bytes, so a message
that does not encode, or encodes to something else, cannot pass. It refuses what
Open vSwitch refuses: a flow that uses a missing meter or group, a set_field or match
without its prerequisites, an output to a port beyond OVS's 16-bit port numbers,
adding a group or meter that exists, modifying one that does not, a meter more than
``max_meters`` (if set). A refusal raises
``Refused``, which carries the OpenFlow error type and code OVS 3.1 answers with
(``error_reply`` makes that error as the controller receives it); what cannot be
modelled raises its base, ``FakeSwitchError``. Deleting a group or meter deletes
the flows that use it, as on a switch.

``process(fields)`` walks table 0 and its goto chain the way a switch would: the
highest-priority matching flow wins, set_field rewrites the packet, output sends a
copy as it is at that point, groups pick buckets (select: a deterministic hash of
addresses and ports, weighted; all: every bucket; indirect: its bucket; ff: the
first bucket whose watch port is live), meters are recorded, no matching flow is a
drop, and OpenFlow never outputs a frame back on the port it came in on (unless told
to, with OFPP_IN_PORT). Each copy
that leaves is an ``Egress`` with the headers it leaves with (registers stay behind).
``lookup(fields)`` keeps only where the copies went.

VLAN tags (fast-failover detours): a tagged frame carries ``vlan_vid`` (OFPVID_PRESENT
| VID); an untagged one matches vlan_vid 0. push_vlan, pop_vlan and set_field vlan_vid
run as on OVS, including its check that a flow's pop_vlan or vlan_vid set_field has a
tag guaranteed by the match or a push before it; a second tag is not modelled.

Open vSwitch extensions, as OVS 3.1 runs them: registers (zero on entry), resubmit
(the target table's flow runs, then the actions after it), and learn — a packet that
runs it adds or replaces the learned flow (table, priority, match) with the cookie,
timeouts and actions OVS gives it (fin_timeout, NXM loads, output), and such flows
match later packets (``learned()`` lists them, ``specs()`` leaves them out). Flows
with a learn are checked like OVS checks them (prerequisites of copied fields in the
flow's match, of each learned field in the learned match before it; no immediate
output). A bucket runs as OVS runs it, as an *action set*: its set_fields, then the
last group, else output, else resubmit (pop_vlan and push_vlan first); a learn in a
bucket is accepted and never run.
"""

from __future__ import annotations

import collections
import ipaddress
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

from os_ken.lib.packet.ether_types import ETH_TYPE_IP
from os_ken.ofproto import ofproto_common, ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from controller import flows, groups, meters

CONTROLLER = "controller"


class FakeSwitchError(AssertionError):
    """The core sent something a real switch would reject or that we cannot model."""


class Refused(FakeSwitchError):
    """What a switch refuses with an OpenFlow error: ``type`` and ``code`` are that
    error's (``ofproto_v1_3.OFPET_*`` and its code), as Open vSwitch answers."""

    def __init__(self, text: str, type_: int, code: int):
        super().__init__(text)
        self.type = type_
        self.code = code


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


def error_reply(msg, refused: Refused) -> parser.OFPErrorMsg:
    """The OpenFlow error a switch answers ``msg`` with, as the controller receives it
    (encoded, then parsed by os-ken): ``refused``'s type and code, ``msg``'s xid, and
    ``msg``'s bytes as data (Open vSwitch echoes the whole message)."""
    extra = {"exp_type": refused.code, "experimenter": ofproto_common.ONF_EXPERIMENTER_ID} \
        if refused.type == ofp.OFPET_EXPERIMENTER else {}     # an ONF error: the code is its exp_type
    error = parser.OFPErrorMsg(ProtocolDesc(ofp.OFP_VERSION), type_=refused.type, code=refused.code,
                               data=encode(msg), **extra)
    error.xid = msg.xid
    error.serialize()
    buf = bytes(error.buf)
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    return ofproto_parser.msg(ProtocolDesc(ofp.OFP_VERSION), version, msg_type, msg_len, xid, buf)


def _wire_body(msg, msg_type: int, what: str) -> bytes:
    buf = encode(msg)
    _, got_type, msg_len, _ = ofproto_parser.header(buf)
    if got_type != msg_type or msg_len != len(buf):
        raise FakeSwitchError(f"{what} encoded as type {got_type}, length {msg_len}/{len(buf)}")
    return buf


@dataclass
class WireGroup:
    """A group-mod as parsed from its wire bytes (os-ken has no parser for it)."""
    command: int
    type: int
    group_id: int
    buckets: list


@dataclass
class WireMeter:
    command: int
    flags: int
    meter_id: int
    bands: list


def wire_groupmod(msg: parser.OFPGroupMod) -> WireGroup:
    buf = _wire_body(msg, ofp.OFPT_GROUP_MOD, "group-mod")
    command, type_, group_id = struct.unpack_from(ofp.OFP_GROUP_MOD_PACK_STR, buf, ofp.OFP_HEADER_SIZE)
    return WireGroup(command, type_, group_id, _parts(parser.OFPBucket, buf, ofp.OFP_GROUP_MOD_SIZE))


def wire_metermod(msg: parser.OFPMeterMod) -> WireMeter:
    buf = _wire_body(msg, ofp.OFPT_METER_MOD, "meter-mod")
    command, flags, meter_id = struct.unpack_from(ofp.OFP_METER_MOD_PACK_STR, buf, ofp.OFP_HEADER_SIZE)
    return WireMeter(command, flags, meter_id, _parts(parser.OFPMeterBandHeader, buf, ofp.OFP_METER_MOD_SIZE))


def _parts(cls, buf: bytes, offset: int) -> list:
    """The variable-length parts (buckets, bands) from ``offset`` to the end, parsed by ``cls``."""
    parts = []
    while offset < len(buf):
        part = cls.parser(buf, offset)
        parts.append(part)
        offset += part.len
    return parts


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
        if name not in fields and not _is_reg(name) and name != "vlan_vid":
            return False
        want, mask = _norm_field(name, value)
        have = _packet_value(name, fields)
        if mask is None:
            if have != want:
                return False
        elif have & mask != want & mask:
            return False
    return True


def _actions(flowmod) -> list:
    acts = []
    for inst in flowmod.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            acts += inst.actions
    return acts


def _outputs(flowmod) -> list[int]:
    return [a.port for a in _actions(flowmod) if isinstance(a, parser.OFPActionOutput)]


def _groups(flowmod) -> list[int]:
    return [a.group_id for a in _actions(flowmod) if isinstance(a, parser.OFPActionGroup)]


def _meter(flowmod) -> int | None:
    for inst in flowmod.instructions:
        if isinstance(inst, parser.OFPInstructionMeter):
            return inst.meter_id
    return None


def _is_reg(name: str) -> bool:
    return name.startswith("reg")


def _packet_value(name: str, fields: dict) -> int:
    """A field of the packet as an integer; OVS reads absent fields and registers as 0
    (an untagged frame's vlan_vid is 0, OFPVID_NONE)."""
    return _as_int(name, fields[name]) if name in fields else 0


# Fields learn specs are modelled for: NXM name (os-ken) -> (field, bits); registers too.
_LEARNABLE = {f"{name}_nxm": (name, bits) for name, bits in (
    ("eth_src", 48), ("eth_dst", 48), ("eth_type", 16), ("ip_proto", 8), ("ipv4_src", 32),
    ("ipv4_dst", 32), ("tcp_src", 16), ("tcp_dst", 16), ("udp_src", 16), ("udp_dst", 16))}
_LEARNABLE.update({f"reg{i}": (f"reg{i}", 32) for i in range(16)})


def _learn_field(subfield, n_bits: int) -> str:
    name, ofs = subfield
    field, bits = _LEARNABLE.get(name, (None, None))
    if field is None or ofs != 0 or n_bits > bits or (n_bits != bits and not _is_reg(field)):
        raise FakeSwitchError(f"learn spec on {subfield}/{n_bits} bits not modelled")
    return field


def _user_value(name: str, value: int):
    """An integer field value as os-ken spells it (MAC and IPv4 as strings)."""
    if name in ("eth_src", "eth_dst"):
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    if name in ("ipv4_src", "ipv4_dst"):
        return str(ipaddress.IPv4Address(value))
    return value


# OpenFlow 1.3 prerequisites, as Open vSwitch enforces them on matches and set_field.
_PREREQ = {"ipv4_src": ("eth_type", ETH_TYPE_IP), "ipv4_dst": ("eth_type", ETH_TYPE_IP),
           "ip_proto": ("eth_type", ETH_TYPE_IP), "ip_dscp": ("eth_type", ETH_TYPE_IP),
           "tcp_src": ("ip_proto", 6), "tcp_dst": ("ip_proto", 6),
           "udp_src": ("ip_proto", 17), "udp_dst": ("ip_proto", 17)}
# Open vSwitch numbers ports in 16 bits: an output from here up to OpenFlow 1.3's
# OFPP_MAX is refused (its reserved ports, above, are translated).
OVS_MAX_PORT = 0xFF00
# What a select group hashes: addresses and ports, so different 5-tuples spread.
SELECT_HASH_FIELDS = ("eth_src", "eth_dst", "ipv4_src", "ipv4_dst", "ip_proto",
                      "tcp_src", "tcp_dst", "udp_src", "udp_dst")


def _vlan_problem(match, acts) -> str | None:
    """OVS's ofpacts_check for a flow: pop_vlan and set_field vlan_vid need a tag that
    the match or an earlier push_vlan guarantees."""
    vid = dict(match.items()).get("vlan_vid")
    value, mask = vid if isinstance(vid, tuple) else (vid, ofp.OFPVID_PRESENT)
    tagged = vid is not None and bool(value & mask & ofp.OFPVID_PRESENT)
    for act in acts:
        if isinstance(act, parser.OFPActionPushVlan):
            tagged = True
        elif isinstance(act, parser.OFPActionPopVlan) or (
                isinstance(act, parser.OFPActionSetField) and act.key == "vlan_vid"):
            if not tagged:
                return f"{type(act).__name__} without a guaranteed VLAN tag (OFPBAC_MATCH_INCONSISTENT)"
            tagged = not isinstance(act, parser.OFPActionPopVlan)
    return None


def _prereq_problem(match, fields: list[str]) -> str | None:
    """``match``: an OFPMatch or a dict."""
    have = dict(match.items())
    for name in fields:
        while name in _PREREQ:
            need, value = _PREREQ[name]
            if have.get(need) != value:
                return f"{name} needs {need}={value}"
            name = need
    return None


@dataclass(frozen=True)
class Egress:
    """One copy of a packet leaving a switch: where, with which headers, through which meters."""
    port: int | str                         # port number or CONTROLLER
    fields: tuple[tuple[str, object], ...]
    meters: tuple[int, ...] = ()

    @property
    def headers(self) -> dict:
        return dict(self.fields)


# ---- one switch ---------------------------------------------------------------------------

class FakeOFTable:
    """The flow, group and meter tables of one OpenFlow 1.3 switch."""

    def __init__(self, dp_id: int = 1, live: Callable[[int], bool] | None = None):
        self.dp_id = dp_id
        self.tables: dict[int, list] = collections.defaultdict(list)
        self.groups: dict[int, WireGroup] = {}
        self.meters: dict[int, WireMeter] = {}
        self.live = live or (lambda port_no: True)    # for fast-failover watch ports
        # How many meters the switch holds (None: no limit); OVS has a limit per datapath
        # and refuses one more with OFPMMFC_OUT_OF_METERS.
        self.max_meters: int | None = None

    def copy(self) -> "FakeOFTable":
        """The same switch's tables, to change without changing these (a bundle's trial)."""
        other = FakeOFTable(self.dp_id, self.live)
        other.max_meters = self.max_meters
        other.tables.update({table_id: list(flows_) for table_id, flows_ in self.tables.items()})
        other.groups, other.meters = dict(self.groups), dict(self.meters)
        return other

    # -- changes --

    def apply(self, msg) -> None:
        if isinstance(msg, parser.OFPGroupMod):
            self._group_mod(wire_groupmod(msg))
        elif isinstance(msg, parser.OFPMeterMod):
            self._meter_mod(wire_metermod(msg))
        elif isinstance(msg, parser.OFPFlowMod):
            self._flow_mod(wire_flowmod(msg))
        else:
            raise FakeSwitchError(f"not a flow-, group- or meter-mod: {type(msg).__name__}")

    def _flow_mod(self, fm) -> None:
        if fm.command == ofp.OFPFC_ADD:
            if fm.table_id > ofp.OFPTT_MAX:
                raise Refused(f"dp {self.dp_id}: add to table {fm.table_id} (OFPFMFC_BAD_TABLE_ID)",
                              ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_BAD_TABLE_ID)
            self._check_flow(fm)
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

    def _check_flow(self, fm) -> None:
        meter = _meter(fm)
        if meter is not None and meter not in self.meters:
            raise Refused(f"dp {self.dp_id}: flow uses meter {meter:#x}, which does not exist "
                          f"(OFPMMFC_INVALID_METER)", ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_INVALID_METER)
        what = f"flow {dict(fm.match.items())}"
        self._check_actions(_actions(fm), what)
        problem = _prereq_problem(fm.match, [name for name, _ in fm.match.items()])
        if problem:
            raise Refused(f"dp {self.dp_id}: {what}: {problem} (OFPBMC_BAD_PREREQ)",
                          ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_PREREQ)
        set_fields = [a.key for a in _actions(fm) if isinstance(a, parser.OFPActionSetField)]
        problem = _prereq_problem(fm.match, set_fields)
        problem = problem and f"set_field {problem} (OFPBAC_MATCH_INCONSISTENT)"
        for act in _actions(fm):
            if problem is None and isinstance(act, parser.NXActionLearn):
                problem = self._learn_problem(act, fm.match)
        problem = problem or _vlan_problem(fm.match, _actions(fm))
        if problem:
            raise Refused(f"dp {self.dp_id}: {what}: {problem}", ofp.OFPET_BAD_ACTION,
                          ofp.OFPBAC_MATCH_INCONSISTENT)

    @staticmethod
    def _learn_problem(act, match) -> str | None:
        """OVS's learn_check for a learn in a flow: sources need their prerequisites in
        the flow's match; each learned field in the learned match built before it."""
        learned: dict = {}
        for spec in act.specs:
            if isinstance(spec.src, tuple):
                problem = _prereq_problem(match, [_learn_field(spec.src, spec.n_bits)])
                if problem:
                    return f"learn source {problem} (OFPBAC_MATCH_INCONSISTENT)"
            if isinstance(spec, parser.NXFlowSpecOutput):
                continue
            field = _learn_field(spec.dst, spec.n_bits)
            problem = _prereq_problem(learned, [field])
            if problem:
                return f"learned flow: {problem} (OFPBAC_MATCH_INCONSISTENT)"
            if isinstance(spec, parser.NXFlowSpecMatch):
                learned[field] = 0 if isinstance(spec.src, tuple) else spec.src
        return None

    def _check_actions(self, acts, what: str) -> None:
        for act in acts:
            if isinstance(act, parser.OFPActionGroup) and act.group_id not in self.groups:
                raise Refused(f"dp {self.dp_id}: {what} sends to group {act.group_id:#x}, which "
                              f"does not exist (OFPBAC_BAD_OUT_GROUP)",
                              ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP)
            if isinstance(act, parser.OFPActionOutput) and OVS_MAX_PORT <= act.port <= ofp.OFPP_MAX:
                # OpenFlow 1.3 numbers ports in 32 bits; OVS in 16, below 0xff00 (its OFPP_MAX).
                raise Refused(f"dp {self.dp_id}: {what}: output to port {act.port:#x}, beyond the ports "
                              f"Open vSwitch has (OFPBAC_BAD_OUT_PORT)",
                              ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_PORT)
            if isinstance(act, parser.NXActionLearn) and any(
                    isinstance(spec, parser.NXFlowSpecOutput) and not isinstance(spec.src, tuple)
                    for spec in act.specs):
                raise Refused(f"dp {self.dp_id}: {what}: learn with an immediate output port "
                              f"(OFPBAC_BAD_ARGUMENT: OVS takes learn's output from a field)",
                              ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_ARGUMENT)
            if isinstance(act, parser.OFPActionPushVlan) and act.ethertype not in (0x8100, 0x88A8):
                raise Refused(f"dp {self.dp_id}: {what}: push_vlan {act.ethertype:#x} (OFPBAC_BAD_ARGUMENT)",
                              ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_ARGUMENT)
            if isinstance(act, parser.OFPActionSetField) and act.key == "vlan_vid" \
                    and not act.value & ofp.OFPVID_PRESENT:
                raise Refused(f"dp {self.dp_id}: {what}: set_field vlan_vid {act.value:#x} without "
                              f"OFPVID_PRESENT (OFPBAC_BAD_SET_ARGUMENT)",
                              ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_SET_ARGUMENT)
            if not isinstance(act, (parser.OFPActionOutput, parser.OFPActionGroup, parser.OFPActionSetField,
                                    parser.NXActionLearn, parser.NXActionResubmitTable,
                                    parser.OFPActionPushVlan, parser.OFPActionPopVlan)):
                raise FakeSwitchError(f"dp {self.dp_id}: {what}: action {type(act).__name__} not modelled")

    def _group_mod(self, gm: WireGroup) -> None:
        gid = gm.group_id
        if gm.command == ofp.OFPGC_DELETE:
            doomed = set(self.groups) if gid == ofp.OFPG_ALL else {gid} & set(self.groups)
            for g in doomed:
                del self.groups[g]
                self._remove(ofp.OFPTT_ALL, lambda f, g=g: g in _groups(f))
            return
        if gid > ofp.OFPG_MAX:
            raise Refused(f"dp {self.dp_id}: group id {gid:#x} is reserved (OFPGMFC_INVALID_GROUP)",
                          ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_INVALID_GROUP)
        if gm.command == ofp.OFPGC_ADD and gid in self.groups:
            raise Refused(f"dp {self.dp_id}: group {gid:#x} exists (OFPGMFC_GROUP_EXISTS)",
                          ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS)
        if gm.command == ofp.OFPGC_MODIFY and gid not in self.groups:
            raise Refused(f"dp {self.dp_id}: group {gid:#x} does not exist (OFPGMFC_UNKNOWN_GROUP)",
                          ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP)
        if gm.command not in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):
            raise FakeSwitchError(f"dp {self.dp_id}: group-mod command {gm.command} not modelled")
        if gm.type not in (ofp.OFPGT_ALL, ofp.OFPGT_SELECT, ofp.OFPGT_INDIRECT, ofp.OFPGT_FF):
            raise Refused(f"dp {self.dp_id}: group type {gm.type} (OFPGMFC_BAD_TYPE)",
                          ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_BAD_TYPE)
        if gm.type == ofp.OFPGT_INDIRECT and len(gm.buckets) != 1:
            raise Refused(f"dp {self.dp_id}: indirect group with {len(gm.buckets)} buckets "
                          f"(OFPGMFC_INVALID_GROUP)",
                          ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_INVALID_GROUP)
        for bucket in gm.buckets:
            if gm.type == ofp.OFPGT_FF and bucket.watch_port == ofp.OFPP_ANY \
                    and bucket.watch_group == ofp.OFPG_ANY:
                # (OpenFlow would say OFPGMFC_BAD_WATCH; OVS 3.1 answers this.)
                raise Refused(f"dp {self.dp_id}: ff bucket watches nothing (OFPGMFC_INVALID_GROUP)",
                              ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_INVALID_GROUP)
            self._check_actions(bucket.actions, f"group {gid:#x}")
        self.groups[gid] = gm

    def _meter_mod(self, mm: WireMeter) -> None:
        mid = mm.meter_id
        if mm.command == ofp.OFPMC_DELETE:
            doomed = set(self.meters) if mid == ofp.OFPM_ALL else {mid} & set(self.meters)
            for m in doomed:
                del self.meters[m]
                self._remove(ofp.OFPTT_ALL, lambda f, m=m: _meter(f) == m)
            return
        if not 1 <= mid <= ofp.OFPM_MAX:
            raise Refused(f"dp {self.dp_id}: meter id {mid:#x} (OFPMMFC_INVALID_METER)",
                          ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_INVALID_METER)
        if mm.command == ofp.OFPMC_ADD and mid in self.meters:
            raise Refused(f"dp {self.dp_id}: meter {mid:#x} exists (OFPMMFC_METER_EXISTS)",
                          ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS)
        if mm.command == ofp.OFPMC_MODIFY and mid not in self.meters:
            raise Refused(f"dp {self.dp_id}: meter {mid:#x} does not exist (OFPMMFC_UNKNOWN_METER)",
                          ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_UNKNOWN_METER)
        if mm.command == ofp.OFPMC_ADD and self.max_meters is not None \
                and len(self.meters) >= self.max_meters:
            raise Refused(f"dp {self.dp_id}: meter {mid:#x}: all {self.max_meters} meters in use "
                          f"(OFPMMFC_OUT_OF_METERS)", ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_OUT_OF_METERS)
        if mm.command not in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY):
            raise FakeSwitchError(f"dp {self.dp_id}: meter-mod command {mm.command} not modelled")
        if not mm.bands or not all(isinstance(b, parser.OFPMeterBandDrop) for b in mm.bands):
            # The userspace datapath implements drop bands only (LAB.md).
            raise Refused(f"dp {self.dp_id}: meter {mid:#x} bands "
                          f"{[type(b).__name__ for b in mm.bands]} (OFPMMFC_BAD_BAND)",
                          ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_BAD_BAND)
        if mm.flags & ofp.OFPMF_BURST and not all(b.burst_size for b in mm.bands):
            raise FakeSwitchError(f"dp {self.dp_id}: meter {mid:#x} burst flag with burst 0")
        self.meters[mid] = mm

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

    def dump_groups(self) -> list[parser.OFPGroupDescStats]:
        """What a group-description reply would carry."""
        return [parser.OFPGroupDescStats(type_=g.type, group_id=g.group_id, buckets=g.buckets)
                for _, g in sorted(self.groups.items())]

    def dump_meters(self) -> list[parser.OFPMeterConfigStats]:
        """What a meter-config reply would carry."""
        return [parser.OFPMeterConfigStats(flags=m.flags, meter_id=m.meter_id, bands=m.bands)
                for _, m in sorted(self.meters.items())]

    def learned(self, table_id: int | None = None) -> list:
        """Flows the switch made itself from learn actions (they are in ``dump()`` too)."""
        return [f for f in self.flows(table_id) if getattr(f, "learned", False)]

    def specs(self) -> set[flows.FlowSpec]:
        """The controller's flows as specs (learned flows left out)."""
        return {flows.from_stats(stats) for f, stats in zip(self.flows(), self.dump())
                if not getattr(f, "learned", False)}

    def group_specs(self) -> set[groups.GroupSpec]:
        return {groups.from_stats(stats) for stats in self.dump_groups()}

    def meter_specs(self) -> set[meters.MeterSpec]:
        return {meters.from_stats(stats) for stats in self.dump_meters()}

    def meter_rate_kbps(self, meter_id: int) -> int:
        (band,) = self.meters[meter_id].bands
        return band.rate

    def lookup(self, fields: dict) -> list:
        """Outcomes for a frame with these header fields (``in_port`` included):
        output port numbers and/or ``CONTROLLER``, in action order; [] is a drop."""
        return [egress.port for egress in self.process(fields)]

    def process(self, fields: dict) -> list[Egress]:
        """Every copy of a frame with these header fields that leaves the switch."""
        if "in_port" not in fields:
            raise FakeSwitchError("lookup needs in_port")
        out: list[Egress] = []
        self._walk(0, dict(fields), [], out, 0)
        return out

    def _walk(self, table_id: int, packet_fields: dict, meters_hit: list, out: list, depth: int) -> None:
        """From ``table_id`` along the goto chain (packet_fields rewritten in place)."""
        while True:
            candidates = [f for f in self.tables.get(table_id, ()) if _matches(f.match, packet_fields)]
            if not candidates:
                break               # OpenFlow 1.3 table miss with no miss flow: drop
            best = max(f.priority for f in candidates)
            winners = [f for f in candidates if f.priority == best]
            if len(winners) > 1:
                raise FakeSwitchError(f"dp {self.dp_id} table {table_id}: {len(winners)} flows "
                                      f"at priority {best} match {packet_fields}")
            goto = None
            for inst in winners[0].instructions:
                if isinstance(inst, parser.OFPInstructionGotoTable):
                    goto = inst.table_id
                elif isinstance(inst, parser.OFPInstructionMeter):
                    meters_hit.append(inst.meter_id)
                elif isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS:
                    self._run(inst.actions, packet_fields, meters_hit, out, depth)
                else:
                    raise FakeSwitchError(f"instruction {type(inst).__name__} not modelled")
            if goto is None:
                break
            if goto <= table_id:
                raise FakeSwitchError(f"dp {self.dp_id}: goto {goto} from table {table_id}")
            table_id = goto

    def _run(self, acts, packet_fields: dict, meters_hit: list, out: list, depth: int) -> None:
        """Apply actions in order to packet_fields (rewritten in place)."""
        if depth > 8:
            raise FakeSwitchError(f"dp {self.dp_id}: groups or resubmits nested deeper than 8")
        for act in acts:
            if isinstance(act, parser.OFPActionSetField):
                if act.key == "vlan_vid" and "vlan_vid" not in packet_fields:
                    raise FakeSwitchError(f"dp {self.dp_id}: set_field vlan_vid on an untagged frame")
                packet_fields[act.key] = act.value
            elif isinstance(act, parser.OFPActionPushVlan):
                if "vlan_vid" in packet_fields:
                    raise FakeSwitchError(f"dp {self.dp_id}: push_vlan on a tagged frame (a second tag is "
                                          f"not modelled: the controller never stacks tags)")
                packet_fields["vlan_vid"] = ofp.OFPVID_PRESENT       # VID 0 until a set_field
            elif isinstance(act, parser.OFPActionPopVlan):
                if packet_fields.pop("vlan_vid", None) is None:
                    raise FakeSwitchError(f"dp {self.dp_id}: pop_vlan on an untagged frame")
            elif isinstance(act, parser.NXActionRegLoad):       # what learned flows load
                field, bits = _LEARNABLE[act.dst]
                if act.ofs_nbits != bits - 1:
                    raise FakeSwitchError(f"load of {act.dst} bits {act.ofs_nbits:#x} not modelled")
                packet_fields[field] = _user_value(field, act.value)
            elif isinstance(act, parser.OFPActionOutput):
                if act.port == ofp.OFPP_CONTROLLER:
                    out.append(Egress(CONTROLLER, _frozen(packet_fields), tuple(meters_hit)))
                elif act.port == ofp.OFPP_IN_PORT:
                    out.append(Egress(packet_fields["in_port"], _frozen(packet_fields), tuple(meters_hit)))
                elif act.port != packet_fields["in_port"]:
                    out.append(Egress(act.port, _frozen(packet_fields), tuple(meters_hit)))
            elif isinstance(act, parser.OFPActionGroup):
                for bucket in self._buckets(self.groups[act.group_id], packet_fields):
                    # Each bucket works on its own copy of the packet, as an action set.
                    self._run(_action_set(bucket.actions), dict(packet_fields), list(meters_hit), out,
                              depth + 1)
            elif isinstance(act, parser.NXActionResubmitTable):
                if act.in_port != 0xFFF8:
                    raise FakeSwitchError(f"resubmit with in_port {act.in_port:#x} not modelled")
                self._walk(act.table_id, packet_fields, meters_hit, out, depth + 1)
            elif isinstance(act, parser.NXActionLearn):
                self._learn(act, packet_fields)
            elif not isinstance(act, parser.NXActionFinTimeout):    # fin_timeout: no clock here
                raise FakeSwitchError(f"action {type(act).__name__} not modelled")

    def _learn(self, act, packet_fields: dict) -> None:
        """OVS's learn_execute: add the learned flow, or replace the one with its key."""
        match, actions = {}, []
        if act.fin_idle_timeout or act.fin_hard_timeout:
            actions.append(parser.NXActionFinTimeout(fin_idle_timeout=act.fin_idle_timeout,
                                                     fin_hard_timeout=act.fin_hard_timeout))
        for spec in act.specs:
            value = _packet_value(_learn_field(spec.src, spec.n_bits), packet_fields) \
                if isinstance(spec.src, tuple) else spec.src
            if isinstance(spec, parser.NXFlowSpecOutput):
                port = value & 0xFFFF
                if port < 0xFF00:       # OVS also takes IN_PORT, FLOOD, LOCAL, ALL: not modelled
                    actions.append(parser.OFPActionOutput(port))
                continue
            field = _learn_field(spec.dst, spec.n_bits)
            if isinstance(spec, parser.NXFlowSpecMatch):
                match[field] = _user_value(field, value)
            else:
                actions.append(parser.NXActionRegLoad(ofs_nbits=spec.n_bits - 1, dst=spec.dst[0],
                                                      value=value))
        fm = wire_flowmod(parser.OFPFlowMod(
            datapath=None, cookie=act.cookie, table_id=act.table_id, command=ofp.OFPFC_ADD,
            idle_timeout=act.idle_timeout, hard_timeout=act.hard_timeout, priority=act.priority,
            buffer_id=ofp.OFP_NO_BUFFER, match=parser.OFPMatch(**match),
            instructions=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []))
        fm.learned = True
        self._remove(fm.table_id, lambda f: self._same(f, fm))
        self.tables[fm.table_id].append(fm)

    def _buckets(self, group: WireGroup, packet_fields: dict) -> list:
        if group.type in (ofp.OFPGT_ALL, ofp.OFPGT_INDIRECT):
            return list(group.buckets)
        if group.type == ofp.OFPGT_FF:
            live = [b for b in group.buckets if b.watch_port != ofp.OFPP_ANY and self.live(b.watch_port)]
            return live[:1]
        total = sum(b.weight for b in group.buckets)
        if total == 0:
            return []
        key = repr(tuple((name, str(packet_fields.get(name))) for name in SELECT_HASH_FIELDS))
        point = zlib.crc32(key.encode()) % total
        for bucket in group.buckets:
            if point < bucket.weight:
                return [bucket]
            point -= bucket.weight
        raise AssertionError("unreachable: point < total")


def _frozen(packet_fields: dict) -> tuple:
    """The headers a copy leaves with: registers are the switch's, not the frame's."""
    return tuple(sorted((k, v) for k, v in packet_fields.items() if not _is_reg(k)))


def _action_set(acts) -> list:
    """A bucket's actions as OVS runs them (ofpacts_execute_action_set): the last
    pop_vlan, the last push_vlan, set_fields in order, then the last group, else the
    last output, else the last resubmit."""
    run = [a for kind in (parser.OFPActionPopVlan, parser.OFPActionPushVlan)
           for a in [a for a in acts if isinstance(a, kind)][-1:]]
    run += [a for a in acts if isinstance(a, (parser.OFPActionSetField, parser.NXActionRegLoad))]
    for kind in (parser.OFPActionGroup, parser.OFPActionOutput, parser.NXActionResubmitTable):
        last = [a for a in acts if isinstance(a, kind)][-1:]
        if last:
            return run + last
    return []
