"""A spare link brought into service and back out through provisioning, in Mininet.

The triangle with one host per switch, the links and provisioning apps loaded: s1 - s2
- s3 carry traffic and s1:3 - s3:2 is a spare the controller holds administratively
down. Before: its veths are down, the topology has four directed links, and h1's
pings to h3 cross s2. A ``spare_link`` change staged and deployed through the
provisioning gRPC API: the veths come up, LLDP finds the link (its capacity the
topology metadata's), the pair's path moves onto it and the pings cross it. Rolled
back: the spare is down again and the pings go through s2 once more. Mininet stops
what it started (bridges, veths, host namespaces)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from apps.provisioning.client import ProvisioningClient
from labs.lab import Lab
from proto import provisioning_pb2 as pb
from tests.lib.ovs_lab import wait_for

SPARE = {"name": "s1-s3", "a": "s1", "a_port": 3, "b": 3, "b_port": 2}    # triangle: s1-eth3 - s3-eth2
SPARE_INTFS = ("s1-eth3", "s3-eth2")


def config(state: Path) -> dict:
    return {
        "controller": {"providers": ["apps.links.app:provider", "apps.provisioning.app:provider"]},
        "links": {"spares": [SPARE], "state_path": str(state / "links.sqlite")},
        "provisioning": {"store_path": str(state / "provisioning.sqlite"), "auto": False},
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state = tmp_path_factory.mktemp("spare")
    lab = Lab("triangle", bw_scale=1.0, link_bw=False, controller_config=config(state), workdir=state / "lab")
    lab.prov = None
    try:
        lab.start()
        lab.client.wait_topology(3, 4, timeout_s=60)        # the spare's two directed links held back
        lab.wait_edges()
        lab.prov = ProvisioningClient(lab.controller.grpc_address)
        yield lab
    finally:
        if lab.prov is not None:
            lab.prov.close()
        lab.stop()
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    assert not {"s1", "s2", "s3"} & set(bridges), bridges
    for intf in SPARE_INTFS:
        assert subprocess.run(["ip", "link", "show", intf], capture_output=True).returncode != 0


def carrier(intf: str) -> bool:
    return "LOWER_UP" in subprocess.run(["ip", "-br", "link", "show", intf], capture_output=True,
                                        text=True, check=True).stdout


def tx_packets(intf: str) -> int:
    return int(Path(f"/sys/class/net/{intf}/statistics/tx_packets").read_text())


def links(lab) -> set[tuple[int, int, int, int]]:
    return {(lk.src_dp_id, lk.src_port, lk.dst_dp_id, lk.dst_port) for lk in lab.client.topology().links}


def pings_cross(lab, count: int = 30) -> dict[str, int]:
    """h1 pings h3 ``count`` times (all answered); frames s1 sent towards s2 and over the spare."""
    before = {intf: tx_packets(intf) for intf in ("s1-eth2", "s1-eth3")}
    out = lab.net.get("h1").cmd(f"ping -c {count} -i 0.02 -W 1 -q 10.0.0.3")
    assert f"{count} received" in out, out
    return {intf: tx_packets(intf) - n for intf, n in before.items()}


def path(lab) -> list[int]:
    return [h.dp_id for h in lab.client.path("10.0.0.1", "10.0.0.3").hops]


def test_the_spare_comes_into_service_carries_the_traffic_and_goes_back_out(lab):
    # Before: held down, not in the topology, the traffic through s2.
    assert not any(carrier(i) for i in SPARE_INTFS)
    assert (1, 3, 3, 2) not in links(lab) and len(links(lab)) == 4
    lab.net.get("h1").cmd("ping -c 2 -W 2 10.0.0.3")            # the pair gets its path
    assert path(lab) == [1, 2, 3]
    sent = pings_cross(lab)
    assert sent["s1-eth2"] >= 30 and sent["s1-eth3"] == 0, sent

    change = lab.prov.stage(template="spare_link", params={"link": "s1-s3"})
    assert change.state == pb.STAGED, change.detail
    assert change.summary == "spare link s1-s3 (s1 - s3): out of service -> in service"
    began = time.monotonic()
    done = lab.prov.deploy(change.id)
    assert done.state == pb.DEPLOYED, done.detail
    wait_for(lambda: all(carrier(i) for i in SPARE_INTFS), timeout_s=10, what="the spare's veths up")
    topo = lab.client.wait_topology(3, 6, timeout_s=15)
    found_s = time.monotonic() - began
    spare = [lk for lk in topo.links if (lk.src_dp_id, lk.src_port) in ((1, 3), (3, 2))]
    assert {(lk.dst_dp_id, lk.dst_port) for lk in spare} == {(3, 2), (1, 3)}
    assert {lk.capacity_mbps for lk in spare} == {100.0}       # the triangle's topology.links entry
    wait_for(lambda: path(lab) == [1, 3], timeout_s=10, what="h1 -> h3 over the spare")
    sent = pings_cross(lab)
    print(f"\nspare in service and found by LLDP {found_s:.1f} s after the deploy; pings from s1: {sent}")
    assert sent["s1-eth3"] >= 30 and sent["s1-eth2"] < 10, sent

    back = lab.prov.rollback(change.id, "e2e")
    assert back.state == pb.ROLLED_BACK, back.detail
    wait_for(lambda: not any(carrier(i) for i in SPARE_INTFS), timeout_s=10, what="the spare's veths down")
    lab.client.wait_topology(3, 4, timeout_s=15)
    wait_for(lambda: path(lab) == [1, 2, 3], timeout_s=10, what="h1 -> h3 through s2 again")
    sent = pings_cross(lab)
    assert sent["s1-eth2"] >= 30 and sent["s1-eth3"] == 0, sent
    counters = lab.client.status().counters
    assert counters["port_mods_down"] == 4 and counters["port_mods_up"] == 2, dict(counters)
