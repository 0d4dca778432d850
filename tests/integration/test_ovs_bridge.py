"""The controller process against a real Open vSwitch bridge (userspace datapath),
without Mininet: pipeline installed, API and metrics answering, and garbage
frames from the network counted and survived."""

from __future__ import annotations

import os
import socket
import time
import urllib.request

import pytest

from controller.core import PACKET_IN_METER, pipeline_flows
from tests.lib.ovs_lab import controlled_bridge, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)


@pytest.fixture
def bridge_and_controller():
    tag = f"{os.getpid() % 100000}"
    veth, peer = f"fsi{tag}a", f"fsi{tag}b"
    config = {"controller": {"telemetry": {"poll_interval_s": 0.5}}}
    with controlled_bridge(f"fsi{tag}", 0xaa, config, [(veth, peer, None)]) as (bridge, _, controller):
        yield bridge, peer, controller


def test_bridge_gets_the_declared_pipeline_and_is_reported(bridge_and_controller):
    bridge, _, controller = bridge_and_controller
    client = controller.client
    topo = wait_for(lambda: (t := client.topology()).switches and t, what="switch in topology")
    (switch,) = topo.switches
    assert switch.dp_id == 0xAA and switch.connected
    assert [p.port_no for p in switch.ports] == [1]
    flows = wait_for(lambda: (f := run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge))
                  .count("cookie=0xf01") == len(pipeline_flows()) and f, what="pipeline flows")
    assert "priority=3000,dl_type=0x88cc actions=CONTROLLER:65535" in flows
    assert "cookie=0xf01000000000000, priority=0 actions=goto_table:1" in flows           # ingress -> slice
    assert "cookie=0xf01000000000000, table=1, priority=0 actions=goto_table:2" in flows  # slice -> forward
    assert "table=2, priority=10,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:3" in flows
    # Every flow on the bridge is owned by the controller's cookie ranges.
    for line in flows.strip().splitlines():
        assert line.strip().startswith(("cookie=0xf01", "cookie=0xf02", "cookie=0xf03")), line
    # Data-plane frames to the controller pass the packet-in meter (1000 packets/s by
    # default); LLDP does not.
    meter = PACKET_IN_METER
    assert f"cookie=0xf01000000000000, table=2, priority=0 actions=meter:{meter},CONTROLLER:65535" in flows
    assert f"priority=2000,arp,dl_dst=ff:ff:ff:ff:ff:ff actions=meter:{meter},CONTROLLER:65535" in flows
    # No provider is configured: no groups, and the packet-in meter is the only meter.
    assert run("ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge).count("group_id") == 0
    meters = run("ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge)
    assert meters.count("meter=") == 1
    assert f"meter={meter} pktps burst" in meters and "type=drop rate=1000 burst_size=1000" in meters


def test_metrics_endpoint_reports_the_switch(bridge_and_controller):
    _, _, controller = bridge_and_controller
    wait_for(lambda: controller.client.status().switches == 1, what="switch connected")
    url = f"http://127.0.0.1:{controller.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert "foresight_switches 1.0" in text
    assert 'foresight_flow_mods_total{op="add"}' in text
    assert "foresight_predictive_mode 0.0" in text


def test_garbage_frames_are_counted_and_do_not_hurt_the_controller(bridge_and_controller):
    _, peer, controller = bridge_and_controller
    client = controller.client
    # Reconciled and confirmed: the bridge has answered the barrier after the pipeline
    # flows, so the frames below meet them (before, a secure-mode bridge drops them).
    wait_for(lambda: (c := client.status().counters).get("reconciliations", 0) >= 1
             and c.get("barrier_replies", 0) >= max(1, c.get("sync_barriers", 0)),
             what="confirmed reconciliation")
    frames = [
        bytes.fromhex("ffffffffffff" "000000000001" "0806") + b"\x00\x01\x08",      # truncated ARP
        bytes.fromhex("ffffffffffff" "000000000001" "0806") + bytes(range(28)),     # nonsense ARP
        bytes.fromhex("000000000002" "000000000001" "0800") + b"\x45\x00\x00",      # truncated IPv4
    ]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((peer, 0))
        for frame in frames:
            sock.send(frame.ljust(60, b"\x00") if len(frame) < 60 else frame)
    wait_for(lambda: client.status().counters.get("packet_in", 0) >= 2, what="packet-ins")
    time.sleep(0.5)
    status = client.status()
    assert status.counters.get("bad_packets", 0) == len(frames)
    assert client.hosts() == []         # nothing was learned from garbage
    assert controller.proc.poll() is None
    assert status.switches == 1
    assert client.topology().switches[0].connected
