"""The controller restarts while traffic flows: state comes back from its SQLite
file, reconnecting switches are reconciled against the flows they already have,
and the traffic does not notice."""

from __future__ import annotations

import re
import subprocess
import time

from tests.lib.readings import ovs_flows


def _loss(output: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert m, output[-300:]
    return int(m.group(1)), int(m.group(2))


def test_restart_keeps_hosts_paths_and_flows_and_drops_no_packets(lab_factory):
    lab = lab_factory("triangle", bw_scale=0.1)
    h1, h2, h3 = (lab.net.get(n) for n in ("h1", "h2", "h3"))
    assert lab.net.ping([h1, h2, h3], timeout=2) == 0.0
    time.sleep(1.0)                     # the tick loop has saved the state
    bridges = ("s1", "s2", "s3")
    before = {b: ovs_flows(b) for b in bridges}

    # A fixed count with a later deadline: ping waits for the last replies, so a
    # reply still in flight when sending stops is not counted as lost.
    ping = h1.popen(["ping", "-i", "0.02", "-c", "400", "-w", "20", h2.IP()],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    took = lab.controller.stop()
    assert took is not None and took < 2.0
    time.sleep(1.0)                     # the switches run on their own meanwhile
    lab.controller.start()
    client = lab.client
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and client.status().counters.get("reconciliations", 0) < 3:
        time.sleep(0.1)
    output, _ = ping.communicate(timeout=30)

    sent, received = _loss(output)
    assert received == sent, f"lost {sent - received} of {sent} pings across the restart"
    status = client.status()
    assert status.counters.get("reconciliations", 0) == 3
    # Reconciliation found every flow and fast-failover group already right:
    # nothing deleted, nothing re-added.
    for counter in ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes"):
        assert status.counters.get(counter, 0) == 0, counter
    assert {b: ovs_flows(b) for b in bridges} == before
    assert {h.ipv4[0] for h in client.hosts()} == {h1.IP(), h2.IP(), h3.IP()}
    assert client.path(h1.IP(), h2.IP()).installed
    assert lab.net.ping([h1, h2, h3], timeout=2) == 0.0
