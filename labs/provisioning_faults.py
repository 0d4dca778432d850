"""Seeded faulty templates: what staging must catch before anything reaches a switch.

Each is a real template of the library with one defect of the kind changes ship with
(list this module in ``provisioning.template_modules`` to load them into a controller):

    od_path_wrong_port      a transit hop outputs to another port than the link's
    od_path_loop            the last transit hop sends frames back where they came from
    od_path_missing_group   the first hop sends to its indirect group, which is not rendered
    od_path_isolation_hole  the last hop also copies the pair's frames to another host's port
    slice_bandwidth_short   sizes the slice for 60 % of the forecast need (a rate below the need)

They render and validate like the real ones (the defect is in what they produce, not
in their parameters), so only staging can tell.
"""

from __future__ import annotations

from dataclasses import replace

from apps.provisioning import templates as tpl
from controller.desired import Desired
from controller.flows import FlowSpec

FAULTS = ("wrong_port", "loop", "missing_group", "isolation_hole")


def _pair_flows(d: Desired) -> list[FlowSpec]:
    return [f for f in d.flows if f.table == "forward"]


def _forward_flow(entries, dp, dst_mac: str) -> FlowSpec:
    """The forward direction's flow on switch ``dp`` (frames to ``dst_mac``)."""
    return next(f for f in _pair_flows(entries[dp]) if dict(f.match)["eth_dst"] == dst_mac)


class _FaultyPath(tpl.OdPath):
    fault = ""

    class Params(tpl.OdPath.Params):
        leak: str = ""  # isolation_hole: the host (MAC or IPv4) the frames are copied to

    def _render(self, p, ctx):
        good = super()._render(p, ctx)
        entries = dict(good.entries)
        dps = list(good.touches)
        dst = ctx.host(p.dst).mac
        getattr(self, f"_{self.fault}")(entries, dps, dst, p, ctx)
        return replace(good, template=self.ref, entries=entries)

    @staticmethod
    def _swap(entries, dp, old: FlowSpec, new: FlowSpec) -> None:
        d = entries[dp]
        entries[dp] = Desired(
            flows=tuple(new if f is old else f for f in d.flows), groups=d.groups, meters=d.meters
        )

    def _wrong_port(self, entries, dps, dst, p, ctx) -> None:
        # The forward direction's second switch (a transit hop, or the destination's
        # switch on a two-switch path) outputs to another of its ports.
        dp = dps[1]
        flow = _forward_flow(entries, dp, dst)
        right = flow.actions[0][1]
        ports = sorted(set(ctx.ports(dp)) - {right})
        wrong = ports[0] if ports else right + 7
        self._swap(entries, dp, flow, replace(flow, actions=(("output", wrong),)))

    def _loop(self, entries, dps, dst, p, ctx) -> None:
        # A switch of the path (the destination's first) sends the pair's frames over a
        # link to an earlier switch of the path than its predecessor, whose flows send
        # them round again. (Straight back where they came from would be dropped:
        # OpenFlow does not output to the in port.)
        for k in range(len(dps) - 1, 1, -1):
            for j in range(k - 1):
                port = ctx.port_toward(dps[k], dps[j])
                if port is not None:
                    flow = _forward_flow(entries, dps[k], dst)
                    self._swap(entries, dps[k], flow, replace(flow, actions=(("output", port),)))
                    return
        raise tpl.TemplateError("params.path", "no link closes a loop on this path")

    def _missing_group(self, entries, dps, dst, p, ctx) -> None:
        d = entries[dps[0]]
        entries[dps[0]] = Desired(flows=d.flows, groups=(), meters=d.meters)

    def _isolation_hole(self, entries, dps, dst, p, ctx) -> None:
        # The switch of the path that ``leak`` is on also copies the pair's frames to it
        # (without ``leak``: the first other host's port from the destination backwards).
        if p.leak:
            host = ctx.host(p.leak)
            if host is None or host.dp_id not in dps:
                raise tpl.TemplateError("params.leak", f"no host {p.leak!r} on the path")
            targets = [(host.dp_id, host.port)]
        else:
            targets = [(dp, port) for dp in reversed(dps) for port in ctx.host_ports(dp)]
        for dp, port in targets:
            flow = _forward_flow(entries, dp, dst)
            own = {a[1] for f in entries[dp].flows for a in f.actions if a[0] == "output"}
            if port not in own:
                self._swap(entries, dp, flow, replace(flow, actions=flow.actions + (("output", port),)))
                return
        raise tpl.TemplateError("params.path", "no other host to leak to on the path")


def _path_fault(fault: str) -> type[_FaultyPath]:
    return type(
        f"OdPath_{fault}",
        (_FaultyPath,),
        dict(
            name=f"od_path_{fault}",
            version=1,
            fault=fault,
            summary=f"SEEDED FAULT ({fault.replace('_', ' ')}): pin a host pair onto a switch path",
        ),
    )


class SliceBandwidthShort(tpl.SliceBandwidth):
    name, version = "slice_bandwidth_short", 1
    summary = "SEEDED FAULT (rate below the need): set a slice's bandwidth to 60 % of the need"

    def params_for(self, need, ctx, headroom):
        good = super().params_for(need, ctx, headroom)
        return None if good is None else dict(good, bandwidth_mbps=round(0.6 * need.need_mbps, 3))


FAULTY: dict[str, tpl.Template] = {}
for _fault in FAULTS:
    FAULTY[_fault] = tpl.register(_path_fault(_fault)())
FAULTY["rate_below_need"] = tpl.register(SliceBandwidthShort())
