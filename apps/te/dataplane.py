"""Traffic-engineered paths on the switches: weighted select groups and labelled paths.

Pure: given the routes planned for each OD pair (ingress switch, egress switch), the
pairs of hosts behind them and the topology, ``switch_entries`` returns what one
switch should hold. Each route is a switch path with a *label*, a VLAN id in
2048..4094 (the lower half, 1..2047, tags fast-failover detours,
``controller.detours``)::

    ingress  forward  eth_src, eth_dst, IPv4 of a pair     group OD (select, weighted)
             bucket   weight w_r                           push_vlan, vlan_vid := label r,
                                                           output toward the route's 2nd switch
    transit  forward  vlan_vid = label r                   output toward the next switch
    egress   forward  vlan_vid = label r, eth_dst = host   pop_vlan, output to the host

The select group hashes each flow (its 5-tuple) onto one bucket, weighted, so an
OD's flows spread over its routes in the planned proportions while every flow
keeps one path (no reordering). The label takes the frame off the pair flows, as
a detour tag does: a route may cross a switch whose pair flow for the same hosts
points elsewhere. Non-IPv4 frames of a pair (ARP) keep the pair's shortest path.

A route whose links are not all up is left out and the others share its weight;
an OD with no live route gets no split flow, so its pairs fall back to the pair
flows (shortest path, fast-failover protected) until the app re-plans.

Group ids (and the OD's index in them) are the te owner's (``controller.cookies``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from controller import cookies
from controller.desired import Desired
from controller.flows import ETH_TYPE_IP, OFPVID_PRESENT, FlowSpec, flow
from controller.groups import Bucket, GroupSpec

OWNER = "te"
COOKIE = cookies.cookie(OWNER)
LABEL_MIN, LABEL_MAX = 2048, 4094
PRIO_SPLIT = 1010            # forward: above the pair flows (forwarding.PRIO_PATH) ...
PRIO_LABEL = 1200            # ... labelled frames along their route, above the detours' tagged drop
PRIO_LABEL_DROP = 1150       # a labelled frame with no route here is dropped, never looped
PRIO_LABEL_INGRESS = 1490    # ingress: labelled frames skip the slice table (its rules ran at ingress)
LABELLED = (OFPVID_PRESENT | LABEL_MIN, OFPVID_PRESENT | LABEL_MIN)   # vlan_vid >= 2048, tag present
WEIGHT_SCALE = 1000          # a route's bucket weight: its fraction in thousandths

Path = tuple[int, ...]


@dataclass(frozen=True)
class Route:
    path: Path               # dp_ids, ingress first
    label: int
    fraction: float          # of the OD's traffic


@dataclass(frozen=True)
class Host:
    mac: str
    dp_id: int
    port_no: int


# ports(path) -> [(dp_id, in_port, out_port)] along the path, or None if a link is down.
Ports = Callable[[Path], "list[tuple[int, int, int]] | None"]

ALWAYS: tuple[FlowSpec, ...] = (
    flow("ingress", PRIO_LABEL_INGRESS, {"vlan_vid": LABELLED}, goto="forward", cookie=COOKIE),
    flow("forward", PRIO_LABEL_DROP, {"vlan_vid": LABELLED}, [], cookie=COOKIE),
)


def group_id(od_index: int) -> int:
    return cookies.group_id(OWNER, od_index)


def live_routes(routes: Iterable[Route], ports: Ports) -> list[tuple[Route, list[tuple[int, int, int]], int]]:
    """The routes whose links are all up, with their hops and bucket weights (the dead
    routes' share goes to the others in proportion)."""
    live = [(r, hops) for r in routes if r.fraction > 0 and (hops := ports(r.path)) is not None]
    total = sum(r.fraction for r, _ in live)
    if total <= 0:
        return []
    return [(r, hops, max(1, round(WEIGHT_SCALE * r.fraction / total))) for r, hops in live]


def switch_entries(dp_id: int, plans: Mapping[tuple[int, int], tuple[int, tuple[Route, ...]]],
                   pairs: Mapping[tuple[int, int], list[tuple[Host, Host]]], ports: Ports) -> Desired:
    """What switch ``dp_id`` holds: ``plans`` maps OD -> (its index, its routes), ``pairs``
    OD -> the (source, destination) hosts whose traffic it carries."""
    if not plans:
        return Desired()
    flows_: list[FlowSpec] = list(ALWAYS)
    groups_: list[GroupSpec] = []
    for od, (index, routes) in sorted(plans.items()):
        od_pairs = pairs.get(od)
        if not od_pairs:
            continue
        live = live_routes(routes, ports)
        if not live:
            continue
        src_dp, dst_dp = od
        if src_dp == dp_id:
            gid = group_id(index)
            groups_.append(GroupSpec(gid, "select", tuple(
                Bucket(weight=weight, actions=(("push_vlan", 0x8100),
                                               ("set_field", "vlan_vid", OFPVID_PRESENT | r.label),
                                               ("output", hops[0][2])))
                for r, hops, weight in live)))
            for src, dst in od_pairs:
                flows_.append(flow("forward", PRIO_SPLIT, {"eth_type": ETH_TYPE_IP, "eth_src": src.mac,
                                                            "eth_dst": dst.mac},
                                   [("group", gid)], cookie=COOKIE))
        for r, hops, _ in live:
            for i, (hop_dp, _, out_port) in enumerate(hops):
                if hop_dp != dp_id or i == 0:
                    continue
                tag = OFPVID_PRESENT | r.label
                if i < len(hops) - 1:
                    flows_.append(flow("forward", PRIO_LABEL, {"vlan_vid": tag}, [("output", out_port)],
                                       cookie=COOKIE))
                else:
                    for dst in sorted({d for _, d in od_pairs}, key=lambda h: h.mac):
                        flows_.append(flow("forward", PRIO_LABEL, {"vlan_vid": tag, "eth_dst": dst.mac},
                                           [("pop_vlan",), ("output", dst.port_no)], cookie=COOKIE))
    # Two ODs never share a label, but a switch may see one egress flow per (label, host) once.
    unique = {f.key: f for f in flows_}
    return Desired(tuple(unique.values()), tuple(groups_))
