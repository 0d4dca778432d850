"""Groups and meters on a real Open vSwitch bridge (userspace datapath), installed by
the real controller process from a provider: a select group over two members, a
2000 kbit/s meter and a VIP flow that uses both. VIP traffic leaves rewritten to a
member, and a controller restart reconciles the bridge without one flow-, group- or
meter-mod."""

from __future__ import annotations

import os
import select
import socket
import time

import pytest
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from tests.lib import vip_provider as vip
from tests.lib.ovs_lab import controlled_bridge, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                "meter_adds", "meter_modifies", "meter_deletes")


def _ofctl(command: str, bridge: str) -> str:
    return run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", command, bridge) if command == "dump-flows" \
        else run("ovs-ofctl", "-O", "OpenFlow13", command, bridge)


def _state(bridge: str) -> tuple[list[str], list[str], list[str]]:
    """Flows, groups and meters as ovs-ofctl prints them, without counters, sorted."""
    def lines(text: str) -> list[str]:
        return sorted(line.strip() for line in text.splitlines()[1:] if line.strip())
    return (lines(_ofctl("dump-flows", bridge)), lines(_ofctl("dump-groups", bridge)),
            lines(_ofctl("dump-meters", bridge)))


@pytest.fixture
def vip_bridge():
    tag = f"{os.getpid() % 100000}"
    bridge = f"fsg{tag}"
    # (switch side, host side, OpenFlow port): members on 1 and 2, the client on 3.
    veths = [(f"fsg{tag}s{n}", f"fsg{tag}h{n}", n) for n in (1, 2, vip.CLIENT_PORT)]
    # Packet-ins unmetered: the provider's meter is the only one on the bridge.
    config = {"controller": {"providers": ["tests.lib.vip_provider:provider"],
                             "discovery": {"edge_after_s": 1.0, "packet_in_pps": 0}}}
    with controlled_bridge(bridge, vip.DP_ID, config, veths, no_ipv6=True) as parts:
        yield parts


def _installed(bridge: str):
    flows, groups, meters = _state(bridge)
    return any(f"group:{vip.GROUP_ID}" in f for f in flows) and groups and meters and (flows, groups, meters)


def _vip_frame(i: int) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=vip.VIP_MAC, src=f"02:77:00:00:01:{i:02x}", ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src=f"10.77.1.{i + 1}", dst=vip.VIP_IP, proto=17))
    pkt.add_protocol(udp.udp(src_port=40000 + i, dst_port=9))
    pkt.add_protocol(b"foresight")
    pkt.serialize()
    return bytes(pkt.data)


def test_group_and_meter_are_installed_used_and_survive_a_restart_untouched(vip_bridge):
    bridge, host_ifs, controller = vip_bridge
    flows, groups, meters = wait_for(lambda: _installed(bridge), what="VIP flow, group and meter")

    (group,) = groups
    assert group.startswith(f"group_id={vip.GROUP_ID},type=select,")
    for port, mac, ip in vip.MEMBERS:      # (ovs-ofctl leaves out the default weight 1)
        assert f"bucket=actions=set_field:{mac}->eth_dst,set_field:{ip}->ip_dst,output:{port}" in group
    assert f"meter={vip.METER_ID} kbps burst" in meters[0]
    assert f"type=drop rate={vip.RATE_KBPS} burst_size={vip.BURST_KB}" in meters
    (vip_flow,) = [f for f in flows if vip.VIP_IP in f]
    assert vip_flow == (f"cookie=0xf04000000000001, table=1, priority=100,ip,nw_dst={vip.VIP_IP} "
                        f"actions=meter:{vip.METER_ID},group:{vip.GROUP_ID}")
    # The slice table's miss goes on to forward; the ingress miss goes to slice.
    assert "cookie=0xf01000000000000, table=1, priority=0 actions=goto_table:2" in flows
    assert "cookie=0xf01000000000000, priority=0 actions=goto_table:1" in flows
    counters = controller.client.status().counters
    assert (counters.get("group_adds"), counters.get("meter_adds")) == (1, 1)
    assert counters.get("openflow_errors", 0) == 0          # the bridge took every message

    # Frames to the VIP leave on a member's port, rewritten to that member.
    received = {port: [] for port, _, _ in vip.MEMBERS}
    sockets = {}
    try:
        for port, _, _ in vip.MEMBERS:
            sockets[port] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
            sockets[port].bind((host_ifs[port], 0))
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as client:
            client.bind((host_ifs[vip.CLIENT_PORT], 0))
            for i in range(32):
                client.send(_vip_frame(i))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and sum(map(len, received.values())) < 32:
            ready, _, _ = select.select(list(sockets.values()), [], [], 0.2)
            for port, sock in sockets.items():
                if sock in ready:
                    pkt = packet.Packet(sock.recv(2048))
                    dgram = pkt.get_protocol(udp.udp)
                    if dgram is not None and dgram.dst_port == 9:
                        received[port].append(pkt)
    finally:
        for sock in sockets.values():
            sock.close()
    for port, mac, ip in vip.MEMBERS:
        for pkt in received[port]:
            assert (pkt.get_protocol(ethernet.ethernet).dst, pkt.get_protocol(ipv4.ipv4).dst) == (mac, ip)
    assert sum(map(len, received.values())) == 32           # every frame to exactly one member
    assert all(received.values()), {p: len(r) for p, r in received.items()}     # spread over both

    # Restart: the new process finds everything in place and changes nothing.
    time.sleep(1.0)                         # the tick loop has saved topology and ports
    before = _state(bridge)
    controller.stop()
    controller.start()
    wait_for(lambda: controller.client.status().counters.get("reconciliations", 0) >= 1, timeout_s=30,
          what="reconciliation after restart")
    time.sleep(1.0)
    counters = controller.client.status().counters
    assert {k: counters.get(k, 0) for k in MOD_COUNTERS} == dict.fromkeys(MOD_COUNTERS, 0)
    assert counters.get("openflow_errors", 0) == 0
    assert _state(bridge) == before
