"""QoS classes on a real Mininet network: EF traffic keeps its rate across a congested
link while best effort is held to its meter at the ingress switch.

Triangle s1-s2-s3 with 10 Mbit/s links (bw_scale 0.1), two hosts per switch. h1x1
(EF, DSCP 46) and h1x2 (best effort, DSCP 0) on s1 both send UDP to h2x1 on s2,
together offering 15 Mbit/s to the 10 Mbit/s link s1-s2. Best effort is metered to
4 Mbit/s at s1, so EF keeps all of its 5. The same two senders with DSCPs no class
lists (nothing metered) show what the link alone does: it drops from both.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest

from labs.lab import Lab

LINK_MBPS = 10.0
EF_MBPS, BE_MBPS, BE_METER_MBPS = 5.0, 10.0, 4.0
SECONDS = 6
SINK = "h2x1"
PORTS = {"h1x1": 5201, "h1x2": 5202}
CONFIG = {
    "controller": {"providers": ["apps.qos.app:provider"], "telemetry": {"poll_interval_s": 1.0}},
    "qos": {"classes": [{"name": "ef", "dscp": [46], "rank": 0},
                        {"name": "best-effort", "dscp": [0], "rank": 2, "rate_mbps": BE_METER_MBPS}]},
}


@pytest.fixture(scope="module")
def lab():
    lab = Lab("triangle", bw_scale=LINK_MBPS / 100, hosts_per_switch=2, controller_config=CONFIG)
    servers = []
    try:
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        sink = lab.net.get(SINK)
        for port in PORTS.values():
            servers.append(sink.popen(["iperf3", "-s", "-p", str(port)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for name in PORTS:      # learn the hosts and install their paths before measuring
            lab.net.get(name).cmd(f"ping -c1 -W2 {sink.IP()} >/dev/null")
        time.sleep(0.5)         # the iperf3 servers are listening
        yield lab
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(5)
        lab.stop()


def iperf_udp(lab, src: str, mbps: float, tos: int):
    return lab.net.get(src).popen(
        ["iperf3", "-c", lab.net.get(SINK).IP(), "-p", str(PORTS[src]), "-u", "-b", f"{mbps}M",
         "-t", str(SECONDS), "-l", "1200", "--tos", str(tos), "-J"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def delivered_mbps(proc) -> float:
    out, _ = proc.communicate(timeout=SECONDS + 30)
    result = json.loads(out)
    assert "error" not in result, result.get("error")
    total = result["end"]["sum"]
    return total["bytes"] * 8 * (1 - total["lost_percent"] / 100) / total["seconds"] / 1e6


def qos_metrics(lab) -> dict[tuple[str, str, str], float]:
    """{(metric, class, measure): value} of the controller's foresight_qos_* samples."""
    url = f"http://127.0.0.1:{lab.controller.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for m in re.finditer(r'^(foresight_qos_\w+)\{class="([^"]+)",measure="([^"]+)"\} (\S+)$', text, re.M):
        out[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
    return out


def run_pair(lab, ef_tos: int, be_tos: int) -> tuple[float, float, dict]:
    """EF_MBPS from h1x1 and BE_MBPS from h1x2 at once; (EF delivered, BE delivered,
    the controller's QoS metrics half-way through)."""
    runs = [iperf_udp(lab, "h1x1", EF_MBPS, ef_tos), iperf_udp(lab, "h1x2", BE_MBPS, be_tos)]
    time.sleep(SECONDS / 2)
    mid = qos_metrics(lab)
    return delivered_mbps(runs[0]), delivered_mbps(runs[1]), mid


def test_ef_keeps_its_rate_while_best_effort_is_held_to_its_meter(lab):
    before = qos_metrics(lab)
    ef, be, mid = run_pair(lab, ef_tos=46 << 2, be_tos=0)
    after = qos_metrics(lab)
    print(f"\nlink s1-s2 {LINK_MBPS:g} Mbit/s; offered EF {EF_MBPS:g} + best effort {BE_MBPS:g} Mbit/s "
          f"(best-effort meter {BE_METER_MBPS:g})")
    print(f"  with QoS      EF delivered {ef:.2f} Mbit/s, best effort delivered {be:.2f} Mbit/s")
    seen = [f"{name} offered {mid[('foresight_qos_rate_mbps', name, 'offered')]:.2f} dropped "
            f"{mid[('foresight_qos_rate_mbps', name, 'dropped')]:.2f} Mbit/s"
            for name in ("ef", "best-effort")]
    print("  controller    " + ", ".join(seen))
    assert ef == pytest.approx(EF_MBPS, rel=0.05), "EF gets (nearly) all it offers"
    assert be == pytest.approx(BE_METER_MBPS, rel=0.15), "best effort is held near its meter rate"
    # The controller's meter counters saw the same: best effort dropped at s1, EF not at all.
    dropped = after[("foresight_qos_bytes_total", "best-effort", "dropped")] \
        - before[("foresight_qos_bytes_total", "best-effort", "dropped")]
    offered = after[("foresight_qos_bytes_total", "best-effort", "offered")] \
        - before[("foresight_qos_bytes_total", "best-effort", "offered")]
    assert 0.4 < dropped / offered < 0.75
    assert after[("foresight_qos_bytes_total", "ef", "dropped")] == 0
    assert after[("foresight_qos_bytes_total", "ef", "offered")] > EF_MBPS * 1e6 / 8 * SECONDS * 0.8
    assert mid[("foresight_qos_rate_mbps", "best-effort", "dropped")] > 0


def test_without_classes_the_link_drops_from_both(lab):
    # DSCP 10 and 12 are in no class: nothing is metered, the 10 Mbit/s link decides.
    ef, be, _ = run_pair(lab, ef_tos=10 << 2, be_tos=12 << 2)
    print(f"\n  without QoS   'EF' delivered {ef:.2f} Mbit/s, 'best effort' delivered {be:.2f} Mbit/s")
    assert ef < EF_MBPS * 0.9, "the congested link takes its share from the would-be EF flow too"
    assert be > BE_METER_MBPS * 1.2, "and nothing holds the would-be best effort back"
