"""CreateSlice and ScaleSlice with ``enforce_timeout_s`` against a real Open vSwitch bridge
(userspace datapath) and the real controller process with the slices app.

Two members announce themselves on a secure-mode netdev bridge (an ARP each from
their veth), so the controller places them. A CreateSlice with enforce_timeout_s
returns only once the bridge has answered the barrier after the slice's meters,
groups and flows: ovs-ofctl, run the moment the call returns, finds exactly what
the slices data plane wants on that switch (``apps.slices.dataplane``), and the
answer carries ``enforced_s``. The same for a ScaleSlice that adds a bucket.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from os_ken.lib.packet import arp, ethernet, packet

from apps.slices import dataplane
from apps.slices.client import SlicesClient
from apps.slices.model import slice_from_dict
from controller.pipeline import PIPELINE
from tests.lib.ovs_lab import controlled_bridge, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

DP_ID = 0xAD
# (OpenFlow port, MAC, IPv4) of each pool member; the bridge has nothing else.
MEMBERS = ((1, "02:79:00:00:00:01", "10.79.0.1"), (2, "02:79:00:00:00:02", "10.79.0.2"))
SPEC = {"name": "web", "client": "acme", "vip_cidr": "10.79.1.0/29", "bandwidth_mbps": 20.0,
        "per_member_mbps": 10.0, "pool": "servers", "max_members": 2, "priority": "gold"}


@pytest.fixture
def bridge():
    tag = f"{os.getpid() % 100000}"
    veths = [(f"fse{tag}s{port}", f"fse{tag}h{port}", port) for port, _, _ in MEMBERS]
    with tempfile.TemporaryDirectory(prefix="foresight-enf-") as state:
        # Packet-ins unmetered: every meter on the bridge is the slice's.
        config = {"controller": {"providers": ["apps.slices.app:provider"],
                                 "discovery": {"edge_after_s": 1.0, "packet_in_pps": 0}},
                  "slices": {"store_path": str(Path(state) / "slices.sqlite"), "drain_s": 0,
                             "members": [{"pool": "servers", "host_id": f"m{port}", "ipv4": ip}
                                         for port, _, ip in MEMBERS],
                             "scaling": {"enabled": False}}}
        with controlled_bridge(f"fse{tag}", DP_ID, config, veths, no_ipv6=True) as parts:
            name, host_ifs, controller = parts
            slices = SlicesClient(controller.grpc_address)
            try:
                yield name, host_ifs, controller, slices
            finally:
                slices.close()


def _announce(interface: str, mac: str, ip: str) -> None:
    """A gratuitous ARP from the member: the controller learns where it is."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=mac, ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=mac, src_ip=ip, dst_mac="00:00:00:00:00:00",
                             dst_ip=ip))
    pkt.serialize()
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        sock.send(bytes(pkt.data))


def _ofctl(command: str, bridge: str) -> list[str]:
    out = run("ovs-ofctl", "-O", "OpenFlow13", command, bridge)
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def _installed(bridge: str, cookie: int) -> dict:
    """The slice's entries on the bridge, as ovs-ofctl prints them, reduced to comparable keys."""
    flows = Counter()
    for line in _ofctl("dump-flows", bridge):
        if int(re.search(r"cookie=(0x[0-9a-f]+)", line).group(1), 16) != cookie:
            continue
        table = re.search(r"table=(\d+)", line)
        meter = re.search(r"meter:(\d+)", line)
        flows[(int(table.group(1)) if table else 0, int(re.search(r"priority=(\d+)", line).group(1)),
               int(meter.group(1)) if meter else None)] += 1
    groups = {int(re.search(r"group_id=(\d+)", line).group(1)):
              (re.search(r"type=(\w+)", line).group(1), line.count("bucket="))
              for line in _ofctl("dump-groups", bridge)}
    meters, current = {}, None
    for line in _ofctl("dump-meters", bridge):
        if (m := re.search(r"meter=(\d+)", line)) is not None:
            current = int(m.group(1))
        if (band := re.search(r"type=drop rate=(\d+) burst_size=(\d+)", line)) is not None:
            meters[current] = (int(band.group(1)), int(band.group(2)))
    return {"flows": flows, "groups": groups, "meters": meters}


def _intended(answer) -> dict:
    """What the slices data plane wants on the bridge for the slice as the API returned it."""
    slice_ = slice_from_dict(SPEC)
    network = int(slice_.vip_cidr.network_address)
    placed = [dataplane.Placed(m.host_id, m.ipv4, int(ipaddress.IPv4Address(m.vip)) - network, m.mac, m.dp_id,
                               m.port_no, m.draining_until_s > 0) for m in answer.members]
    want = dataplane.switch_entries(slice_, answer.index, placed, DP_ID, lambda dp_id, target: None)
    return {"flows": Counter((PIPELINE.table(f.table).table_id, f.priority, f.meter) for f in want.flows),
            "groups": {g.group_id: (g.type, len(g.buckets)) for g in want.groups},
            "meters": {m.meter_id: (m.rate_kbps, m.burst_kb) for m in want.meters}}


def test_create_and_scale_return_once_the_bridge_holds_the_slice(bridge):
    name, host_ifs, controller, slices = bridge
    wait_for(lambda: controller.client.status().counters.get("reconciliations", 0) >= 1,
             what="the bridge connected and reconciled")

    def placed():
        for port, mac, ip in MEMBERS:
            _announce(host_ifs[port], mac, ip)
        return {h.mac for h in controller.client.hosts()} >= {mac for _, mac, _ in MEMBERS}
    wait_for(placed, what="both members placed")
    created = slices.create(**SPEC, members=1, enforce_timeout_s=10.0)
    cookie = dataplane.ids(created.index).cookie
    installed = _installed(name, cookie)             # right away: no waiting, no retry
    intended = _intended(created)
    assert [m.placed for m in created.members] == [True]
    assert intended["groups"] and intended["meters"] and intended["flows"]
    assert installed == intended
    assert 0 < created.enforced_s < 10.0

    scaled = slices.scale("web", 2, enforce_timeout_s=10.0)
    installed = _installed(name, cookie)
    intended = _intended(scaled)
    assert sorted(bucket for _, bucket in intended["groups"].values()) == [2, 2]
    assert installed == intended
    assert 0 < scaled.enforced_s < 10.0

    counters = controller.client.status().counters
    assert counters.get("openflow_errors", 0) == 0
    assert counters["barrier_replies"] >= 2
    assert counters.get("barrier_waits_timed_out", 0) == 0
    print(f"CreateSlice enforced in {created.enforced_s * 1e3:.1f} ms, ScaleSlice in "
          f"{scaled.enforced_s * 1e3:.1f} ms")


def test_watch_streams_end_cleanly_when_the_controller_stops(bridge):
    _, _, controller, slices = bridge
    _, stream = slices.watch_started("", timeout_s=20.0)
    slices.register_member("spare", "h-spare", "10.0.0.99")
    first = next(stream)
    assert first.slice_name == "" and "h-spare" in first.detail
    assert controller.stop() is not None           # SIGTERM: the controller exits
    assert list(stream) == [], "the stream ended without an error (not cut by the server going away)"
