"""GÉANT (22 routers, 36 links, capacities from links.csv) under the controller."""

from __future__ import annotations

from labs.lab import Lab


def test_geant_discovery_and_pingall_without_loss():
    lab = Lab("geant", bw_scale=0.01)
    try:
        lab.start()
        topo = lab.wait_discovery(timeout_s=90)
        assert (len(topo.switches), len(topo.links)) == (22, 72)
        capacities = sorted({round(link.capacity_mbps, 3) for link in topo.links})
        assert capacities == [1.55, 24.0, 100.0]
        lab.wait_edges()
        assert lab.net.pingAll(timeout=2) == 0.0
    finally:
        lab.stop()
