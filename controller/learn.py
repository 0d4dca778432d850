"""Open vSwitch's ``learn`` action as data, and its NXM encoding both ways.

A ``Learn`` is an Open vSwitch ``learn`` action: a packet that runs it makes the
switch add (or refresh) a flow of its own, matching fields fixed here or copied from
that packet. It pins a TCP connection to the member a select group gave its first
packet (see ``controller.pipeline`` for why the learn sits in a flow of table
``member`` and not in the bucket). Open vSwitch encodes learn specs with NXM field
headers and dumps them that way whatever it was sent, so we send NXM too; learn has
no immediate output port, so ``("learn", Learn(output=p))`` goes on the wire as
``set_field:p->reg7`` followed by the learn with ``output:NXM_NX_REG7[0..15]``
(``to_ofp``), and ``from_ofp`` folds the pair back into one ``Learn``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.fields import (IPV4_FIELDS, MAC_FIELDS, PREREQUISITES, ForeignFlow, check_mac, is_uint,
                               one_ipv4, missing_prerequisite)
from controller.pipeline import PIPELINE, Pipeline, PipelineError

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
        return check_mac(f"{where}: {field}", value)
    if field in IPV4_FIELDS:
        return one_ipv4(f"{where}: {field}", field, value)
    bits = LEARN_FIELDS[field][1]
    if not is_uint(value, bits):
        raise PipelineError(f"{where}: {field}={value!r} is not a {bits}-bit value")
    return value


def check(learn: Any, pipeline: Pipeline) -> Learn:
    """``learn`` checked against the pipeline and normalised (sorted, values canonical)."""
    if not isinstance(learn, Learn):
        raise PipelineError(f"learn: {learn!r} is not a Learn (build one with flows.learn)")
    table = pipeline.table(learn.table)
    where = f"learn into {table.name}"
    limits = [("priority", learn.priority, 16), ("cookie", learn.cookie, 64)] + [
        (name, getattr(learn, name), 16)
        for name in ("idle_timeout", "hard_timeout", "fin_idle_timeout", "fin_hard_timeout")]
    for name, value, bits in limits:
        if not is_uint(value, bits):
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
    if port is not None and not (is_uint(port, 16) and 1 <= port <= MAX_LEARN_PORT):
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
    return check(Learn(table, priority, cookie, idle_timeout, hard_timeout, fin_idle_timeout,
                              fin_hard_timeout, _pairs(fixed), copied if isinstance(copied, str)
                              else tuple(copied), _pairs(loads), output), pipeline)


def learns(actions: Iterable[tuple]) -> tuple[Learn, ...]:
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


def to_ofp(spec: Learn, pipeline: Pipeline) -> list:
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


def from_ofp(act, port: int | None, pipeline: Pipeline) -> Learn:
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
        return check(Learn(table.name, act.priority, act.cookie, act.idle_timeout, act.hard_timeout,
                                  act.fin_idle_timeout, act.fin_hard_timeout, tuple(fixed), tuple(copied),
                                  tuple(loads), output), pipeline)
    except PipelineError as err:
        raise ForeignFlow(str(err)) from None
