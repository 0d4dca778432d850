"""Proactive peering end to end: the controller's peering app with real BGP (GoBGP as
our speaker, FRR routers as the transit provider and two peers) in Mininet.

One network serves the module, in order: sessions come up and each prefix leaves by
its exit (judged by which neighbour receives the datagrams); an established peering
has its slice on the switch; a neighbour flooding prefixes past its limit is torn down
and its traffic stays elsewhere; a controller restart loses no session, no plan and
no traffic; a killed peer fails over within a second, reported as an event with its
cause.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from apps.peering import dataplane
from labs.lab import StreamCollector
from labs.peering_lab import probe_kill
from labs.peering_net import (REVALIDATE_MS, NeighbourSpec, PeeringNetwork, max_revalidator, peering_section,
                              wait_for)
from proto import peering_pb2 as pb

PROBE = Path(__file__).resolve().parents[2] / "labs" / "udp_probe.py"

AS_NET_A, AS_NET_B, AS_NET_C = 64600, 64601, 64602
NET_A = [f"100.64.{i}.0/24" for i in range(4)]  # west's customer; transit too
NET_B = [f"100.64.{i}.0/24" for i in range(8, 12)]  # transit only
NET_C = [f"100.64.{i}.0/24" for i in range(16, 18)]  # east's customer; transit too
RECEIVE = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999)); s.settimeout(0.2)
    print("ready", flush=True); n = 0; end = time.time() + float(sys.argv[1])
    while time.time() < end:
        try: s.recv(2048); n += 1
        except socket.timeout: pass
    print(n, flush=True)
""")
SEND = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(int(sys.argv[2])):
        try: s.sendto(b"x" * 100, (sys.argv[1], 9999))
        except OSError: pass
        time.sleep(0.005)
""")


def _neighbours() -> list[NeighbourSpec]:
    transit = (
        [(p, (64999, AS_NET_A)) for p in NET_A]
        + [(p, (64999, AS_NET_B)) for p in NET_B]
        + [(p, (64999, AS_NET_C)) for p in NET_C]
    )
    return [
        NeighbourSpec(
            {
                "name": "transit",
                "asn": 64500,
                "address": "10.100.0.2",
                "kind": "transit",
                "capacity_mbps": 50.0,
                "cost_per_mbps": 1.0,
                "always": True,
                "latency_ms": 40.0,
            },
            transit,
        ),
        NeighbourSpec(
            {
                "name": "west",
                "asn": 64501,
                "address": "10.100.0.3",
                "capacity_mbps": 20.0,
                "cost_per_mbps": 0.3,
                "hour_cost": 0.01,
                "latency_ms": 12.0,
                "max_prefixes": 20,
                "registered_origins": [AS_NET_A],
            },
            [(p, (AS_NET_A,)) for p in NET_A],
        ),
        NeighbourSpec(
            {
                "name": "east",
                "asn": 64503,
                "address": "10.100.0.4",
                "capacity_mbps": 10.0,
                "cost_per_mbps": 0.3,
                "hour_cost": 0.01,
                "latency_ms": 15.0,
                "max_prefixes": 10,
                "registered_origins": [AS_NET_C],
            },
            [(p, (AS_NET_C,)) for p in NET_C],
        ),
    ]


@pytest.fixture(scope="module")
def edge():
    workdir = Path(tempfile.mkdtemp(prefix="foresight-e2e-peering-"))
    neighbours = _neighbours()
    config = {
        "controller": {"providers": ["apps.peering.app:provider"], "telemetry": {"poll_interval_s": 0.5}},
        "peering": peering_section(neighbours, workdir, "plain_bgp", interval_s=1.0),
    }
    network = PeeringNetwork(neighbours, workdir, config)
    try:
        network.start()
        network.wait_established("transit", len(NET_A + NET_B + NET_C))
        network.wait_established("west", len(NET_A))
        network.wait_established("east", len(NET_C))
        yield network
    finally:
        network.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def _received(edge: PeeringNetwork, dst: str, count: int = 40) -> dict[str, int]:
    """Send ``count`` datagrams from src1 to ``dst``: how many each neighbour received."""
    receivers = {
        n.name: edge.net.get(n.name).popen(
            [sys.executable, "-c", RECEIVE, "3"], stdout=subprocess.PIPE, text=True
        )
        for n in edge.neighbours
    }
    for proc in receivers.values():
        proc.stdout.readline()
    edge.net.get("src1").popen([sys.executable, "-c", SEND, dst, str(count)]).wait(10)
    return {name: int(proc.communicate(timeout=10)[0].strip() or 0) for name, proc in receivers.items()}


def _steered(edge: PeeringNetwork, dst: str, exit_: str) -> bool:
    got = _received(edge, dst)
    return got[exit_] >= 30 and sum(got.values()) == got[exit_]


def test_sessions_come_up_and_each_prefix_leaves_by_its_best_exit(edge):
    wait_for("west's prefixes steered to west", lambda: _steered(edge, "100.64.1.9", "west"), 20, every_s=0.5)
    assert _steered(edge, "100.64.9.9", "transit")  # only transit reaches NET_B
    assert _steered(edge, "100.64.17.9", "east")
    assert sum(_received(edge, "198.51.100.7").values()) == 0  # no route: dropped at the edge
    plan = edge.client.plan()
    assert {g.group: g.exit for g in plan.groups} == {
        f"as{AS_NET_A}": "west",
        f"as{AS_NET_B}": "transit",
        f"as{AS_NET_C}": "east",
    }
    assert plan.scheme == "plain_bgp" and not plan.degraded


def test_counters_refresh_at_the_lab_pace_while_up(edge):
    """Open vSwitch refreshes group counters every 500 ms by default, too slow for a
    0.75 s lab step: the network sets 100 ms while up (and puts the old value back)."""
    before = max_revalidator(str(REVALIDATE_MS))     # sets it again, returns what it was
    assert before == str(REVALIDATE_MS)


def test_an_established_peering_has_its_slice_on_the_switch(edge):
    sessions = edge.sessions()
    west = sessions["west"]
    assert west.slice_mbps == pytest.approx(20.0) and west.slice_priority == "silver"
    meters = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "edge"], capture_output=True, text=True, check=True
    ).stdout
    meter = dataplane.meter_id(2)  # west is the second neighbour
    at = meters.index(f"meter={meter} ")
    assert "kbps" in meters[at : at + 120] and "rate=20000" in meters[at : at + 160], meters
    assert sessions["transit"].slice_mbps == 0  # transit is not sliced


def test_a_neighbour_flooding_past_its_max_prefix_limit_is_torn_down_and_its_traffic_stays_on_transit(edge):
    extra = [(f"100.65.{i}.0/24", (AS_NET_C,)) for i in range(12)]
    edge.routers["east"].announce(extra)
    wait_for("east torn down", lambda: edge.sessions()["east"].state == pb.TORN_DOWN, 30)
    assert "max-prefix limit 10" in edge.sessions()["east"].detail
    wait_for("NET_C back on transit", lambda: _steered(edge, "100.64.17.9", "transit"), 20, every_s=0.5)
    assert _steered(edge, "100.64.1.9", "west")  # the others are untouched
    kinds = {d.kind for d in edge.client.plan(decisions=100).decisions}
    assert "teardown" in kinds


def _probe(edge: PeeringNetwork, host: str, peer: str, rate_hz: float, duration_s: float):
    """``labs/udp_probe.py`` in a host: sends to ``peer`` and counts what reaches it."""
    return edge.net.get(host).popen(
        [sys.executable, str(PROBE), "run", "--peer", peer, "--port", "5998", "--rate-hz", f"{rate_hz:g}",
         "--duration-s", f"{duration_s:g}"],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_controller_restart_loses_no_session_no_plan_and_no_traffic(edge):
    before = {g.group: g.exit for g in edge.client.plan().groups}
    probe = _probe(edge, "src1", "100.64.1.9", rate_hz=200, duration_s=12)
    listener = _probe(edge, "west", "10.0.0.1", rate_hz=1, duration_s=14)
    time.sleep(2)
    edge.client.close()
    edge.controller.stop()
    edge.controller.start()
    from apps.peering.client import PeeringClient

    edge.client = PeeringClient(edge.controller.grpc_address)
    sent = json.loads(probe.communicate(timeout=30)[0].strip().splitlines()[-1])
    got = json.loads(listener.communicate(timeout=30)[0].strip().splitlines()[-1])
    assert got["received"] >= sent["sent"] - 2, (
        f"lost {sent['sent'] - got['received']} of {sent['sent']} probes"
    )
    sessions = edge.sessions()
    assert sessions["west"].state == pb.ESTABLISHED and sessions["transit"].state == pb.ESTABLISHED
    assert sessions["east"].state == pb.TORN_DOWN  # a teardown survives the restart too
    wait_for("the same plan", lambda: {g.group: g.exit for g in edge.client.plan().groups} == before, 20)


def test_a_killed_peer_fails_over_within_a_second_and_the_failure_is_an_event(edge):
    events = StreamCollector(edge.client.watch())
    events.start()
    result = probe_kill(edge, "west", "100.64.1.9", duration_s=5.0, at_s=1.5)
    events.stop()
    print(f"west killed under a 1 kHz probe: {result}")
    assert result["probes"] >= 4000 and result["failover_loss_ms"] < 1000.0
    failovers = [e for e in events.events if e.kind == pb.FAILOVER]
    assert failovers and failovers[0].name == "west", [(e.kind, e.name, e.detail) for e in events.events]
    assert "dropped" in failovers[0].detail or "down" in failovers[0].detail
    assert _steered(edge, "100.64.1.9", "transit")
