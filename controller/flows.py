"""Flows as data, and their translation to and from OpenFlow 1.3 messages.

A ``FlowSpec`` is what a manager wants on a switch: table (by name), priority,
match, apply-actions, optional goto and the owner's cookie. It is hashable and
comparable, so the desired state of a switch is a plain dict keyed by
``FlowSpec.key`` and reconciliation is a dict diff. ``to_flowmod`` builds the
message without a datapath (Faucet's ``valve_of`` style); ``from_stats`` reads a
flow dumped by a switch back into a ``FlowSpec`` so both sides compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline import PIPELINE, Pipeline, PipelineError

# Actions are small tuples so that specs stay hashable:
#   ("output", port_no)  ("controller",)  ("group", group_id)  ("set_field", field, value)
Action = tuple

MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})


def _norm_value(field: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_norm_value(field, v) for v in value)
    if field in MAC_FIELDS and isinstance(value, str):
        return value.lower()
    return value


def _norm_match(match: dict[str, Any] | Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    items = match.items() if isinstance(match, dict) else match
    return tuple(sorted((k, _norm_value(k, v)) for k, v in items))


@dataclass(frozen=True)
class FlowSpec:
    table: str
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...] = ()
    goto: str | None = None
    cookie: int = 0

    @property
    def key(self) -> tuple[str, int, tuple]:
        """Identity of a flow on a switch: OpenFlow's (table, priority, match)."""
        return (self.table, self.priority, self.match)

    @property
    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)

    def describe(self) -> str:
        match = ",".join(f"{k}={v}" for k, v in self.match) or "*"
        acts = ",".join(":".join(str(p) for p in a) for a in self.actions)
        if self.goto:
            acts = (acts + "," if acts else "") + f"goto:{self.goto}"
        return f"{self.table}/{self.priority} {match} -> {acts or 'drop'}"


def flow(table: str, priority: int, match: dict[str, Any] | None = None,
         actions: Iterable[Action] = (), goto: str | None = None, cookie: int = 0,
         pipeline: Pipeline = PIPELINE) -> FlowSpec:
    """Make a FlowSpec, checked against the declared pipeline."""
    match = match or {}
    pipeline.check(table, set(match), goto)
    if not 0 <= priority <= 0xFFFF:
        raise PipelineError(f"priority {priority} out of range 0..65535")
    for action in actions:
        if not action or action[0] not in ("output", "controller", "group", "set_field"):
            raise PipelineError(f"unknown action {action!r}")
    return FlowSpec(table, priority, _norm_match(match), tuple(actions), goto, cookie)


def _ofp_actions(actions: tuple[Action, ...]) -> list:
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
    actions = _ofp_actions(spec.actions)
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


def from_stats(stats: parser.OFPFlowStats, pipeline: Pipeline = PIPELINE) -> FlowSpec:
    """Read a dumped flow into a FlowSpec; raise ForeignFlow if it can't be ours."""
    table = pipeline.table_by_id(stats.table_id)
    if table is None:
        raise ForeignFlow(f"table {stats.table_id} is not in the pipeline")
    actions: list[Action] = []
    goto = None
    for inst in stats.instructions:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            target = pipeline.table_by_id(inst.table_id)
            if target is None:
                raise ForeignFlow(f"goto to undeclared table {inst.table_id}")
            goto = target.name
        elif isinstance(inst, parser.OFPInstructionActions) and inst.type == ofp.OFPIT_APPLY_ACTIONS:
            for act in inst.actions:
                if isinstance(act, parser.OFPActionOutput):
                    if act.port == ofp.OFPP_CONTROLLER:
                        actions.append(("controller",))
                    else:
                        actions.append(("output", act.port))
                elif isinstance(act, parser.OFPActionGroup):
                    actions.append(("group", act.group_id))
                elif isinstance(act, parser.OFPActionSetField):
                    actions.append(("set_field", act.key, _norm_value(act.key, act.value)))
                else:
                    raise ForeignFlow(f"action {type(act).__name__}")
        else:
            raise ForeignFlow(f"instruction {type(inst).__name__}")
    return FlowSpec(table.name, stats.priority, _norm_match(stats.match.items()),
                    tuple(actions), goto, stats.cookie)


def packet_out(in_port: int, actions: Iterable[Action], data: bytes) -> parser.OFPPacketOut:
    return parser.OFPPacketOut(datapath=None, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                               actions=_ofp_actions(tuple(actions)), data=data)


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
