"""Abilene (12 routers, SNDlib capacities) in Mininet under the controller:
discovery, all-pairs reachability, TCP, and what the API reports about it."""

from __future__ import annotations

import json
import subprocess
import time

import networkx as nx
import pytest

from labs.lab import Lab

BW_SCALE = 0.001      # 9920 Mbit/s -> 9.92 Mbit/s links


@pytest.fixture(scope="module")
def abilene():
    lab = Lab("abilene", bw_scale=BW_SCALE,
              controller_config={"controller": {"telemetry": {"poll_interval_s": 1.0}}})
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


def test_discovery_finds_12_switches_and_30_directed_links(abilene):
    topo = abilene.wait_discovery(timeout_s=60)
    assert len(topo.switches) == 12
    assert len(topo.links) == 30
    names = {s.dp_id: s.name for s in topo.switches}
    assert "ATLAng" in names.values() and "STTLng" in names.values()
    by_pair = {(names[link.src_dp_id], names[link.dst_dp_id]): link for link in topo.links}
    # Capacities come from the SNDlib metadata, scaled like the Mininet links.
    assert by_pair[("ATLAng", "IPLSng")].capacity_mbps == pytest.approx(2480 * BW_SCALE)
    assert by_pair[("IPLSng", "ATLAng")].capacity_source == "metadata"
    assert by_pair[("DNVRng", "KSCYng")].capacity_mbps == pytest.approx(9920 * BW_SCALE)
    # Every discovered link has its reverse.
    assert ({(link.dst_dp_id, link.src_dp_id) for link in topo.links}
            == {(link.src_dp_id, link.dst_dp_id) for link in topo.links})


def test_pingall_has_no_loss(abilene):
    abilene.wait_edges()
    assert abilene.net.pingAll(timeout=2) == 0.0
    hosts = abilene.client.hosts()
    assert len(hosts) == 12
    assert all(h.port_no == 1 for h in hosts)     # each host on its switch's port 1


def test_path_between_distant_hosts_is_a_shortest_path(abilene):
    h_src, h_dst = abilene.net.get("h1"), abilene.net.get("h11")
    h_src.cmd(f"ping -c1 -W2 {h_dst.IP()}")
    path = abilene.client.path(h_src.IP(), h_dst.IP())
    graph = abilene.spec.graph()
    hops = nx.shortest_path_length(graph, "s1", "s11")
    assert [h.dp_id for h in path.hops][0] == 1 and path.hops[-1].dp_id == 11
    assert len(path.hops) == hops + 1
    assert path.installed
    assert path.hops[0].in_port == 1 and path.hops[-1].out_port == 1


def test_tcp_iperf3_end_to_end_fills_the_path(abilene):
    src, dst = abilene.net.get("h1"), abilene.net.get("h11")
    dst.cmd("iperf3 -s -1 -D -p 5201 --logfile /dev/null")
    time.sleep(0.5)
    client = src.popen(["iperf3", "-c", dst.IP(), "-p", "5201", "-t", "5", "-J"],
                       stdout=subprocess.PIPE, text=True)
    time.sleep(3.0)     # mid-transfer, after at least one port-stats poll
    links = abilene.client.topology().links
    output, _ = client.communicate(timeout=30)
    received_mbps = json.loads(output)["end"]["sum_received"]["bits_per_second"] / 1e6
    # The path's links are 9.92 Mbit/s: TCP should get most of it, and not more.
    assert 0.8 * 9.92 < received_mbps < 1.05 * 9.92
    # The controller saw the transfer: the links on the path were the busy ones.
    path = abilene.client.path(src.IP(), dst.IP())
    on_path = {(a.dp_id, b.dp_id) for a, b in zip(path.hops, path.hops[1:])}
    busy = {(link.src_dp_id, link.dst_dp_id) for link in links if link.utilisation > 0.5}
    assert busy == on_path
