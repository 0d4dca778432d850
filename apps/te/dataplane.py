"""Traffic-engineered paths on the switches: weighted splits and labelled routes.

Pure: given the routes planned for each OD pair (ingress switch, egress switch), the
pairs of hosts behind them and the topology, ``switch_entries`` returns what one
switch should hold. Each route is a switch path with a *label*, a VLAN id in
2048..4094 (the lower half, 1..2047, tags fast-failover detours,
``controller.detours``), and an indirect group at its ingress that puts the frame
on it::

    ingress  group R (indirect)                            push_vlan, vlan_vid := label R,
                                                           output toward R's 2nd switch
             forward  pair, TCP/UDP, source port in slot block b     group R (b's route)
             forward  pair, IPv4                                     group of the main route
    transit  forward  vlan_vid = label R                   output toward the next switch
    egress   forward  vlan_vid = label R, eth_dst = host   pop_vlan, output to the host

The weighted split is a hash of each flow onto ``SLOTS`` slots, the low bits of its
TCP or UDP source port (as random as ephemeral ports are), each route owning a
share of the slots proportional to its fraction; a route's slots are a few aligned
blocks, each one masked match. So every flow keeps one path (no reordering) and an
OD's flows spread over its routes in the planned proportions. Why not an OpenFlow
select group: Open vSwitch's default select hash, the only one OpenFlow 1.3 can ask
for, leaves out UDP ports, so every UDP flow between two hosts lands in one bucket
(``../shared/LAB.md``; choosing the hash fields needs OpenFlow 1.5). Other IPv4
(ICMP) takes the OD's main route; non-IPv4 frames (ARP) keep the pair flows.

The label takes the frame off the pair flows, as a detour tag does: a route may
cross a switch whose pair flow for the same hosts points elsewhere. A route whose
links are not all up is left out and the others share its slots; an OD with no live
route gets no split flows, so its pairs fall back to the pair flows (shortest path,
fast-failover protected) until the app re-plans. Route groups count the OD's bytes
(``group_stats``). Their ids are the te owner's, numbered by label
(``controller.cookies``).
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
PRIO_SLOT = 1011             # ... and the TCP/UDP slot blocks above the OD's catch-all
PRIO_LABEL = 1200            # ... labelled frames along their route, above the detours' tagged drop
PRIO_LABEL_DROP = 1150       # a labelled frame with no route here is dropped, never looped
PRIO_LABEL_INGRESS = 1490    # ingress: labelled frames skip the slice table (its rules ran at ingress)
LABELLED = (OFPVID_PRESENT | LABEL_MIN, OFPVID_PRESENT | LABEL_MIN)   # vlan_vid >= 2048, tag present
SLOT_BITS = 6
SLOTS = 1 << SLOT_BITS       # flows hash onto 64 slots: a split is exact to 1/64
SLOT_MASK = SLOTS - 1
PORT_FIELDS = ((6, "tcp_src"), (17, "udp_src"))

Path = tuple[int, ...]


@dataclass(frozen=True)
class Route:
    path: Path               # dp_ids, ingress first
    label: int
    fraction: float          # of the OD's traffic (the LP's; the switches realise it in 1/64ths)


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


def group_id(label: int) -> int:
    """The indirect group that puts frames on the route with this label."""
    return cookies.group_id(OWNER, label)


def live_routes(routes: Iterable[Route], ports: Ports) -> list[tuple[Route, list[tuple[int, int, int]], int]]:
    """The routes whose links are all up, with their hops and slot counts (the dead
    routes' share goes to the others in proportion; every live route keeps a slot)."""
    live = [(r, hops) for r in routes if r.fraction > 0 and (hops := ports(r.path)) is not None]
    total = sum(r.fraction for r, _ in live)
    if total <= 0:
        return []
    return [(r, hops, n) for (r, hops), n in zip(live, slot_counts([r.fraction / total for r, _ in live]))]


def slot_counts(fractions: list[float]) -> list[int]:
    """``SLOTS`` shared out in proportion (largest remainders), at least one each."""
    raw = [f * SLOTS for f in fractions]
    counts = [max(1, int(x)) for x in raw]
    while sum(counts) > SLOTS:
        i = max((i for i, c in enumerate(counts) if c > 1), key=lambda i: counts[i] - raw[i])
        counts[i] -= 1
    while sum(counts) < SLOTS:
        i = max(range(len(counts)), key=lambda i: raw[i] - counts[i])
        counts[i] += 1
    return counts


def slot_blocks(counts: list[int]) -> list[tuple[int, int, int]]:
    """(owner index, value, mask) blocks covering 0..SLOTS-1: each owner's count as
    powers of two, largest first, so every block is aligned and one masked match."""
    pieces = sorted(((1 << b, i) for i, n in enumerate(counts) for b in range(SLOT_BITS + 1) if n >> b & 1),
                    key=lambda p: (-p[0], p[1]))
    blocks, offset = [], 0
    for size, i in pieces:
        blocks.append((i, offset, SLOT_MASK & ~(size - 1)))
        offset += size
    return blocks


def route_group(route: Route, first_port: int) -> GroupSpec:
    return GroupSpec(group_id(route.label), "indirect", (
        Bucket(actions=(("push_vlan", 0x8100), ("set_field", "vlan_vid", OFPVID_PRESENT | route.label),
                        ("output", first_port))),))


def switch_entries(dp_id: int, plans: Mapping[tuple[int, int], tuple[Route, ...]],
                   pairs: Mapping[tuple[int, int], list[tuple[Host, Host]]], ports: Ports) -> Desired:
    """What switch ``dp_id`` holds: ``plans`` maps OD -> its routes, ``pairs`` OD -> the
    (source, destination) hosts whose traffic it carries."""
    if not plans:
        return Desired()
    flows_: list[FlowSpec] = list(ALWAYS)
    groups_: list[GroupSpec] = []
    for od, routes in sorted(plans.items()):
        od_pairs = pairs.get(od)
        if not od_pairs:
            continue
        live = live_routes(routes, ports)
        if not live:
            continue
        if od[0] == dp_id:
            groups_ += [route_group(r, hops[0][2]) for r, hops, _ in live]
            flows_ += _split_flows(live, od_pairs)
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


def _split_flows(live, od_pairs) -> list[FlowSpec]:
    main = max(live, key=lambda x: (x[2], -x[0].label))[0]
    blocks = slot_blocks([n for _, _, n in live]) if len(live) > 1 else []
    out = []
    for src, dst in od_pairs:
        pair = {"eth_type": ETH_TYPE_IP, "eth_src": src.mac, "eth_dst": dst.mac}
        out.append(flow("forward", PRIO_SPLIT, pair, [("group", group_id(main.label))], cookie=COOKIE))
        for proto, field in PORT_FIELDS:
            for i, value, mask in blocks:
                out.append(flow("forward", PRIO_SLOT, {**pair, "ip_proto": proto, field: (value, mask)},
                                [("group", group_id(live[i][0].label))], cookie=COOKIE))
    return out
