"""Flows as data, and their translation to and from OpenFlow 1.3 messages.

A ``FlowSpec`` is what a manager wants on a switch: table (by name), priority,
match, apply-actions, optional goto, optional meter and the owner's cookie. It is
hashable and comparable, so the desired state of a switch is a plain dict keyed by
``FlowSpec.key`` and reconciliation is a dict diff. ``to_flowmod`` builds the
message without a datapath (Faucet's ``valve_of`` style); ``from_stats`` reads a
flow dumped by a switch back into a ``FlowSpec`` so both sides compare equal.

Actions include Open vSwitch's ``learn`` (``controller.learn``: the ``Learn`` type
and its NXM codec); the fields matches and set-fields use, their normal form and
OpenFlow's prerequisites are in ``controller.fields``. Both are re-exported here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import learn as learn_mod
from controller.fields import (ETH_TYPE_ARP, ETH_TYPE_IP, IP_PROTO_TCP, IP_PROTO_UDP, IPV4_FIELDS,  # noqa: F401
                               MAC_FIELDS, OFPVID_PRESENT, PREREQUISITES, REG_FIELDS, SET_FIELDS,
                               TUNNEL_FIELDS, VLAN_ETHERTYPES, ForeignFlow, norm_match, norm_set_field,
                               norm_value, missing_prerequisite)
from controller.learn import LEARN_OUTPUT_REG, Learn, learn, learns  # noqa: F401
from controller.pipeline import PIPELINE, Pipeline, PipelineError

# Actions are small tuples so that specs stay hashable:
#   ("output", port_no)  ("controller",)  ("in_port",)  ("group", group_id)  ("set_field", field, value)
#   ("resubmit", table)  ("learn", Learn(...))  ("push_vlan", ethertype)  ("pop_vlan",)
Action = tuple

ACTION_KINDS = frozenset({"output", "controller", "in_port", "group", "set_field", "resubmit", "learn",
                          "push_vlan", "pop_vlan"})
OFPP_IN_PORT_16 = 0xFFF8        # resubmit's "keep in_port", in NX's 16-bit port space

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
            action = ("set_field", action[1], norm_set_field(action[1], action[2]))
        elif kind == "resubmit":
            if len(action) != 2:
                raise PipelineError(f"action {action!r}: resubmit takes one table name")
            action = ("resubmit", pipeline.resubmit_target(action[1]).name)
        elif kind == "learn":
            if len(action) != 2:
                raise PipelineError(f"action {action!r}: learn takes one Learn")
            action = ("learn", learn_mod.check(action[1], pipeline))
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
    norm = norm_match(match)
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
            out += learn_mod.to_ofp(action[1], pipeline)
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


def read_actions(acts, pipeline: Pipeline = PIPELINE) -> tuple[Action, ...]:
    """os-ken action objects back into action tuples; ForeignFlow if we never make one."""
    actions: list[Action] = []
    acts = list(acts)
    for i, act in enumerate(acts):
        if isinstance(act, parser.NXActionLearn):
            loaded = acts[i - 1] if i else None
            port = loaded.value if isinstance(loaded, parser.OFPActionSetField) \
                and loaded.key == LEARN_OUTPUT_REG else None
            actions.append(("learn", learn_mod.from_ofp(act, port, pipeline)))
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
                actions.append(("set_field", act.key, norm_value(act.key, act.value)))
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
        match = norm_match(stats.match.items())
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
        return (table.name, stats.priority, norm_match(stats.match.items()))
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
