"""Ports held administratively down (controller.ports, apps.links) on real Open vSwitch
bridges (userspace datapath): two bridges joined by two veth pairs, port 3 to port 3
an ordinary link and port 1 to port 1 a spare beside it, and a host veth on one of
them. The controller's port mod takes the veth itself down, so the far end loses
carrier and the link leaves the topology; brought into service through the
provisioning API, the ports come up and LLDP finds the link again; a port someone
else takes down is left alone, one of ours someone sets up goes down again."""

from __future__ import annotations

import os
import re
import time

import pytest

from apps.provisioning.client import ProvisioningClient
from proto import provisioning_pb2 as pb
from tests.lib.ovs_lab import controlled_bridges, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

DP_A, DP_B = 0xA1, 0xB1


def port_config(bridge: str, port: int) -> tuple[str, str]:
    """(config, state) of an OpenFlow port as ``ovs-ofctl show`` reports them."""
    shown = run("ovs-ofctl", "-O", "OpenFlow13", "show", bridge)
    found = re.search(rf"^ {port}\(\S+\): addr:\S+\n\s+config:\s+(\S+)\n\s+state:\s+(\S+)", shown, re.M)
    assert found, shown
    return found.group(1), found.group(2)


ORDINARY = {(DP_A, 3, DP_B, 3), (DP_B, 3, DP_A, 3)}
SPARE = {(DP_A, 1, DP_B, 1), (DP_B, 1, DP_A, 1)}


def links(client) -> set[tuple[int, int, int, int]]:
    return {(lk.src_dp_id, lk.src_port, lk.dst_dp_id, lk.dst_port) for lk in client.topology().links}


def link_up(name: str) -> bool:
    """The interface is up with carrier (what the kernel says of the veth)."""
    return "LOWER_UP" in run("ip", "-br", "link", "show", name)


@pytest.fixture
def spare(tmp_path):
    tag = f"{os.getpid() % 10000}"
    names = {k: f"fsp{tag}{k}" for k in ("A", "B", "a", "b", "c", "C", "h", "H")}
    config = {
        "controller": {"providers": ["apps.links.app:provider", "apps.provisioning.app:provider"],
                       "discovery": {"lldp_interval_s": 0.5, "link_timeout_s": 2.0}},
        "topology": {"switches": [{"dp_id": DP_A, "name": "sa"}, {"dp_id": DP_B, "name": "sb"}],
                     "links": [{"a": DP_A, "b": DP_B, "capacity_mbps": 250}]},
        "links": {"spares": [{"name": "ab", "a": "sa", "a_port": 1, "b": DP_B, "b_port": 1}],
                  "state_path": str(tmp_path / "links.sqlite")},
        "provisioning": {"store_path": "", "auto": False},
    }
    veths = [(names["a"], names["A"], 1, names["b"], names["B"], 1),      # the spare
             (names["c"], names["A"], 3, names["C"], names["B"], 3),      # the ordinary link
             (names["h"], names["A"], 2, names["H"], None, None)]         # a host on A
    with controlled_bridges([(names["A"], DP_A), (names["B"], DP_B)], config, veths) as controller:
        with ProvisioningClient(controller.grpc_address) as prov:
            yield names, controller, prov


def test_the_spare_is_held_down_brought_up_through_provisioning_and_taken_down_again(spare):
    names, controller, prov = spare
    client = controller.client
    wait_for(lambda: client.status().switches == 2, what="both bridges connected")
    # Held down from connect: both veth ends down, so LLDP finds the ordinary link alone.
    wait_for(lambda: port_config(names["A"], 1)[0] == "PORT_DOWN" and port_config(names["B"], 1)[0]
             == "PORT_DOWN", what="both ends of the spare admin-down")
    assert not link_up(names["a"]) and not link_up(names["b"])
    client.wait_topology(2, 2, timeout_s=10)
    time.sleep(2.0)         # four more LLDP rounds: still only the ordinary link
    assert links(client) == ORDINARY
    assert client.status().counters["port_mods_down"] == 2

    change = prov.stage(template="spare_link", params={"link": "ab"})
    assert change.state == pb.STAGED, change.detail
    done = prov.deploy(change.id)
    assert done.state == pb.DEPLOYED, done.detail
    wait_for(lambda: link_up(names["a"]) and link_up(names["b"]), what="spare veth up")
    assert port_config(names["A"], 1) == ("0", "LIVE") and port_config(names["B"], 1) == ("0", "LIVE")
    topo = client.wait_topology(2, 4, timeout_s=10)
    assert links(client) == ORDINARY | SPARE
    assert {lk.capacity_mbps for lk in topo.links} == {250.0}      # the pair's topology.links entry
    assert client.status().counters["port_mods_up"] == 2

    assert prov.rollback(change.id, "test").state == pb.ROLLED_BACK
    wait_for(lambda: not link_up(names["a"]) and not link_up(names["b"]), what="spare veth down")
    wait_for(lambda: links(client) == ORDINARY, what="the spare gone from the topology")
    assert client.status().counters["port_mods_down"] == 4


def test_ours_set_up_by_someone_goes_down_again_and_a_foreign_down_stays(spare):
    names, controller, _ = spare
    client = controller.client
    wait_for(lambda: port_config(names["A"], 1)[0] == "PORT_DOWN", what="spare held down")
    wait_for(lambda: client.status().counters.get("reconciliations", 0) >= 2, what="both reconciled")
    run("ovs-ofctl", "-O", "OpenFlow13", "mod-port", names["A"], "1", "up")
    wait_for(lambda: client.status().counters["port_mods_down"] == 3, what="a port mod taking it down again")
    wait_for(lambda: port_config(names["A"], 1)[0] == "PORT_DOWN", what="spare down again")
    run("ovs-ofctl", "-O", "OpenFlow13", "mod-port", names["A"], "2", "down")      # the host port: not ours
    time.sleep(3.0)
    assert port_config(names["A"], 2)[0] == "PORT_DOWN" and not link_up(names["h"])
    counters = client.status().counters
    assert counters["port_mods_down"] == 3 and counters.get("port_mods_up", 0) == 0
