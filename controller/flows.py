"""Flows as data, and their translation to and from OpenFlow 1.3 messages.

A ``FlowSpec`` is what a manager wants on a switch: table (by name), priority,
match, apply-actions, optional goto, optional meter and the owner's cookie. It is
hashable and comparable, so the desired state of a switch is a plain dict keyed by
``FlowSpec.key`` and reconciliation is a dict diff. ``to_flowmod`` builds the
message without a datapath (Faucet's ``valve_of`` style); ``from_stats`` reads a
flow dumped by a switch back into a ``FlowSpec`` so both sides compare equal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline import PIPELINE, Pipeline, PipelineError

# Actions are small tuples so that specs stay hashable:
#   ("output", port_no)  ("controller",)  ("group", group_id)  ("set_field", field, value)
Action = tuple

ACTION_KINDS = frozenset({"output", "controller", "group", "set_field"})
MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"})
# What set_field may rewrite (address rewriting for VIPs, DSCP marking).
SET_FIELDS = frozenset({"eth_src", "eth_dst", "ipv4_src", "ipv4_dst", "ip_dscp"})

ETH_TYPE_IP = 0x0800
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
# OpenFlow 1.3 prerequisites (switches refuse a flow that matches or rewrites a
# field without them): field -> (field it needs, value it must have).
PREREQUISITES = {
    "ipv4_src": ("eth_type", ETH_TYPE_IP), "ipv4_dst": ("eth_type", ETH_TYPE_IP),
    "ip_proto": ("eth_type", ETH_TYPE_IP), "ip_dscp": ("eth_type", ETH_TYPE_IP),
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


def _check_mac(field: str, value: Any) -> str:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise PipelineError(f"set_field {field}: not a MAC address: {value!r}")
    return value.lower()


def _norm_set_field(field: str, value: Any) -> Any:
    if field not in SET_FIELDS:
        raise PipelineError(f"set_field {field!r} not supported (allowed: {sorted(SET_FIELDS)})")
    if field in MAC_FIELDS:
        return _check_mac(field, value)
    if field in IPV4_FIELDS:
        if isinstance(value, tuple) or (isinstance(value, str) and "/" in value):
            raise PipelineError(f"set_field {field}: needs one address, got {value!r}")
        return _norm_ipv4(field, value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 63:
        raise PipelineError(f"set_field ip_dscp: {value!r} is not a DSCP value 0..63")
    return value


def check_actions(actions: Iterable[Action]) -> tuple[Action, ...]:
    """Validate and normalise actions (flows and group buckets share them)."""
    out = []
    for action in actions:
        action = tuple(action) if isinstance(action, (list, tuple)) else (action,)
        kind = action[0] if action else None
        if kind == "output" or kind == "group":
            limit = ofp.OFPP_MAX if kind == "output" else ofp.OFPG_MAX
            if len(action) != 2 or type(action[1]) is not int or not 0 <= action[1] <= limit:
                raise PipelineError(f"action {action!r}: needs one {kind} number 0..{limit:#x}")
        elif kind == "controller":
            if len(action) != 1:
                raise PipelineError(f"action {action!r}: controller takes no argument")
        elif kind == "set_field":
            if len(action) != 3:
                raise PipelineError(f"action {action!r}: set_field takes a field and a value")
            action = ("set_field", action[1], _norm_set_field(action[1], action[2]))
        else:
            raise PipelineError(f"unknown action {action!r} (known: {sorted(ACTION_KINDS)})")
        out.append(action)
    return tuple(out)


def group_refs(actions: Iterable[Action]) -> frozenset[int]:
    return frozenset(a[1] for a in actions if a[0] == "group")


def _check_prerequisites(match: tuple[tuple[str, Any], ...], actions: tuple[Action, ...]) -> None:
    needed = [(f, "match") for f, _ in match if f in PREREQUISITES]
    needed += [(a[1], "set_field") for a in actions if a[0] == "set_field" and a[1] in PREREQUISITES]
    if not needed:
        return
    have = dict(match)
    for field, where in needed:
        while field in PREREQUISITES:
            need, value = PREREQUISITES[field]
            if have.get(need) != value:
                raise PipelineError(f"{where} on {field} needs {need}={value:#x} in the match "
                                    f"(OpenFlow prerequisite)")
            field = need


@dataclass(frozen=True)
class FlowSpec:
    table: str
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...] = ()
    goto: str | None = None
    cookie: int = 0
    meter: int | None = None

    @property
    def key(self) -> tuple[str, int, tuple]:
        """Identity of a flow on a switch: OpenFlow's (table, priority, match)."""
        return (self.table, self.priority, self.match)

    @property
    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)

    @property
    def groups(self) -> frozenset[int]:
        """Group ids this flow sends to: they must exist on the switch before it."""
        return group_refs(self.actions)

    def describe(self) -> str:
        match = ",".join(f"{k}={v}" for k, v in self.match) or "*"
        acts = ",".join(":".join(str(p) for p in a) for a in self.actions)
        if self.goto:
            acts = (acts + "," if acts else "") + f"goto:{self.goto}"
        if self.meter is not None:
            acts = f"meter:{self.meter:#x}" + ("," + acts if acts else "")
        return f"{self.table}/{self.priority} {match} -> {acts or 'drop'}"


def flow(table: str, priority: int, match: dict[str, Any] | None = None,
         actions: Iterable[Action] = (), goto: str | None = None, cookie: int = 0,
         meter: int | None = None, pipeline: Pipeline = PIPELINE) -> FlowSpec:
    """Make a FlowSpec, checked against the declared pipeline and OpenFlow's
    prerequisites (an IPv4 match or rewrite needs eth_type=0x0800 in the match)."""
    match = match or {}
    pipeline.check(table, set(match), goto)
    if not 0 <= priority <= 0xFFFF:
        raise PipelineError(f"priority {priority} out of range 0..65535")
    if meter is not None and (not isinstance(meter, int) or not 1 <= meter <= ofp.OFPM_MAX):
        raise PipelineError(f"meter {meter!r} out of range 1..{ofp.OFPM_MAX:#x}")
    norm = _norm_match(match)
    acts = check_actions(actions)
    _check_prerequisites(norm, acts)
    return FlowSpec(table, priority, norm, acts, goto, cookie, meter)


def ofp_actions(actions: tuple[Action, ...]) -> list:
    """Action tuples as os-ken action objects (flows, buckets and packet-outs)."""
    out = []
    for action in actions:
        kind = action[0]
        if kind == "output":
            out.append(parser.OFPActionOutput(action[1]))
        elif kind == "controller":
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
        elif kind == "group":
            out.append(parser.OFPActionGroup(action[1]))
        elif kind == "set_field":
            out.append(parser.OFPActionSetField(**{action[1]: action[2]}))
    return out


def to_flowmod(spec: FlowSpec, pipeline: Pipeline = PIPELINE) -> parser.OFPFlowMod:
    instructions = []
    if spec.meter is not None:
        instructions.append(parser.OFPInstructionMeter(spec.meter))
    actions = ofp_actions(spec.actions)
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


def read_actions(acts) -> tuple[Action, ...]:
    """os-ken action objects back into action tuples; ForeignFlow if we never make one."""
    actions: list[Action] = []
    for act in acts:
        if isinstance(act, parser.OFPActionOutput):
            if act.port == ofp.OFPP_CONTROLLER:
                actions.append(("controller",))
            else:
                actions.append(("output", act.port))
        elif isinstance(act, parser.OFPActionGroup):
            actions.append(("group", act.group_id))
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
            actions += read_actions(inst.actions)
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
