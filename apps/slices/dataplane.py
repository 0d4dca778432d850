"""A slice's data plane on one switch: the flows, groups and meters that enforce it.

Pure: given a slice, where its members are and which port leads toward each switch,
``switch_entries`` returns what one switch should hold. Every switch gets the same
rules, so a client may attach anywhere; the first switch a packet meets does the work.

Toward the members (client -> service VIP)::

    slice/VIP   ipv4_dst=VIP                 meter IN, mark DSCP, goto lb
    lb/pins     one per TCP connection       learned by the switch: the member it got first
    lb/TCP      ip_proto=6, ipv4_dst=VIP     group TCP: select a member (reg6 := its key),
                                             resubmit to member
    member      VIP, reg6=key                pin the connection (learn into lb), then
                                             eth_dst, ipv4_dst := member, output toward it
    lb/other    ipv4_dst=VIP                 group ANY: select a member
    bucket      eth_dst, ipv4_dst := member  output toward the member

The learn sits in the member table, not in the bucket: Open vSwitch runs a bucket
as an action set (set-fields, then one output, group or resubmit) and silently
drops a learn there. A member's key is the offset of its member VIP in the range.

Rewritten packets carry the member's addresses; on every switch a transit rule
(``eth_dst``, ``ipv4_dst`` = member) sends them on toward the member without the
controller. Back from the members, at the member's own switch::

    slice/reply in_port, eth_src, ipv4_src = member    meter OUT, ipv4_src := VIP,
                                                       mark DSCP, goto forward

so clients only ever see the VIP. A draining member (scaled down, connections still
open) loses its buckets — no new connection reaches it — but keeps its transit and
reply rules and its pins until the drain ends.

Ids: slice index ``i`` owns groups ``2i`` (ANY) and ``2i+1`` (TCP), meters ``2i`` (IN)
and ``2i+1`` (OUT), flow cookie ``i`` and learned-pin cookies ``i << 16 | member
offset`` — all in the slices owner's ranges (``controller.cookies``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from apps.slices.model import Slice
from controller import cookies, flows
from controller.desired import Desired
from controller.flows import ETH_TYPE_IP, IP_PROTO_TCP, FlowSpec, flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec, rate_meter

OWNER = "slices"
MAX_SLICES = 1 << 20                 # index fits 2i+1 in the 24-bit group/meter id space
PRIO_VIP = 1020                      # slice table; plus the class offset
PRIO_REPLY = 1020
PRIO_TRANSIT = 1010
PRIO_LB_PIN = 3000                   # lb table: learned connection pins
PRIO_LB_TCP = 200
PRIO_LB_ANY = 100
PRIO_MEMBER = 100
PIN_IDLE_S = 60                      # a pinned connection silent this long is forgotten
PIN_FIN_IDLE_S = 2                   # ... or this long after its FIN or RST
BURST_S = 0.1                        # meter bucket depth in seconds of the slice's rate


@dataclass(frozen=True)
class Placed:
    """A member where the controller has seen it: what its rules need."""

    host_id: str
    ipv4: str
    vip_offset: int                  # offset of its member VIP in the slice's range
    mac: str
    dp_id: int
    port_no: int
    draining: bool = False


@dataclass(frozen=True)
class SliceIds:
    group_any: int
    group_tcp: int
    meter_in: int
    meter_out: int
    cookie: int

    def pin_cookie(self, idx: int, vip_offset: int) -> int:
        return cookies.cookie("learned", (idx << 16) | (vip_offset & 0xFFFF))


def ids(idx: int) -> SliceIds:
    if not 0 <= idx < MAX_SLICES:
        raise ValueError(f"slice index {idx} outside 0..{MAX_SLICES - 1}")
    return SliceIds(group_any=cookies.group_id(OWNER, 2 * idx),
                    group_tcp=cookies.group_id(OWNER, 2 * idx + 1),
                    meter_in=cookies.meter_id(OWNER, 2 * idx), meter_out=cookies.meter_id(OWNER, 2 * idx + 1),
                    cookie=cookies.cookie(OWNER, idx))


def meter(meter_id: int, mbps: float) -> MeterSpec:
    return rate_meter(meter_id, max(1, math.ceil(mbps * 1000)), BURST_S)


# toward(dp_id, member_dp_id) -> the port on dp_id leading to member_dp_id, or None.
Toward = Callable[[int, int], "int | None"]


def switch_entries(slice_: Slice, idx: int, members: list[Placed], dp_id: int, toward: Toward) -> Desired:
    """What switch ``dp_id`` holds for the slice (nothing while no member is placed)."""
    if not members:
        return Desired()
    sid = ids(idx)
    vip = str(slice_.service_vip)
    offset = slice_.priority.flow_priority_offset
    dscp = ("set_field", "ip_dscp", slice_.priority.dscp)
    out_ports = {}
    for m in members:
        port = m.port_no if m.dp_id == dp_id else toward(dp_id, m.dp_id)
        if port is not None:
            out_ports[m.host_id] = port

    flows_: list[FlowSpec] = []
    groups_: list[GroupSpec] = []
    meters_ = [meter(sid.meter_in, slice_.bandwidth_mbps)]
    # Transit toward every placed member, draining ones included.
    for m in members:
        if m.host_id in out_ports:
            flows_.append(flow("classify", PRIO_TRANSIT + offset,
                               {"eth_type": ETH_TYPE_IP, "eth_dst": m.mac, "ipv4_dst": m.ipv4},
                               [("output", out_ports[m.host_id])], cookie=sid.cookie))
    # Replies leave the member's own switch as the VIP.
    local = [m for m in members if m.dp_id == dp_id]
    if local:
        meters_.append(meter(sid.meter_out, slice_.bandwidth_mbps))
    for m in local:
        flows_.append(flow("classify", PRIO_REPLY + offset,
                           {"in_port": m.port_no, "eth_type": ETH_TYPE_IP, "eth_src": m.mac,
                            "ipv4_src": m.ipv4},
                           [("set_field", "ipv4_src", vip), dscp], goto="forward", meter=sid.meter_out,
                           cookie=sid.cookie))
    # Load balancing over the active members this switch can reach.
    active = [m for m in members if not m.draining and m.host_id in out_ports]
    if active:
        rewrite = {m.host_id: (("set_field", "eth_dst", m.mac), ("set_field", "ipv4_dst", m.ipv4),
                               ("output", out_ports[m.host_id])) for m in active}
        groups_.append(GroupSpec(sid.group_any, "select",
                                 tuple(Bucket(actions=rewrite[m.host_id]) for m in active)))
        groups_.append(GroupSpec(sid.group_tcp, "select", tuple(
            Bucket(actions=(("set_field", "reg6", m.vip_offset), ("resubmit", "member"))) for m in active)))
        for m in active:
            flows_.append(flow("member", PRIO_MEMBER, {"eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO_TCP,
                                                       "ipv4_dst": vip, "reg6": m.vip_offset},
                               [("learn", _pin(sid, idx, vip, m, out_ports[m.host_id])), *rewrite[m.host_id]],
                               cookie=sid.cookie))
        flows_.append(flow("classify", PRIO_VIP + offset, {"eth_type": ETH_TYPE_IP, "ipv4_dst": vip},
                           [dscp], goto="lb", meter=sid.meter_in, cookie=sid.cookie))
        flows_.append(flow("lb", PRIO_LB_TCP,
                           {"eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO_TCP, "ipv4_dst": vip},
                           [("group", sid.group_tcp)], cookie=sid.cookie))
        flows_.append(flow("lb", PRIO_LB_ANY, {"eth_type": ETH_TYPE_IP, "ipv4_dst": vip},
                           [("group", sid.group_any)], cookie=sid.cookie))
    return Desired(tuple(flows_), tuple(groups_), tuple(meters_))


def _pin(sid: SliceIds, idx: int, vip: str, member: Placed, port: int):
    """The learn action that pins a new TCP connection to ``member`` on this switch."""
    return flows.learn(table="lb", priority=PRIO_LB_PIN, cookie=sid.pin_cookie(idx, member.vip_offset),
                       idle_timeout=PIN_IDLE_S, fin_idle_timeout=PIN_FIN_IDLE_S,
                       fixed={"eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO_TCP, "ipv4_dst": vip},
                       copied=("ipv4_src", "tcp_src", "tcp_dst"),
                       loads={"eth_dst": member.mac, "ipv4_dst": member.ipv4}, output=port)
