"""Egress steering at the edge switch: what it holds for the plan in force.

Pure: given the exits (where each neighbour is, its slice) and each prefix group's
exit order, ``switch_entries`` returns the edge switch's flows, groups and meters::

    classify  eth_type=IPv4, eth_dst=router MAC       goto egress
    egress    ipv4_dst=P (one per prefix; priority     group G(prefix group of P)
              100 + prefix length: longest match wins)
    G         fast failover, one bucket per exit in    reg4 := exit index, resubmit exit
              the plan's order (watch: the exit port)
    exit      reg4=i, IPv4                              meter (the peering's slice), DSCP of its
                                                        priority class, eth_src := router MAC,
                                                        eth_dst := neighbour MAC, output

Why OpenFlow at the edge and not BGP policy (local-pref): a move is one group-mod
that takes effect at once, needs no route to be re-advertised and re-selected, and
cannot be undone by the speaker's own best-path choice; the failover to the next
exit happens in the switch the moment the exit port goes down (the fast-failover
group), before the controller hears of it; and every group's bucket counters give
the demand per prefix group and per exit for free. Espresso made the same choice
(steering at programmable egress, BGP for reachability only).

Why the ``exit`` stage: the slice (a meter) and the rewrites belong to the exit, not
to the prefix group; a bucket may only set fields and resubmit (Open vSwitch runs a
bucket as an action set), so it marks its exit in reg4 and the ``exit`` table does
the rest. A group whose exits are all gone has no bucket: its prefixes' flows are
removed instead (no route: the packet is dropped by the table miss).

Ids: exit ``i`` (1-based, stable per neighbour) owns meter ``i``; prefix group
number ``n`` (stable, from the app's store) owns group ``n``; flow cookies carry
the group number (prefix flows) or the exit index (exit flows) in the owner range.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Mapping, Sequence

from controller import cookies
from controller.desired import Desired
from controller.flows import ETH_TYPE_IP, FlowSpec, flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec, rate_meter

OWNER = "peering"
PRIO_ROUTER = 1300  # classify: frames to the router MAC
PRIO_PREFIX_BASE = 100  # egress: plus the prefix length
PRIO_EXIT = 100
EXIT_COOKIE_BIT = 1 << 40  # exit flows' cookies: this bit plus the exit index
METER_BURST_S = 0.05


@dataclass(frozen=True)
class ExitPort:
    """Where a neighbour is on the edge switch, and its slice."""

    name: str
    index: int  # 1.. (reg4 value, meter id)
    mac: str
    port_no: int
    slice_kbps: int = 0  # 0: no meter
    dscp: int | None = None  # the slice's priority class marking


@dataclass(frozen=True)
class GroupRoute:
    """A prefix group's prefixes and its exits in failover order."""

    number: int  # 1.. (stable, from the store)
    prefixes: tuple[str, ...]
    exits: tuple[str, ...]  # neighbour names, the plan's choice first


def group_id(number: int) -> int:
    return cookies.group_id(OWNER, number)


def meter_id(index: int) -> int:
    return cookies.meter_id(OWNER, index)


@functools.lru_cache(maxsize=1 << 17)
def prefix_flow(prefix: str, number: int) -> FlowSpec:
    """One prefix's egress flow (cached: a plane of 10,000 prefixes is rebuilt whenever
    one group moves, and the flows of the others are the same objects again)."""
    net = ipaddress.IPv4Network(prefix)
    return flow(
        "egress",
        PRIO_PREFIX_BASE + net.prefixlen,
        {"eth_type": ETH_TYPE_IP, "ipv4_dst": (str(net.network_address), str(net.netmask))},
        [("group", group_id(number))],
        cookie=cookies.cookie(OWNER, number),
    )


def exit_flow(port: ExitPort, router_mac: str) -> FlowSpec:
    actions: list = []
    if port.dscp is not None:
        actions.append(("set_field", "ip_dscp", port.dscp))
    actions += [
        ("set_field", "eth_src", router_mac),
        ("set_field", "eth_dst", port.mac),
        ("output", port.port_no),
    ]
    return flow(
        "exit",
        PRIO_EXIT,
        {"reg4": port.index, "eth_type": ETH_TYPE_IP},
        actions,
        cookie=cookies.cookie(OWNER, EXIT_COOKIE_BIT | port.index),
        meter=meter_id(port.index) if port.slice_kbps else None,
    )


def failover_group(route: GroupRoute, ports: Mapping[str, ExitPort]) -> GroupSpec | None:
    buckets = tuple(
        Bucket(
            watch_port=ports[name].port_no,
            actions=(("set_field", "reg4", ports[name].index), ("resubmit", "exit")),
        )
        for name in route.exits
        if name in ports
    )
    if not buckets:
        return None
    return GroupSpec(group_id(route.number), "ff", buckets)


def switch_entries(router_mac: str, ports: Sequence[ExitPort], routes: Sequence[GroupRoute]) -> Desired:
    """The edge switch's entries: ``ports`` are the exits whose neighbour is known on
    the switch, ``routes`` every prefix group with its exit order."""
    by_name = {p.name: p for p in ports}
    flows_: list[FlowSpec] = [
        flow(
            "classify",
            PRIO_ROUTER,
            {"eth_type": ETH_TYPE_IP, "eth_dst": router_mac},
            goto="egress",
            cookie=cookies.cookie(OWNER),
        )
    ]
    flows_ += [exit_flow(p, router_mac) for p in sorted(ports, key=lambda p: p.index)]
    meters: list[MeterSpec] = [
        rate_meter(meter_id(p.index), p.slice_kbps, METER_BURST_S)
        for p in sorted(ports, key=lambda p: p.index)
        if p.slice_kbps
    ]
    groups_: list[GroupSpec] = []
    for route in sorted(routes, key=lambda r: r.number):
        group = failover_group(route, by_name)
        if group is None:
            continue
        groups_.append(group)
        flows_ += [prefix_flow(p, route.number) for p in route.prefixes]
    return Desired(tuple(flows_), tuple(groups_), tuple(meters))
