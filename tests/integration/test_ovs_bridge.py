"""The controller process against a real Open vSwitch bridge (userspace datapath),
without Mininet: pipeline installed, API and metrics answering, and garbage
frames from the network counted and survived."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from topologies.lab import ControllerProcess, ensure_ovs

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def bridge_and_controller():
    ensure_ovs()
    tag = f"{os.getpid() % 100000}"
    bridge, veth, peer = f"fsi{tag}", f"fsi{tag}a", f"fsi{tag}b"
    workdir = Path(tempfile.mkdtemp(prefix="foresight-int-"))
    controller = ControllerProcess({"controller": {"telemetry": {"poll_interval_s": 0.5}}}, workdir)
    controller.start()
    try:
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", veth, "up")
        _run("ip", "link", "set", peer, "up")
        _run("ovs-vsctl", "--", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
             "fail_mode=secure", "protocols=OpenFlow13", "other-config:datapath-id=00000000000000aa",
             "--", "add-port", bridge, veth)
        _run("ovs-vsctl", "set-controller", bridge, f"tcp:127.0.0.1:{controller.of_port}")
        yield bridge, peer, controller
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], capture_output=True)
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        controller.stop()
        subprocess.run(["rm", "-rf", str(workdir)])


def _wait(predicate, timeout_s: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_bridge_gets_the_declared_pipeline_and_is_reported(bridge_and_controller):
    bridge, _, controller = bridge_and_controller
    client = controller.client
    topo = _wait(lambda: (t := client.topology()).switches and t, what="switch in topology")
    (switch,) = topo.switches
    assert switch.dp_id == 0xAA and switch.connected
    assert [p.port_no for p in switch.ports] == [1]
    flows = _wait(lambda: (f := _run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge))
                  .count("cookie=0xf01") == 7 and f, what="pipeline flows")
    assert "priority=3000,dl_type=0x88cc actions=CONTROLLER:65535" in flows
    assert "cookie=0xf01000000000000, priority=0 actions=goto_table:1" in flows           # ingress -> slice
    assert "cookie=0xf01000000000000, table=1, priority=0 actions=goto_table:2" in flows  # slice -> forward
    assert "table=2, priority=10,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=goto_table:3" in flows
    # Every flow on the bridge is owned by the controller's cookie ranges.
    for line in flows.strip().splitlines():
        assert line.strip().startswith(("cookie=0xf01", "cookie=0xf02", "cookie=0xf03")), line
    # No provider is configured: no groups, no meters.
    assert _run("ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge).count("group_id") == 0
    assert _run("ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge).count("meter=") == 0


def test_metrics_endpoint_reports_the_switch(bridge_and_controller):
    _, _, controller = bridge_and_controller
    _wait(lambda: controller.client.status().switches == 1, what="switch connected")
    url = f"http://127.0.0.1:{controller.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert "foresight_switches 1.0" in text
    assert 'foresight_flow_mods_total{op="add"}' in text
    assert "foresight_predictive_mode 0.0" in text


def test_garbage_frames_are_counted_and_do_not_hurt_the_controller(bridge_and_controller):
    _, peer, controller = bridge_and_controller
    client = controller.client
    _wait(lambda: client.status().counters.get("reconciliations", 0) >= 1, what="reconciliation")
    frames = [
        bytes.fromhex("ffffffffffff" "000000000001" "0806") + b"\x00\x01\x08",      # truncated ARP
        bytes.fromhex("ffffffffffff" "000000000001" "0806") + bytes(range(28)),     # nonsense ARP
        bytes.fromhex("000000000002" "000000000001" "0800") + b"\x45\x00\x00",      # truncated IPv4
    ]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((peer, 0))
        for frame in frames:
            sock.send(frame.ljust(60, b"\x00") if len(frame) < 60 else frame)
    _wait(lambda: client.status().counters.get("packet_in", 0) >= 2, what="packet-ins")
    time.sleep(0.5)
    status = client.status()
    assert status.counters.get("bad_packets", 0) == len(frames)
    assert client.hosts() == []         # nothing was learned from garbage
    assert controller.proc.poll() is None
    assert status.switches == 1
    assert client.topology().switches[0].connected
