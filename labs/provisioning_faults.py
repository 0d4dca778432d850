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


def _dst_mac(entries, dps) -> str:
    """The forward direction's destination: the first switch's flow's eth_dst."""
    first = next(f for f in _pair_flows(entries[dps[0]]) if any(a[0] == "group" for a in f.actions))
    return dict(first.match)["eth_dst"]


class _FaultyPath(tpl.OdPath):
    fault = ""

    def _render(self, p, ctx):
        good = super()._render(p, ctx)
        entries = dict(good.entries)
        dps = list(good.touches)
        getattr(self, f"_{self.fault}")(entries, dps, ctx)
        return replace(good, template=self.ref, entries=entries)

    @staticmethod
    def _swap(entries, dp, old: FlowSpec, new: FlowSpec) -> None:
        d = entries[dp]
        entries[dp] = Desired(
            flows=tuple(new if f is old else f for f in d.flows), groups=d.groups, meters=d.meters
        )

    def _wrong_port(self, entries, dps, ctx) -> None:
        # The forward direction's second switch (a transit hop, or the destination's
        # switch on a two-switch path): output to a port nothing useful is behind.
        dp = dps[1]
        flow = _pair_flows(entries[dp])[0]
        right = flow.actions[0][1]
        ports = sorted(set(ctx.ports(dp)) - {right})
        wrong = ports[0] if ports else right + 7
        self._swap(entries, dp, flow, replace(flow, actions=(("output", wrong),)))

    def _loop(self, entries, dps, ctx) -> None:
        # A switch of the path (the destination's first) sends the pair's frames over a
        # link to an earlier switch of the path than its predecessor, whose flows send
        # them round again. (Straight back where they came from would be dropped:
        # OpenFlow does not output to the in port.)
        for k in range(len(dps) - 1, 1, -1):
            for j in range(k - 1):
                port = ctx.port_toward(dps[k], dps[j])
                if port is not None:
                    flow = next(
                        f
                        for f in _pair_flows(entries[dps[k]])
                        if dict(f.match)["eth_dst"] == _dst_mac(entries, dps)
                    )
                    self._swap(entries, dps[k], flow, replace(flow, actions=(("output", port),)))
                    return
        raise tpl.TemplateError("params.path", "no link closes a loop on this path")

    def _missing_group(self, entries, dps, ctx) -> None:
        d = entries[dps[0]]
        entries[dps[0]] = Desired(flows=d.flows, groups=(), meters=d.meters)

    def _isolation_hole(self, entries, dps, ctx) -> None:
        # A switch of the path (from the destination's backwards) copies the pair's
        # frames to another host's port: a host the isolation policy keeps apart.
        for dp in reversed(dps):
            flow = _pair_flows(entries[dp])[0]
            own = {a[1] for f in entries[dp].flows for a in f.actions if a[0] == "output"}
            others = [port for port in ctx.host_ports(dp) if port not in own]
            if others:
                acts = flow.actions + (("output", others[0]),)
                self._swap(entries, dp, flow, replace(flow, actions=acts))
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
