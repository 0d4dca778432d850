"""A switch drops its controller connection and reconnects: the controller dumps
its flows, groups and meters and reconciles them — what it wants comes back, stale
and foreign entries go, and nothing is duplicated."""

from __future__ import annotations

import subprocess
import time

from controller.core import PACKET_IN_METER
from tests.lib.readings import ovs_flows


def _reconnect(bridge: str) -> None:
    # Drops the OpenFlow connection without touching the bridge's controller
    # config (changing that config would make OVS flush the flows itself).
    subprocess.run(["ovs-appctl", "-t", "ovs-vswitchd", "bridge/reconnect", bridge], check=True)


def _wait_reconciled(lab, count_before: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lab.client.status().counters.get("reconciliations", 0) > count_before:
            return
        time.sleep(0.1)
    raise AssertionError("switch was not reconciled after reconnecting")


def _groups(bridge: str) -> list[str]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines()[1:] if line.strip())


def _add_flow(bridge: str, flow: str) -> None:
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", bridge, flow], check=True)


def test_reconnect_restores_flows_without_duplicates_or_stale_entries(lab_factory):
    lab = lab_factory("triangle", bw_scale=0.1)
    h1, h2 = lab.net.get("h1"), lab.net.get("h2")
    assert "1 received" in h1.cmd(f"ping -c1 -W2 {h2.IP()}")
    wanted = ovs_flows("s1")
    assert any("dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02" in f for f in wanted)
    wanted_groups = _groups("s1")           # the path's fast-failover group
    assert len(wanted_groups) == 1 and "type=ff" in wanted_groups[0]

    # While connected, the switch gains flows the controller does not want and
    # loses one it does; the controller only finds out on reconnect.
    _add_flow("s1", "table=2,priority=1000,cookie=0x0f02000000000000,"
                    "dl_src=00:00:00:00:00:09,dl_dst=00:00:00:00:00:08,actions=output:3")
    _add_flow("s1", "table=0,priority=5,cookie=0xdead,actions=drop")
    # ... and a group and a meter in nobody's id range.
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-group", "s1",
                    "group_id=5,type=all,bucket=output:1"],
                   check=True)
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-meter", "s1",
                    "meter=9,kbps,band=type=drop,rate=100"],
                   check=True)
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", "s1",
                    "table=2,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02"], check=True)
    assert ovs_flows("s1") != wanted

    count = lab.client.status().counters.get("reconciliations", 0)
    _reconnect("s1")
    _wait_reconciled(lab, count)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and ovs_flows("s1") != wanted:
        time.sleep(0.2)
    after = ovs_flows("s1")
    assert after == wanted
    assert len(after) == len(set(after))
    assert _groups("s1") == wanted_groups       # the foreign group 5 is gone, ours stayed
    meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "s1"],
                            capture_output=True, text=True, check=True).stdout
    # The foreign meter 9 is gone, the packet-in meter stayed.
    assert [line.split()[0] for line in meters.splitlines() if line.startswith("meter=")] == \
        [f"meter={PACKET_IN_METER}"]
    assert "1 received" in h1.cmd(f"ping -c1 -W2 {h2.IP()}")


def test_reconnect_of_an_unchanged_switch_sends_no_flow_changes(lab_factory):
    lab = lab_factory("line2", bw_scale=0.1)
    h1, h2 = lab.net.get("h1"), lab.net.get("h2")
    assert "1 received" in h1.cmd(f"ping -c1 -W2 {h2.IP()}")
    time.sleep(1.0)
    wanted = ovs_flows("s2")
    before = lab.client.status().counters
    _reconnect("s2")
    _wait_reconciled(lab, before.get("reconciliations", 0))
    time.sleep(1.0)
    after = lab.client.status().counters
    assert ovs_flows("s2") == wanted
    # A control-channel blip is not a data-plane failure: the links stayed, and
    # the flows were already right, so not one flow-mod was sent anywhere.
    for counter in ("flow_adds", "flow_deletes", "group_adds", "group_deletes",
                    "meter_adds", "meter_deletes"):
        assert after.get(counter, 0) == before.get(counter, 0), counter
    assert after.get("event_link_delete", 0) == 0
