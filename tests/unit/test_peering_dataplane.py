"""apps.peering.dataplane on a fake edge switch: frames to the router MAC leave by the
exit of their prefix group (longest match wins), rewritten and metered as the exit's
slice says; a dead exit port fails over inside the switch; no route drops."""

from __future__ import annotations

from apps.peering import dataplane
from apps.peering.dataplane import ExitPort, GroupRoute, switch_entries
from controller import flows, groups, meters
from controller.core import pipeline_flows
from controller.flows import ETH_TYPE_IP
from tests.lib.fakeswitch import FakeOFTable

ROUTER = "02:fe:00:00:00:01"
TRANSIT = ExitPort("transit", 1, "00:00:00:00:01:02", 3)
WEST = ExitPort("west", 2, "00:00:00:00:01:03", 4, slice_kbps=5000, dscp=34)


def _switch(routes, ports=(TRANSIT, WEST), live=lambda port: True) -> FakeOFTable:
    switch = FakeOFTable(1, live=live)
    entries = switch_entries(ROUTER, ports, routes)
    switch.apply_all(meters.to_add(m) for m in entries.meters)
    switch.apply_all(groups.to_add(g) for g in entries.groups)
    switch.apply_all(flows.to_flowmod(s) for s in (*pipeline_flows(), *entries.flows))
    return switch


def _send(switch, dst_ip: str, eth_dst: str = ROUTER):
    return switch.process(
        {
            "in_port": 1,
            "eth_src": "00:00:00:00:00:01",
            "eth_dst": eth_dst,
            "eth_type": ETH_TYPE_IP,
            "ipv4_src": "10.0.0.1",
            "ipv4_dst": dst_ip,
            "ip_proto": 17,
            "ip_dscp": 0,
        }
    )


def test_a_prefix_leaves_by_its_groups_first_exit_rewritten_and_metered():
    switch = _switch([GroupRoute(1, ("100.64.0.0/24",), ("west", "transit"))])
    (out,) = _send(switch, "100.64.0.9")
    assert out.port == 4
    assert out.headers["eth_dst"] == WEST.mac and out.headers["eth_src"] == ROUTER
    assert out.headers["ip_dscp"] == 34
    assert list(out.meters) == [dataplane.meter_id(2)]


def test_longest_prefix_wins_and_an_unrouted_destination_is_dropped():
    switch = _switch(
        [
            GroupRoute(1, ("100.64.0.0/16",), ("transit",)),
            GroupRoute(2, ("100.64.7.0/24",), ("west", "transit")),
        ]
    )
    assert [e.port for e in _send(switch, "100.64.7.1")] == [4]
    assert [e.port for e in _send(switch, "100.64.8.1")] == [3]
    assert _send(switch, "198.51.100.1") == []


def test_a_dead_exit_port_fails_over_in_the_switch_to_the_next_exit():
    switch = _switch([GroupRoute(1, ("100.64.0.0/24",), ("west", "transit"))], live=lambda port: port != 4)
    (out,) = _send(switch, "100.64.0.9")
    assert out.port == 3 and out.headers["eth_dst"] == TRANSIT.mac and not out.meters


def test_frames_not_for_the_router_are_not_steered():
    switch = _switch([GroupRoute(1, ("100.64.0.0/24",), ("transit",))])
    assert all(e.port not in (3, 4) for e in _send(switch, "100.64.0.9", eth_dst="00:00:00:00:00:02"))


def test_a_group_whose_exits_are_unknown_gets_no_flows():
    entries = switch_entries(ROUTER, [TRANSIT], [GroupRoute(1, ("100.64.0.0/24",), ("west",))])
    assert not entries.groups
    assert all(f.table != "egress" for f in entries.flows)
