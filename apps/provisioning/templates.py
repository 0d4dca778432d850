"""Versioned, parameterised change templates, validated when they render.

A template is typed Python: a pydantic model of its parameters (types, ranges,
required fields: a bad value is refused naming the field) and a ``render`` that turns
valid parameters, read against the live network (``Context``: switches, ports, hosts,
the apps' knobs), into a ``Rendered`` change:

- ``knobs``: settings of an app's intent to change (``KnobChange``: a slice's
  bandwidth, a stitch's reservation, ...; the app publishes them as
  ``controller.appbase.Knob`` with their allowed range);
- ``entries``: flows, groups and meters the provisioning app itself puts on switches
  (a pinned path for an OD pair, ...), per switch;
- ``promise``: what the change promises once deployed (a capacity in Mbit/s for a
  resource, host pairs that reach), which staging tests and feedback measures;
- ``touches``: the switches whose data plane may change.

Rendering checks everything it reads: an unknown switch, host, slice or stitch, a
value outside the knob's range, a path that is not a chain of links. Each error is a
``TemplateError`` whose ``field`` is the parameter (``params.bandwidth_mbps``). A
template never sends anything; deploying is the engine's job.

Templates are looked up by ``name@version`` (``LIBRARY``); a change records the
version it was rendered with, so a newer version never changes what an old record
means. ``TEMPLATES`` lists the latest of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.provisioning import relief
from controller.desired import Desired
from controller.flows import FlowSpec, flow
from controller.groups import Bucket, GroupSpec
from controller import cookies

OWNER = "provisioning"
PATH_PRIORITY = 1300  # pinned OD paths in ``forward``: above TE's band (1010..1200)


class TemplateError(ValueError):
    """A template cannot render: ``field`` names the parameter (or ``template``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KnobChange:
    """One setting of an app's intent: ``kind``/``target``/``field`` from ``value`` to ``new``."""

    kind: str
    target: str
    field: str
    value: float
    new: float

    def as_json(self) -> dict:
        return dict(kind=self.kind, target=self.target, field=self.field, value=self.value, new=self.new)

    def inverse(self) -> "KnobChange":
        return KnobChange(self.kind, self.target, self.field, self.new, self.value)


@dataclass(frozen=True)
class Promise:
    """What a deployed change promises: ``resource`` (``kind:name``) gets ``mbps`` of
    capacity (0: none promised), and each of ``pairs`` (host MACs) reaches."""

    resource: str = ""
    mbps: float = 0.0
    pairs: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict:
        return dict(resource=self.resource, mbps=self.mbps, pairs=[list(p) for p in self.pairs])


@dataclass(frozen=True)
class Rendered:
    template: str  # name@version
    params: Mapping[str, Any]
    knobs: tuple[KnobChange, ...] = ()
    entries: Mapping[int, Desired] = field(default_factory=dict)
    promise: Promise = Promise()
    touches: tuple[int, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class HostRef:
    mac: str
    ip: str
    dp_id: int
    port: int


class Context(Protocol):
    """What rendering may read of the live network (the app builds it from ``CoreView``)."""

    def switch(self, name: str) -> int | None: ...  # name or dpid -> dp_id
    def switch_name(self, dp_id: int) -> str: ...
    def port_toward(self, dp_id: int, peer: int) -> int | None: ...  # the port of the link to peer
    def host(self, ref: str) -> HostRef | None: ...  # MAC, IPv4 or name
    def knob(self, kind: str, target: str, field: str): ...  # controller.appbase.Knob | None
    def targets(self, kind: str) -> list[str]: ...
    def links(self) -> list[tuple[int, int, float, float]]: ...  # (src, dst, capacity, rate now)
    def capacity(self, a: int, b: int) -> float | None: ...  # the metadata's, in service or not


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Template:
    """Base of the templates: ``name``, ``version``, ``Params`` and ``render``."""

    name: ClassVar[str]
    version: ClassVar[int]
    summary: ClassVar[str]
    Params: ClassVar[type[Params]]
    resource_kind: ClassVar[str] = ""  # the need kind it answers ("" none)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def validate(self, params: Mapping[str, Any]) -> Params:
        if not isinstance(params, Mapping):
            raise TemplateError(
                "params", f"must be a mapping of parameter names to values, got {type(params).__name__}"
            )
        try:
            return self.Params.model_validate(dict(params))
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"]) or "params"
            msg = "missing (required)" if e["type"] == "missing" else e["msg"]
            if e["type"] == "extra_forbidden":
                msg = f"unknown parameter (known: {', '.join(self.Params.model_fields)})"
            raise TemplateError(f"params.{where}", msg) from None

    def render(self, params: Mapping[str, Any], ctx: Context) -> Rendered:
        p = self.validate(params)
        return self._render(p, ctx)

    def _render(self, p, ctx: Context) -> Rendered:
        raise NotImplementedError

    def params_for(self, need, ctx: Context, headroom: float) -> dict | None:
        """Parameters answering ``need`` (a ``needs.Need``), or None if it cannot."""
        return None


def _knob(
    ctx: Context, kind: str, target: str, field_: str, new: float, param: str, target_param: str | None = None
) -> KnobChange:
    """The change of knob ``kind:target.field_`` to ``new`` (parameter ``param``); an
    unknown target is named as parameter ``target_param`` (default: ``kind``)."""
    knob = ctx.knob(kind, target, field_)
    if knob is None:
        known = ctx.targets(kind)
        raise TemplateError(
            f"params.{target_param or kind}",
            f"no {kind} {field_} knob for {target!r} "
            f"(known: {', '.join(known) or 'none: is its app loaded?'})",
        )
    if not knob.low <= new <= knob.high:
        raise TemplateError(
            f"params.{param}",
            f"{new:g} is outside {kind} {target!r}'s range {knob.low:g}..{knob.high:g} ({field_})",
        )
    return KnobChange(kind, target, field_, knob.value, new)


class _Capacity(Template):
    """A resource's capacity knob set to a rate: the target is parameter ``resource_kind``
    (a slice's, stitch's or meter's name), the rate parameter ``field``; it promises the
    resource that rate and answers a need with the need divided by the headroom."""

    field: ClassVar[str]
    what: ClassVar[str]

    def _render(self, p, ctx):
        kind = self.resource_kind
        target, rate = getattr(p, kind), getattr(p, self.field)
        change = _knob(ctx, kind, target, self.field, rate, self.field)
        knob = ctx.knob(kind, target, self.field)
        return Rendered(self.ref, p.model_dump(), knobs=(change,), promise=Promise(f"{kind}:{target}", rate),
                        touches=tuple(knob.switches),
                        summary=f"{kind} {target}: {self.what} {change.value:g} -> {rate:g} Mbit/s")

    def params_for(self, need, ctx, headroom):
        if need.resource.kind != self.resource_kind:
            return None
        return {self.resource_kind: need.resource.name, self.field: _round_up(need.need_mbps / headroom)}


class SliceBandwidth(_Capacity):
    name, version = "slice_bandwidth", 1
    summary = "set a slice's bandwidth (its meters' rate) in Mbit/s"
    resource_kind, field, what = "slice", "bandwidth_mbps", "bandwidth"

    class Params(Params):
        slice: str = Field(min_length=1, max_length=63)
        bandwidth_mbps: float = Field(gt=0, le=100_000)


class StitchBandwidth(_Capacity):
    name, version = "stitch_bandwidth", 1
    summary = "set a stitch's reserved bandwidth in Mbit/s"
    resource_kind, field, what = "stitch", "bandwidth_mbps", "bandwidth"

    class Params(Params):
        stitch: str = Field(min_length=1, max_length=128)
        bandwidth_mbps: float = Field(gt=0, le=100_000)


class MeterRate(_Capacity):
    name, version = "meter_rate", 1
    summary = "set a QoS class's meter rate (per ingress switch) in Mbit/s"
    resource_kind, field, what = "meter", "rate_mbps", "rate"

    class Params(Params):
        meter: str = Field(min_length=1, max_length=63)
        rate_mbps: float = Field(gt=0, le=100_000)


class SliceSize(Template):
    name, version = "slice_size", 1
    summary = "set a slice's active member count (within its min and max)"

    class Params(Params):
        slice: str = Field(min_length=1, max_length=63)
        members: int = Field(ge=1, le=1024)

    def _render(self, p, ctx):
        change = _knob(ctx, "slice", p.slice, "members", p.members, "members")
        knob = ctx.knob("slice", p.slice, "members")
        return Rendered(self.ref, p.model_dump(), knobs=(change,), touches=tuple(knob.switches),
                        summary=f"slice {p.slice}: members {change.value:g} -> {p.members}")


class TeHeadroom(Template):
    """Traffic engineering's headroom: the utilisation above which it reroutes (1 -
    headroom). A lower threshold keeps more room on every link for what the forecast
    does not see."""

    name, version = "te_headroom", 1
    summary = "set the link utilisation above which traffic engineering reroutes (1 - headroom)"

    class Params(Params):
        threshold: float = Field(gt=0, le=2)

    def _render(self, p, ctx):
        change = _knob(ctx, "te", "reroute", "threshold", p.threshold, "threshold", target_param="threshold")
        return Rendered(self.ref, p.model_dump(), knobs=(change,),
                        summary=f"traffic engineering reroutes above {p.threshold:.0%} utilisation "
                                f"(was {change.value:.0%})")


class OdPath(Template):
    """Pin one host pair's frames (both ways) onto a switch path of the operator's or the
    recommender's choice, above traffic engineering's band: the TE priority template.
    The first switch of each direction sends through an indirect group (its counters
    are the pair's measured rate; a deploy changes the group, not every flow)."""

    name, version = "od_path", 1
    summary = "pin a host pair onto a switch path (both directions), above traffic engineering"
    resource_kind = "link"

    class Params(Params):
        src: str = Field(min_length=1, max_length=64)  # host MAC, IPv4 or name
        dst: str = Field(min_length=1, max_length=64)
        path: tuple[str, ...] = Field(min_length=1, max_length=64)  # switch names, src's switch first
        slot: int = Field(default=0, ge=0, le=4095)  # distinguishes pinned paths' groups
        mbps: float = Field(default=0, ge=0, le=100_000)  # the rate it is meant to carry

    def _render(self, p, ctx):
        a, b = ctx.host(p.src), ctx.host(p.dst)
        if a is None:
            raise TemplateError("params.src", f"no host {p.src!r} is known")
        if b is None:
            raise TemplateError("params.dst", f"no host {p.dst!r} is known")
        if a.mac == b.mac:
            raise TemplateError("params.dst", "is the same host as src")
        dps = []
        for i, name in enumerate(p.path):
            dp = ctx.switch(name)
            if dp is None:
                raise TemplateError(f"params.path.{i}", f"no switch {name!r} is known")
            dps.append(dp)
        if len(set(dps)) != len(dps):
            raise TemplateError("params.path", "visits a switch twice (a path must be simple)")
        if dps[0] != a.dp_id:
            raise TemplateError("params.path.0", f"must be src's switch {ctx.switch_name(a.dp_id)}")
        if dps[-1] != b.dp_id:
            raise TemplateError(
                f"params.path.{len(dps) - 1}", f"must be dst's switch {ctx.switch_name(b.dp_id)}"
            )
        hops = []
        for i, dp in enumerate(dps[:-1]):
            port = ctx.port_toward(dp, dps[i + 1])
            if port is None:
                raise TemplateError(f"params.path.{i + 1}", f"no link from {p.path[i]} to {p.path[i + 1]}")
            back = ctx.port_toward(dps[i + 1], dp)
            hops.append((dp, port, back))
        entries = path_entries(a, b, dps, hops, p.slot)
        return Rendered(
            self.ref,
            p.model_dump(),
            entries=entries,
            promise=Promise(f"pair:{a.mac}-{b.mac}", p.mbps, ((a.mac, b.mac), (b.mac, a.mac))),
            touches=tuple(dps),
            summary=f"pin {p.src} <-> {p.dst} on {' - '.join(p.path)}",
        )


class SpareLink(Template):
    """A spare link (``apps.links``: a link between two switches held administratively
    down) brought into service, or taken out again: its ports come up and LLDP finds
    it, and paths may move onto it; out of service, its ports go down and the paths
    over it move off. Its capacity is the topology metadata's, not a parameter."""

    name, version = "spare_link", 1
    summary = "bring a spare link into service (its ports up) or take it out (held down)"
    resource_kind = "link"

    class Params(Params):
        link: str = Field(min_length=1, max_length=64)  # the spare's name (links.spares)
        in_service: bool = True
        # the link in service it relieves ("src-dst", switch names): the promise is then
        # what that link can carry with the spare in (its capacity plus the relief)
        relieves: str = Field(default="", max_length=130)

    def _render(self, p, ctx):
        change = _knob(ctx, "link", p.link, "in_service", 1.0 if p.in_service else 0.0, "in_service",
                       target_param="link")
        knob = ctx.knob("link", p.link, "in_service")
        ends = " - ".join(ctx.switch_name(dp) for dp in knob.switches)
        state = {0.0: "out of service", 1.0: "in service"}
        promise, why = Promise(), ""
        if p.relieves:
            a, b = _link_ends(p.relieves, ctx)
            spare = _spare(p.link, knob, ctx)
            if spare is None:
                raise TemplateError("params.link", f"the topology metadata gives {p.link!r} no capacity")
            adds = (spare,) if p.in_service and knob.value < 0.5 else ()  # in service: among the links
            offered = relief.offered_mbps(ctx.links(), a, b, adds)
            promise = Promise(f"link:{p.relieves}", round(offered, 3))
            why = f"; {p.relieves} can then carry {offered:.1f} Mbit/s with the relief"
        # A link in or out of service moves paths anywhere: every switch may change.
        return Rendered(self.ref, p.model_dump(), knobs=(change,), promise=promise, touches=(),
                        summary=f"spare link {p.link} ({ends}): {state[change.value]} -> "
                                f"{state[change.new]}{why}")

    def params_for(self, need, ctx, headroom):
        """The spare out of service that adds the most relief to the link in need
        (``relief.best_spare``); None if none adds any."""
        if need.resource.kind != "link":
            return None
        try:
            a, b = _link_ends(need.resource.name, ctx)
        except TemplateError:
            return None
        spares = []
        for name in ctx.targets("link"):
            knob = ctx.knob("link", name, "in_service")
            if knob is not None and knob.value < 0.5 and (spare := _spare(name, knob, ctx)) is not None:
                spares.append(spare)
        best = relief.best_spare(ctx.links(), a, b, spares)
        if best is None:
            return None
        return {"link": best[0][0], "in_service": True, "relieves": need.resource.name}


def _link_ends(name: str, ctx: Context) -> tuple[int, int]:
    """``src-dst`` (switch names; a name may hold dashes: the split that names two switches)."""
    parts = name.split("-")
    for i in range(1, len(parts)):
        a, b = ctx.switch("-".join(parts[:i])), ctx.switch("-".join(parts[i:]))
        if a is not None and b is not None:
            if ctx.port_toward(a, b) is None:
                raise TemplateError("params.relieves", f"no link from {'-'.join(parts[:i])} to "
                                                       f"{'-'.join(parts[i:])} is in service")
            return a, b
    raise TemplateError("params.relieves", f"{name!r} is not <switch>-<switch> of two known switches")


def _spare(name: str, knob, ctx: Context) -> relief.Spare | None:
    if len(knob.switches) != 2:
        return None
    x, y = knob.switches
    capacity = ctx.capacity(x, y)
    return (name, x, y, float(capacity)) if capacity else None


def path_group_id(slot: int, direction: int) -> int:
    return cookies.group_id(OWNER, slot * 2 + direction)


def path_entries(
    a: HostRef, b: HostRef, dps: list[int], hops: list[tuple[int, int, int]], slot: int
) -> dict[int, Desired]:
    """The flows and groups of a pinned path ``dps`` for hosts ``a`` -> ``b`` and back.
    ``hops``: (dp, port toward the next switch, the next switch's port back)."""
    cookie = cookies.cookie(OWNER, slot)
    flows: dict[int, list[FlowSpec]] = {dp: [] for dp in dps}
    groups: dict[int, list[GroupSpec]] = {dp: [] for dp in dps}
    out_fwd = {dp: port for dp, port, _ in hops}
    out_back = {dps[i + 1]: back for i, (_, _, back) in enumerate(hops)}
    out_fwd[dps[-1]] = b.port
    out_back[dps[0]] = a.port
    for direction, (src, dst, order, outs) in enumerate(((a, b, dps, out_fwd), (b, a, dps[::-1], out_back))):
        for k, dp in enumerate(order):
            match = dict(eth_src=src.mac, eth_dst=dst.mac)
            if k == 0:
                gid = path_group_id(slot, direction)
                groups[dp].append(GroupSpec(gid, "indirect", (Bucket(actions=(("output", outs[dp]),)),)))
                actions = (("group", gid),)
            else:
                actions = (("output", outs[dp]),)
            flows[dp].append(flow("forward", PATH_PRIORITY, match, actions, cookie=cookie))
    return {dp: Desired(flows=tuple(flows[dp]), groups=tuple(groups[dp])) for dp in dps}


def _round_up(mbps: float, step: float = 0.5) -> float:
    """Rates are rounded up to ``step`` Mbit/s so a need that wobbles does not re-render."""
    return max(step, -(-mbps // step) * step)


LIBRARY: dict[str, Template] = {}
TEMPLATES: dict[str, Template] = {}


def register(template: Template) -> Template:
    """Add a template to the library (a module listed in ``provisioning.template_modules``
    adds its own this way). The same ``name@version`` twice must be the same class."""
    held = LIBRARY.get(template.ref)
    if held is not None and type(held) is not type(template):
        raise TemplateError("template", f"{template.ref} is already a different template")
    LIBRARY[template.ref] = template
    if template.name not in TEMPLATES or TEMPLATES[template.name].version <= template.version:
        TEMPLATES[template.name] = template
    return template


for _cls in (SliceBandwidth, SliceSize, StitchBandwidth, MeterRate, TeHeadroom, OdPath, SpareLink):
    register(_cls())


def lookup(ref: str) -> Template:
    """``name@version`` (or ``name`` for the latest) -> the template, else ``TemplateError``."""
    if not isinstance(ref, str) or not ref:
        raise TemplateError("template", "must name a template (name or name@version)")
    found = LIBRARY.get(ref) if "@" in ref else TEMPLATES.get(ref)
    if found is None:
        raise TemplateError("template", f"unknown template {ref!r} (known: {', '.join(sorted(LIBRARY))})")
    return found
