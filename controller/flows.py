"""Flows as data, and their translation to and from OpenFlow 1.3 messages.

A ``FlowSpec`` is what a manager wants on a switch: table (by name), priority,
match, apply-actions, optional goto, optional meter and the owner's cookie. It is
hashable and comparable, so the desired state of a switch is a plain dict keyed by
``FlowSpec.key`` and reconciliation is a dict diff. ``to_flowmod`` builds the
message without a datapath (Faucet's ``valve_of`` style); ``from_stats`` reads a
flow dumped by a switch back into a ``FlowSpec`` so both sides compare equal.

A ``Learn`` is an Open vSwitch ``learn`` action: a packet that runs it makes the
switch add (or refresh) a flow of its own, matching fields fixed here or copied from
that packet. It pins a TCP connection to the member a select group gave its first
packet (see ``controller.pipeline`` for why the learn sits in a flow of table
``member`` and not in the bucket). Open vSwitch encodes learn specs with NXM field
headers and dumps them that way whatever it was sent, so we send NXM too; learn has
no immediate output port, so ``("learn", Learn(output=p))`` goes on the wire as
``set_field:p->reg7`` followed by the learn with ``output:NXM_NX_REG7[0..15]``, and
``read_actions`` folds the pair back into one action.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline import PIPELINE, Pipeline, PipelineError

# Actions are small tuples so that specs stay hashable:
#   ("output", port_no)  ("controller",)  ("in_port",)  ("group", group_id)  ("set_field", field, value)
#   ("resubmit", table)  ("learn", Learn(...))  ("push_vlan", ethertype)  ("pop_vlan",)
Action = tuple

ACTION_KINDS = frozenset({"output", "controller", "in_port", "group", "set_field", "resubmit", "learn",
                          "push_vlan", "pop_vlan"})
MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src", "tun_ipv4_dst"})
# Open vSwitch registers we set and match (32 bits each): reg6 carries the member a
# select bucket picked, reg5 the virtual network a site's host port belongs to (see
# controller.pipeline).
REG_FIELDS = frozenset({"reg5", "reg6"})
# A flow-based tunnel port takes its key and endpoints from these (Open vSwitch's
# tun_ipv4_src/dst are Nicira extensions; tunnel_id is OpenFlow 1.3's).
TUNNEL_FIELDS = frozenset({"tunnel_id", "tun_ipv4_src", "tun_ipv4_dst"})
# What set_field may rewrite (address rewriting for VIPs, DSCP marking, the member register,
# the VLAN id a fast-failover detour tags frames with, a stitch's tunnel).
SET_FIELDS = frozenset({"eth_src", "eth_dst", "ipv4_src", "ipv4_dst", "ip_dscp", "vlan_vid"}) | REG_FIELDS \
    | TUNNEL_FIELDS
# OpenFlow 1.3 writes vlan_vid with this bit set when a tag is present (in matches and
# in set_field, where Open vSwitch refuses a value without it).
OFPVID_PRESENT = 0x1000
VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8})
# Written just before a learn with an output port: learn reads its port from a field.
LEARN_OUTPUT_REG = "reg7"
# Fields a learned flow may match or load: name -> (os-ken name of its NXM header, bits).
LEARN_FIELDS = {name: (f"{name}_nxm", bits) for name, bits in (
    ("eth_src", 48), ("eth_dst", 48), ("eth_type", 16), ("ip_proto", 8), ("ipv4_src", 32),
    ("ipv4_dst", 32), ("tcp_src", 16), ("tcp_dst", 16), ("udp_src", 16), ("udp_dst", 16))}
_LEARN_NAMES = {nxm: name for name, (nxm, _) in LEARN_FIELDS.items()} | {n: n for n in LEARN_FIELDS}
LEARN_LOADS = frozenset({"eth_src", "eth_dst", "ipv4_src", "ipv4_dst"})
# A learned output port is 16 bits and must be a real port: below OVS's OFPP_MAX, 0xff00.
MAX_LEARN_PORT = 0xFEFF
OFPP_IN_PORT_16 = 0xFFF8        # resubmit's "keep in_port", in NX's 16-bit port space

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
# OpenFlow 1.3 prerequisites (switches refuse a flow that matches or rewrites a
# field without them): field -> (field it needs, value it must have).
PREREQUISITES = {
    "ipv4_src": ("eth_type", ETH_TYPE_IP), "ipv4_dst": ("eth_type", ETH_TYPE_IP),
    "ip_proto": ("eth_type", ETH_TYPE_IP), "ip_dscp": ("eth_type", ETH_TYPE_IP),
    "arp_spa": ("eth_type", ETH_TYPE_ARP), "arp_tpa": ("eth_type", ETH_TYPE_ARP),
    "tcp_src": ("ip_proto", IP_PROTO_TCP), "tcp_dst": ("ip_proto", IP_PROTO_TCP),
    "udp_src": ("ip_proto", IP_PROTO_UDP), "udp_dst": ("ip_proto", IP_PROTO_UDP),
}
_FULL_MASK = "255.255.255.255"


def _norm_ipv4(field: str, value: Any) -> Any:
    """Exact "a.b.c.d", or (network, mask) with host bits cleared; a /32 is exact."""
    try:
        if isinstance(value, tuple):
            net = ipaddress.IPv4Network(f"{value[0]}/{value[1]}", strict=False)
        elif isinstance(value, str) and "/" in value:
            net = ipaddress.IPv4Network(value, strict=False)
        else:
            return str(ipaddress.IPv4Address(value))
    except (ValueError, IndexError, TypeError):
        raise PipelineError(f"{field}: not an IPv4 address or network: {value!r}") from None
    if str(net.netmask) == _FULL_MASK:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def _norm_value(field: str, value: Any) -> Any:
    if field in IPV4_FIELDS:
        return _norm_ipv4(field, value)
    if isinstance(value, (list, tuple)):
        return tuple(_norm_value(field, v) for v in value)
    if field in MAC_FIELDS and isinstance(value, str):
        return value.lower()
    return value


def _norm_match(match: dict[str, Any] | Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    items = match.items() if isinstance(match, dict) else match
    return tuple(sorted((k, _norm_value(k, v)) for k, v in items))


def _check_mac(where: str, value: Any) -> str:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise PipelineError(f"{where}: not a MAC address: {value!r}")
    return value.lower()


def _one_ipv4(where: str, field: str, value: Any) -> str:
    if isinstance(value, tuple) or (isinstance(value, str) and "/" in value):
        raise PipelineError(f"{where}: needs one address, got {value!r}")
    return _norm_ipv4(field, value)


def _is_uint(value: Any, bits: int) -> bool:
    return type(value) is int and 0 <= value < 1 << bits


def _norm_set_field(field: str, value: Any) -> Any:
    if field not in SET_FIELDS:
        raise PipelineError(f"set_field {field!r} not supported (allowed: {sorted(SET_FIELDS)})")
    if field in MAC_FIELDS:
        return _check_mac(f"set_field {field}", value)
    if field in IPV4_FIELDS:
        return _one_ipv4(f"set_field {field}", field, value)
    if field == "tunnel_id":
        if not _is_uint(value, 64):
            raise PipelineError(f"set_field tunnel_id: {value!r} is not a 64-bit tunnel key")
        return value
    if field in REG_FIELDS:
        if not _is_uint(value, 32):
            raise PipelineError(f"set_field {field}: {value!r} is not a 32-bit register value")
        return value
    if field == "vlan_vid":
        if not _is_uint(value, 13) or not value & OFPVID_PRESENT or value & 0xFFF in (0, 0xFFF):
            raise PipelineError(f"set_field vlan_vid: {value!r} is not OFPVID_PRESENT | a VLAN id 1..4094")
        return value
    if not _is_uint(value, 6):
        raise PipelineError(f"set_field ip_dscp: {value!r} is not a DSCP value 0..63")
    return value


# ---- learn ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Learn:
    """An NX learn action: the flow the switch adds to ``table`` when a packet runs it.

    ``fixed`` are match fields with given values, ``copied`` match fields whose values
    come from that packet, ``loads`` the learned flow's rewrites and ``output`` its
    output port (None: the learned flow drops). Timeouts are in seconds; the fin
    timeouts shorten the idle/hard timeout once the flow sees a TCP FIN or RST.
    Build one with ``learn()``: it checks the learned flow against the pipeline."""

    table: str
    priority: int
    cookie: int
    idle_timeout: int = 0
    hard_timeout: int = 0
    fin_idle_timeout: int = 0
    fin_hard_timeout: int = 0
    fixed: tuple[tuple[str, Any], ...] = ()
    copied: tuple[str, ...] = ()
    loads: tuple[tuple[str, Any], ...] = ()
    output: int | None = None

    def describe(self) -> str:
        timeouts = "".join(f" {name}={value}s" for name, value in (
            ("idle", self.idle_timeout), ("hard", self.hard_timeout),
            ("fin_idle", self.fin_idle_timeout), ("fin_hard", self.fin_hard_timeout)) if value)
        match = ",".join(f"{k}={v}" for k, v in self.fixed) or "*"
        if self.copied:
            match += " copy " + ",".join(self.copied)
        acts = [f"{k}:={v}" for k, v in self.loads]
        acts += [f"output:{self.output}"] if self.output is not None else []
        return (f"learn({self.table}/{self.priority} cookie={self.cookie:#x}{timeouts} {match} -> "
                f"{','.join(acts) or 'drop'})")


def _pairs(value: Any) -> tuple:
    return tuple(value.items()) if isinstance(value, dict) else tuple(value)


def _learn_value(where: str, field: str, value: Any) -> Any:
    if field in MAC_FIELDS:
        return _check_mac(f"{where}: {field}", value)
    if field in IPV4_FIELDS:
        return _one_ipv4(f"{where}: {field}", field, value)
    bits = LEARN_FIELDS[field][1]
    if not _is_uint(value, bits):
        raise PipelineError(f"{where}: {field}={value!r} is not a {bits}-bit value")
    return value


def _check_learn(learn: Any, pipeline: Pipeline) -> Learn:
    """``learn`` checked against the pipeline and normalised (sorted, values canonical)."""
    if not isinstance(learn, Learn):
        raise PipelineError(f"learn: {learn!r} is not a Learn (build one with flows.learn)")
    table = pipeline.table(learn.table)
    where = f"learn into {table.name}"
    limits = [("priority", learn.priority, 16), ("cookie", learn.cookie, 64)] + [
        (name, getattr(learn, name), 16)
        for name in ("idle_timeout", "hard_timeout", "fin_idle_timeout", "fin_hard_timeout")]
    for name, value, bits in limits:
        if not _is_uint(value, bits):
            raise PipelineError(f"{where}: {name} {value!r} out of range 0..{(1 << bits) - 1:#x}")
    try:
        pairs = _pairs(learn.fixed), _pairs(learn.loads)
        fixed, loads = (dict(p) for p in pairs)
        copied = tuple(learn.copied) if not isinstance(learn.copied, str) else None
    except (TypeError, ValueError):
        raise PipelineError(f"{where}: fixed and loads are (field, value) pairs") from None
    if (len(fixed), len(loads)) != tuple(len(p) for p in pairs):
        raise PipelineError(f"{where}: a field is fixed or loaded twice: {pairs!r}")
    if copied is None or len(set(copied)) != len(copied) or set(copied) & set(fixed):
        raise PipelineError(f"{where}: copied {learn.copied!r} must name distinct fields, none fixed")
    for field in list(fixed) + list(copied):
        if field not in LEARN_FIELDS:
            raise PipelineError(f"{where}: cannot match {field!r} in a learned flow "
                                f"(learnable: {sorted(LEARN_FIELDS)})")
        if field not in table.match_fields:
            raise PipelineError(f"{where}: match field {field!r} not declared in table {table.name} "
                                f"(allowed: {sorted(table.match_fields)})")
    for field in loads:
        if field not in LEARN_LOADS:
            raise PipelineError(f"{where}: cannot load {field!r} (loadable: {sorted(LEARN_LOADS)})")
    fixed = {f: _learn_value(where, f, v) for f, v in fixed.items()}
    loads = {f: _learn_value(f"{where} load", f, v) for f, v in loads.items()}
    used = [(f, "matches") for f in sorted(fixed) + sorted(copied)] + [(f, "loads") for f in sorted(loads)]
    for field, what in used:
        missing = missing_prerequisite(field, fixed)
        if missing:
            raise PipelineError(f"{where}: the learned flow {what} {field}, which needs "
                                f"{missing[0]}={missing[1]:#x} fixed (OpenFlow prerequisite)")
    port = learn.output
    if port is not None and not (_is_uint(port, 16) and 1 <= port <= MAX_LEARN_PORT):
        raise PipelineError(f"{where}: output {learn.output!r} is not a port 1..{MAX_LEARN_PORT:#x}")
    return Learn(table.name, learn.priority, learn.cookie, learn.idle_timeout, learn.hard_timeout,
                 learn.fin_idle_timeout, learn.fin_hard_timeout, tuple(sorted(fixed.items())),
                 tuple(sorted(copied)), tuple(sorted(loads.items())), learn.output)


def learn(table: str, priority: int, cookie: int, fixed: dict[str, Any] | Iterable[tuple[str, Any]] = (),
          copied: Iterable[str] = (), loads: dict[str, Any] | Iterable[tuple[str, Any]] = (),
          output: int | None = None, idle_timeout: int = 0, hard_timeout: int = 0,
          fin_idle_timeout: int = 0, fin_hard_timeout: int = 0, pipeline: Pipeline = PIPELINE) -> Learn:
    """A Learn whose learned flow fits ``table``: every field learnable and declared
    there, and OpenFlow's prerequisites met by ``fixed`` (copying tcp_src needs
    eth_type=0x0800 and ip_proto=6 fixed). Use it as the action ``("learn", ...)``."""
    return _check_learn(Learn(table, priority, cookie, idle_timeout, hard_timeout, fin_idle_timeout,
                              fin_hard_timeout, _pairs(fixed), copied if isinstance(copied, str)
                              else tuple(copied), _pairs(loads), output), pipeline)


def learns(actions: Iterable[Action]) -> tuple[Learn, ...]:
    return tuple(a[1] for a in actions if a[0] == "learn")


def _learn_int(field: str, value: Any) -> int:
    if field in MAC_FIELDS:
        return int(value.replace(":", ""), 16)
    if field in IPV4_FIELDS:
        return int(ipaddress.IPv4Address(value))
    return value


def _learn_user(field: str, value: int) -> Any:
    if field in MAC_FIELDS:
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    if field in IPV4_FIELDS:
        return str(ipaddress.IPv4Address(value))
    return value


def _prerequisite_depth(field: str) -> int:
    depth = 0
    while field in PREREQUISITES:
        field, depth = PREREQUISITES[field][0], depth + 1
    return depth


def _ofp_learn(spec: Learn, pipeline: Pipeline) -> list:
    def nxm(field: str) -> dict:
        return {"dst": (LEARN_FIELDS[field][0], 0), "n_bits": LEARN_FIELDS[field][1]}

    # Open vSwitch checks each learned match field's prerequisites against the fields
    # before it, so fixed fields go first, prerequisites before what needs them.
    by_depth = sorted(spec.fixed, key=lambda fv: (_prerequisite_depth(fv[0]), fv[0]))
    specs = [parser.NXFlowSpecMatch(src=_learn_int(f, v), **nxm(f)) for f, v in by_depth]
    specs += [parser.NXFlowSpecMatch(src=(LEARN_FIELDS[f][0], 0), **nxm(f)) for f in spec.copied]
    specs += [parser.NXFlowSpecLoad(src=_learn_int(f, v), **nxm(f)) for f, v in spec.loads]
    out = []
    if spec.output is not None:
        out.append(parser.OFPActionSetField(**{LEARN_OUTPUT_REG: spec.output}))
        specs.append(parser.NXFlowSpecOutput(src=(LEARN_OUTPUT_REG, 0), n_bits=16))
    out.append(parser.NXActionLearn(
        table_id=pipeline.table(spec.table).table_id, specs=specs, idle_timeout=spec.idle_timeout,
        hard_timeout=spec.hard_timeout, priority=spec.priority, cookie=spec.cookie, flags=0,
        fin_idle_timeout=spec.fin_idle_timeout, fin_hard_timeout=spec.fin_hard_timeout))
    return out


def _learned_field(subfield: Any, n_bits: int) -> str:
    name, ofs = subfield if isinstance(subfield, tuple) else (None, None)
    field = _LEARN_NAMES.get(name)
    if field is None or ofs != 0 or n_bits != LEARN_FIELDS[field][1]:
        raise ForeignFlow(f"learn spec on {subfield!r}/{n_bits} bits")
    return field


def _read_learn(act, port: int | None, pipeline: Pipeline) -> Learn:
    """A dumped NXActionLearn (and the output port loaded just before it) as a Learn."""
    table = pipeline.table_by_id(act.table_id)
    if table is None or act.flags:
        raise ForeignFlow(f"learn into table {act.table_id} with flags {act.flags:#x}")
    fixed, copied, loads, output = [], [], [], None
    for spec in act.specs:
        if isinstance(spec, parser.NXFlowSpecOutput):
            if spec.src != (LEARN_OUTPUT_REG, 0) or spec.n_bits != 16 or port is None or output is not None:
                raise ForeignFlow(f"learn output from {spec.src!r}")
            output = port
            continue
        field = _learned_field(spec.dst, spec.n_bits)
        if isinstance(spec, parser.NXFlowSpecMatch) and isinstance(spec.src, tuple):
            if _learned_field(spec.src, spec.n_bits) != field:
                raise ForeignFlow(f"learn matches {field} on another field {spec.src!r}")
            copied.append(field)
        elif isinstance(spec.src, tuple):
            raise ForeignFlow(f"learn loads {field} from {spec.src!r}")
        else:
            into = fixed if isinstance(spec, parser.NXFlowSpecMatch) else loads
            into.append((field, _learn_user(field, spec.src)))
    if port is not None and output is None:
        raise ForeignFlow(f"{LEARN_OUTPUT_REG} set before a learn that does not output it")
    try:
        return _check_learn(Learn(table.name, act.priority, act.cookie, act.idle_timeout, act.hard_timeout,
                                  act.fin_idle_timeout, act.fin_hard_timeout, tuple(fixed), tuple(copied),
                                  tuple(loads), output), pipeline)
    except PipelineError as err:
        raise ForeignFlow(str(err)) from None


# ---- actions ----------------------------------------------------------------------------------

def describe_actions(actions: Iterable[Action]) -> str:
    return ",".join(a[1].describe() if a[0] == "learn" else ":".join(str(p) for p in a) for a in actions)


def check_actions(actions: Iterable[Action], pipeline: Pipeline = PIPELINE) -> tuple[Action, ...]:
    """Validate and normalise actions (flows and group buckets share them)."""
    out = []
    for action in actions:
        action = tuple(action) if isinstance(action, (list, tuple)) else (action,)
        kind = action[0] if action else None
        if kind == "output" or kind == "group":
            limit = ofp.OFPP_MAX if kind == "output" else ofp.OFPG_MAX
            if len(action) != 2 or type(action[1]) is not int or not 0 <= action[1] <= limit:
                raise PipelineError(f"action {action!r}: needs one {kind} number 0..{limit:#x}")
        elif kind in ("controller", "in_port"):
            # in_port: back out of the port the frame came in on (a plain output there drops).
            if len(action) != 1:
                raise PipelineError(f"action {action!r}: {kind} takes no argument")
        elif kind == "set_field":
            if len(action) != 3:
                raise PipelineError(f"action {action!r}: set_field takes a field and a value")
            action = ("set_field", action[1], _norm_set_field(action[1], action[2]))
        elif kind == "resubmit":
            if len(action) != 2:
                raise PipelineError(f"action {action!r}: resubmit takes one table name")
            action = ("resubmit", pipeline.resubmit_target(action[1]).name)
        elif kind == "learn":
            if len(action) != 2:
                raise PipelineError(f"action {action!r}: learn takes one Learn")
            action = ("learn", _check_learn(action[1], pipeline))
        elif kind == "push_vlan":
            if len(action) != 2 or action[1] not in VLAN_ETHERTYPES:
                raise PipelineError(f"action {action!r}: push_vlan takes one ethertype "
                                    f"({', '.join(f'{t:#x}' for t in sorted(VLAN_ETHERTYPES))})")
        elif kind == "pop_vlan":
            if len(action) != 1:
                raise PipelineError(f"action {action!r}: pop_vlan takes no argument")
        else:
            raise PipelineError(f"unknown action {action!r} (known: {sorted(ACTION_KINDS)})")
        out.append(action)
    return tuple(out)


def group_refs(actions: Iterable[Action]) -> frozenset[int]:
    return frozenset(a[1] for a in actions if a[0] == "group")


def missing_prerequisite(field: str, have: dict[str, Any]) -> tuple[str, int] | None:
    """The first (field, value) in ``field``'s prerequisite chain that ``have`` lacks."""
    while field in PREREQUISITES:
        need, value = PREREQUISITES[field]
        if have.get(need) != value:
            return need, value
        field = need
    return None


def _check_prerequisites(match: tuple[tuple[str, Any], ...], actions: tuple[Action, ...]) -> None:
    needed = [(f, "match") for f, _ in match if f in PREREQUISITES]
    needed += [(a[1], "set_field") for a in actions if a[0] == "set_field" and a[1] in PREREQUISITES]
    # Open vSwitch refuses a learn copying a field the flow's match does not guarantee.
    needed += [(f, "learn (copied)") for spec in learns(actions) for f in spec.copied if f in PREREQUISITES]
    if not needed:
        return
    have = dict(match)
    for field, where in needed:
        missing = missing_prerequisite(field, have)
        if missing:
            raise PipelineError(f"{where} on {field} needs {missing[0]}={missing[1]:#x} in the match "
                                f"(OpenFlow prerequisite)")


def _check_vlan(match: tuple[tuple[str, Any], ...], actions: tuple[Action, ...]) -> None:
    """Open vSwitch refuses (OFPBAC_MATCH_INCONSISTENT) a pop_vlan or a vlan_vid
    set_field where the match and the actions before it do not guarantee a tag."""
    vid = dict(match).get("vlan_vid")
    value, mask = vid if isinstance(vid, tuple) else (vid, OFPVID_PRESENT)
    tagged = vid is not None and bool(value & mask & OFPVID_PRESENT)
    for action in actions:
        if action[0] == "push_vlan":
            tagged = True
        elif action[0] == "pop_vlan" or (action[0] == "set_field" and action[1] == "vlan_vid"):
            if not tagged:
                raise PipelineError(f"{describe_actions([action])} needs a VLAN tag: match vlan_vid with "
                                    f"OFPVID_PRESENT or push_vlan first")
            tagged = action[0] != "pop_vlan"


@dataclass(frozen=True)
class FlowSpec:
    table: str
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...] = ()
    goto: str | None = None
    cookie: int = 0
    meter: int | None = None

    @cached_property
    def key(self) -> tuple[str, int, tuple]:
        """Identity of a flow on a switch: OpenFlow's (table, priority, match).
        Computed once: every resync looks each wanted flow up by it."""
        return (self.table, self.priority, self.match)

    @property
    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)

    @cached_property
    def groups(self) -> frozenset[int]:
        """Group ids this flow sends to: they must exist on the switch before it."""
        return group_refs(self.actions)

    @cached_property
    def learns(self) -> tuple[Learn, ...]:
        """The learn actions: the flows they make need a ``learned`` cookie."""
        return learns(self.actions)

    def describe(self) -> str:
        match = ",".join(f"{k}={v}" for k, v in self.match) or "*"
        acts = describe_actions(self.actions)
        if self.goto:
            acts = (acts + "," if acts else "") + f"goto:{self.goto}"
        if self.meter is not None:
            acts = f"meter:{self.meter:#x}" + ("," + acts if acts else "")
        return f"{self.table}/{self.priority} {match} -> {acts or 'drop'}"


def overlap(a: FlowSpec, b: FlowSpec) -> bool:
    """True if some packet matches both flows' matches (fields only one of them names
    are wildcards there; masked values overlap where both masks care and agree)."""
    other = dict(b.match)
    for name, value in a.match:
        if name not in other:
            continue
        va, ma = _bits(name, value)
        vb, mb = _bits(name, other[name])
        if (va ^ vb) & ma & mb:
            return False
    return True


def _bits(name: str, value: Any) -> tuple[int, int]:
    """A normalised match value as (value, mask) integers."""
    if isinstance(value, tuple):
        (v, _), (m, _) = _bits(name, value[0]), _bits(name, value[1])
        return v & m, m
    if isinstance(value, str) and name in MAC_FIELDS:
        return int(value.replace(":", ""), 16), (1 << 48) - 1
    if isinstance(value, str):
        return int(ipaddress.IPv4Address(value)), (1 << 32) - 1
    return int(value), (1 << 64) - 1


def flow(table: str, priority: int, match: dict[str, Any] | None = None,
         actions: Iterable[Action] = (), goto: str | None = None, cookie: int = 0,
         meter: int | None = None, pipeline: Pipeline = PIPELINE) -> FlowSpec:
    """Make a FlowSpec, checked against the declared pipeline and OpenFlow's
    prerequisites (an IPv4 match or rewrite needs eth_type=0x0800 in the match)."""
    match = match or {}
    declared = pipeline.check(table, set(match), goto)
    if not 0 <= priority <= 0xFFFF:
        raise PipelineError(f"priority {priority} out of range 0..65535")
    if meter is not None and (not isinstance(meter, int) or not 1 <= meter <= ofp.OFPM_MAX):
        raise PipelineError(f"meter {meter!r} out of range 1..{ofp.OFPM_MAX:#x}")
    norm = _norm_match(match)
    acts = check_actions(actions, pipeline)
    if declared.resubmit_target and any(a[0] == "resubmit" for a in acts):
        raise PipelineError(f"table {table}: its flows may not resubmit (it is a resubmit target)")
    _check_prerequisites(norm, acts)
    _check_vlan(norm, acts)
    return FlowSpec(table, priority, norm, acts, goto, cookie, meter)


def miss_flows(cookie: int = 0, pipeline: Pipeline = PIPELINE,
               tables: Iterable[str] | None = None) -> list[FlowSpec]:
    """Each table's priority-0 catch-all doing what its declaration says (drop,
    controller or goto), so no miss falls to the switch's own default; ``tables``:
    only these (default: every declared table)."""
    out = []
    only = None if tables is None else set(tables)
    for table in pipeline.tables:
        if only is not None and table.name not in only:
            continue
        goto = table.miss[len("goto:"):] if table.miss.startswith("goto:") else None
        actions = [("controller",)] if table.miss == "controller" else []
        out.append(flow(table.name, 0, {}, actions, goto=goto, cookie=cookie, pipeline=pipeline))
    return out


def ofp_actions(actions: tuple[Action, ...], pipeline: Pipeline = PIPELINE) -> list:
    """Action tuples as os-ken action objects (flows, buckets and packet-outs)."""
    out = []
    for action in actions:
        kind = action[0]
        if kind == "output":
            out.append(parser.OFPActionOutput(action[1]))
        elif kind == "controller":
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
        elif kind == "in_port":
            out.append(parser.OFPActionOutput(ofp.OFPP_IN_PORT))
        elif kind == "group":
            out.append(parser.OFPActionGroup(action[1]))
        elif kind == "set_field":
            out.append(parser.OFPActionSetField(**{action[1]: action[2]}))
        elif kind == "resubmit":
            out.append(parser.NXActionResubmitTable(in_port=OFPP_IN_PORT_16,
                                                    table_id=pipeline.table(action[1]).table_id))
        elif kind == "learn":
            out += _ofp_learn(action[1], pipeline)
        elif kind == "push_vlan":
            out.append(parser.OFPActionPushVlan(action[1]))
        elif kind == "pop_vlan":
            out.append(parser.OFPActionPopVlan())
    return out


def to_flowmod(spec: FlowSpec, pipeline: Pipeline = PIPELINE) -> parser.OFPFlowMod:
    instructions = []
    if spec.meter is not None:
        instructions.append(parser.OFPInstructionMeter(spec.meter))
    actions = ofp_actions(spec.actions, pipeline)
    if actions:
        instructions.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if spec.goto:
        instructions.append(parser.OFPInstructionGotoTable(pipeline.table(spec.goto).table_id))
    return parser.OFPFlowMod(
        datapath=None, cookie=spec.cookie, table_id=pipeline.table(spec.table).table_id,
        command=ofp.OFPFC_ADD, priority=spec.priority, buffer_id=ofp.OFP_NO_BUFFER,
        match=parser.OFPMatch(**spec.match_dict), instructions=instructions)


def to_delete(spec: FlowSpec, pipeline: Pipeline = PIPELINE) -> parser.OFPFlowMod:
    """A strict delete of exactly this flow (table, priority, match)."""
    return parser.OFPFlowMod(
        datapath=None, table_id=pipeline.table(spec.table).table_id,
        command=ofp.OFPFC_DELETE_STRICT, priority=spec.priority,
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**spec.match_dict))


def delete_stats(stats: parser.OFPFlowStats) -> parser.OFPFlowMod:
    """A strict delete of a dumped flow, whatever it holds (used for foreign flows)."""
    return parser.OFPFlowMod(datapath=None, table_id=stats.table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=stats.priority, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=stats.match)


def delete_all(table_id: int = ofp.OFPTT_ALL) -> parser.OFPFlowMod:
    return parser.OFPFlowMod(datapath=None, table_id=table_id, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


class ForeignFlow(Exception):
    """A dumped flow uses something our specs never produce (unknown table, action)."""


def read_actions(acts, pipeline: Pipeline = PIPELINE) -> tuple[Action, ...]:
    """os-ken action objects back into action tuples; ForeignFlow if we never make one."""
    actions: list[Action] = []
    acts = list(acts)
    for i, act in enumerate(acts):
        if isinstance(act, parser.NXActionLearn):
            loaded = acts[i - 1] if i else None
            port = loaded.value if isinstance(loaded, parser.OFPActionSetField) \
                and loaded.key == LEARN_OUTPUT_REG else None
            actions.append(("learn", _read_learn(act, port, pipeline)))
        elif isinstance(act, parser.OFPActionSetField) and act.key == LEARN_OUTPUT_REG:
            if not (i + 1 < len(acts) and isinstance(acts[i + 1], parser.NXActionLearn)):
                raise ForeignFlow(f"set_field {LEARN_OUTPUT_REG} not followed by a learn")
        elif isinstance(act, parser.NXActionResubmitTable):
            table = pipeline.table_by_id(act.table_id)
            if table is None or not table.resubmit_target or act.in_port != OFPP_IN_PORT_16:
                raise ForeignFlow(f"resubmit({act.in_port:#x},{act.table_id})")
            actions.append(("resubmit", table.name))
        elif isinstance(act, parser.OFPActionOutput):
            if act.port == ofp.OFPP_CONTROLLER:
                actions.append(("controller",))
            elif act.port == ofp.OFPP_IN_PORT:
                actions.append(("in_port",))
            else:
                actions.append(("output", act.port))
        elif isinstance(act, parser.OFPActionGroup):
            actions.append(("group", act.group_id))
        elif isinstance(act, parser.OFPActionPushVlan):
            actions.append(("push_vlan", act.ethertype))
        elif isinstance(act, parser.OFPActionPopVlan):
            actions.append(("pop_vlan",))
        elif isinstance(act, parser.OFPActionSetField):
            try:
                actions.append(("set_field", act.key, _norm_value(act.key, act.value)))
            except PipelineError as err:
                raise ForeignFlow(str(err)) from None
        else:
            raise ForeignFlow(f"action {type(act).__name__}")
    return tuple(actions)


def from_stats(stats: parser.OFPFlowStats, pipeline: Pipeline = PIPELINE) -> FlowSpec:
    """Read a dumped flow into a FlowSpec; raise ForeignFlow if it can't be ours."""
    table = pipeline.table_by_id(stats.table_id)
    if table is None:
        raise ForeignFlow(f"table {stats.table_id} is not in the pipeline")
    actions: tuple[Action, ...] = ()
    goto = None
    meter = None
    for inst in stats.instructions:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            target = pipeline.table_by_id(inst.table_id)
            if target is None:
                raise ForeignFlow(f"goto to undeclared table {inst.table_id}")
            goto = target.name
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter = inst.meter_id
        elif isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS:
            actions += read_actions(inst.actions, pipeline)
        else:
            raise ForeignFlow(f"instruction {type(inst).__name__}")
    try:
        match = _norm_match(stats.match.items())
    except PipelineError as err:
        raise ForeignFlow(str(err)) from None
    return FlowSpec(table.name, stats.priority, match, actions, goto, stats.cookie, meter)


def stats_key(stats: parser.OFPFlowStats, pipeline: Pipeline = PIPELINE) -> tuple | None:
    """The FlowSpec.key a dumped flow occupies, even one we cannot read; None if it
    sits in a table outside the pipeline (no spec of ours can have that key)."""
    table = pipeline.table_by_id(stats.table_id)
    if table is None:
        return None
    try:
        return (table.name, stats.priority, _norm_match(stats.match.items()))
    except PipelineError:
        return None


def packet_out(in_port: int, actions: Iterable[Action], data: bytes) -> parser.OFPPacketOut:
    return parser.OFPPacketOut(datapath=None, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                               actions=ofp_actions(tuple(actions)), data=data)


def packet_out_to_table(in_port: int, data: bytes) -> parser.OFPPacketOut:
    """Re-inject a packet at table 0 as if it had arrived on in_port."""
    return parser.OFPPacketOut(datapath=None, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                               actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=data)


def port_stats_request() -> parser.OFPPortStatsRequest:
    return parser.OFPPortStatsRequest(datapath=None, flags=0, port_no=ofp.OFPP_ANY)


def flow_stats_request() -> parser.OFPFlowStatsRequest:
    return parser.OFPFlowStatsRequest(datapath=None, flags=0, table_id=ofp.OFPTT_ALL,
                                      out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                      cookie=0, cookie_mask=0, match=parser.OFPMatch())


def port_desc_request() -> parser.OFPPortDescStatsRequest:
    return parser.OFPPortDescStatsRequest(datapath=None, flags=0)


def barrier() -> parser.OFPBarrierRequest:
    return parser.OFPBarrierRequest(datapath=None)


def set_async_defaults() -> parser.OFPSetConfig:
    return parser.OFPSetConfig(datapath=None, flags=ofp.OFPC_FRAG_NORMAL,
                               miss_send_len=ofp.OFPCML_NO_BUFFER)
