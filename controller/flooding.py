"""Loop-free broadcast: flood along a spanning tree of the switch graph.

Per switch, the flood table outputs to its tree ports and host (edge) ports;
link ports that are not in the tree drop what arrives on them. OpenFlow never
outputs a packet back on its ingress port, so one output rule serves every port.
"""

from __future__ import annotations

from controller import cookies
from controller.flows import FlowSpec, flow
from controller.topology import Topology

PRIO_BLOCK = 100
PRIO_FLOOD = 10
COOKIE = cookies.cookie("flooding")


def flood_ports(topology: Topology, dp_id: int, now: float, edge_after_s: float) -> list[int]:
    return sorted(topology.tree_ports(dp_id) | topology.edge_ports(dp_id, now, edge_after_s))


def desired(topology: Topology, dp_id: int, now: float, edge_after_s: float) -> list[FlowSpec]:
    flows = []
    blocked = topology.link_ports(dp_id) - topology.tree_ports(dp_id)
    for port_no in sorted(blocked):
        flows.append(flow("flood", PRIO_BLOCK, {"in_port": port_no}, cookie=COOKIE))
    outputs = flood_ports(topology, dp_id, now, edge_after_s)
    if outputs:
        flows.append(flow("flood", PRIO_FLOOD, {}, [("output", p) for p in outputs], cookie=COOKIE))
    return flows
