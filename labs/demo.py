"""``make demo``: the controller discovers and forwards on real Abilene.

Starts Open vSwitch, the Foresight controller and Mininet with the 12-router
Abilene network (SNDlib capacities scaled by --bw-scale into link rates), then:

1. waits for LLDP discovery and reports switches and directed links found;
2. runs pingAll (every host to every other) and reports the loss;
3. runs an iperf3 TCP transfer between the two hosts farthest apart, while
   polling link utilisation from the controller's port statistics;
4. prints the path the controller chose and the busiest links;
5. tears everything down and checks that no bridge or process is left.

The report is printed and written to reports/demo.txt and reports/demo.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import networkx as nx

from labs.lab import ROOT, Lab, StreamCollector, write_report

LOG = logging.getLogger(__name__)


def farthest_pair(spec) -> tuple[str, str]:
    """The switch pair with the most hops between them; ties broken by name order."""
    graph = spec.graph()
    lengths = dict(nx.all_pairs_shortest_path_length(graph))

    def key(pair):
        return (-lengths[pair[0]][pair[1]], spec.switch(pair[0]).dp_id, spec.switch(pair[1]).dp_id)

    pairs = [(a, b) for a in graph for b in graph if a != b]
    return min(pairs, key=key)


def _bridges() -> set[str]:
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True)
    return set(out.stdout.split())


class EventLog(StreamCollector):
    """Collects WatchEvents, to time discovery from the controller's own clock."""

    def __init__(self, client):
        super().__init__(client.watch(["SWITCH_ENTER", "LINK_ADD"]))

    def discovery_s(self) -> float:
        """From the first switch connecting to the last link found."""
        enters = [e.time for e in self.events if e.kind == 1]
        links = [e.time for e in self.events if e.kind == 5]
        return max(links) - min(enters) if enters and links else float("nan")


class UtilisationSampler(threading.Thread):
    """Polls GetTopology and keeps each directed link's peak utilisation."""

    def __init__(self, client, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.client = client
        self.interval_s = interval_s
        self.peak: dict[str, tuple[float, float, float, int, int]] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                topo = self.client.topology()
            except Exception:  # noqa: BLE001 - sampling is best effort while the lab runs
                continue
            for link in topo.links:
                best = self.peak.get(link.name)
                if best is None or link.utilisation > best[0]:
                    self.peak[link.name] = (link.utilisation, link.rate_mbps, link.capacity_mbps,
                                            link.src_dp_id, link.dst_dp_id)

    def stop(self) -> None:
        self._done.set()
        self.join(2)


def iperf3(src, dst, seconds: int) -> dict:
    dst.cmd("iperf3 -s -1 -D -p 5201 --logfile /dev/null")
    time.sleep(0.5)
    raw = src.cmd(f"iperf3 -c {dst.IP()} -p 5201 -t {seconds} -J")
    try:
        result = json.loads(raw)
        return {"sent_mbps": result["end"]["sum_sent"]["bits_per_second"] / 1e6,
                "received_mbps": result["end"]["sum_received"]["bits_per_second"] / 1e6,
                "retransmits": result["end"]["sum_sent"].get("retransmits", 0)}
    except (ValueError, KeyError):
        return {"error": raw.strip()[-300:]}


def run(topology: str, bw_scale: float, iperf_s: int) -> dict:
    before = _bridges()
    report: dict = {"topology": topology, "bw_scale": bw_scale}
    config = {"controller": {"telemetry": {"poll_interval_s": 1.0}}}
    lab = Lab(topology, bw_scale=bw_scale, controller_config=config)
    names = {s.name: s.label for s in lab.spec.switches}
    try:
        lab.start_controller()
        watcher = EventLog(lab.client)
        watcher.start()
        lab.start_network()
        topo = lab.wait_discovery(timeout_s=60)
        watcher.stop()
        report["discovery_s"] = watcher.discovery_s()
        report["switches"] = len(topo.switches)
        report["directed_links"] = len(topo.links)
        report["expected"] = {"switches": len(lab.spec.switches),
                              "directed_links": lab.spec.directed_link_count()}
        lab.wait_edges()
        t2 = time.monotonic()
        loss = lab.net.pingAll(timeout=2)
        n = len(lab.net.hosts)
        report["pingall"] = {"hosts": n, "pings": n * (n - 1), "loss_pct": loss,
                             "seconds": time.monotonic() - t2}
        a, b = farthest_pair(lab.spec)
        src = lab.net.get(lab.topo_hosts(a)[0])
        dst = lab.net.get(lab.topo_hosts(b)[0])
        sampler = UtilisationSampler(lab.client)
        sampler.start()
        result = iperf3(src, dst, iperf_s)
        time.sleep(1.5)     # one more stats poll after the transfer ends
        sampler.stop()
        path = lab.client.path(src.IP(), dst.IP())
        bottleneck = min((link.capacity_mbps for link in lab.client.topology().links
                          if any(link.src_dp_id == h.dp_id for h in path.hops[:-1])
                          and any(link.dst_dp_id == h.dp_id for h in path.hops[1:])), default=0.0)
        report["iperf3"] = {"src": f"{src.name} ({names[a]})", "dst": f"{dst.name} ({names[b]})",
                            "seconds": iperf_s, **result}
        report["path"] = {"switches": [h.name for h in path.hops],
                          "ports": [[h.in_port, h.out_port] for h in path.hops],
                          "installed": path.installed}
        report["path_capacity_mbps"] = bottleneck
        busiest = sorted(sampler.peak.items(), key=lambda kv: -kv[1][0])[:5]
        report["busiest_links"] = [
            {"link": name, "from": lab.client_name(v[3]), "to": lab.client_name(v[4]),
             "peak_utilisation": v[0], "rate_mbps": v[1], "capacity_mbps": v[2]}
            for name, v in busiest]
        status = lab.client.status()
        report["controller"] = {k: int(v) for k, v in sorted(status.counters.items())}
    finally:
        took = lab.stop()
    report["controller_exit_s"] = took
    left = _bridges() - before
    report["leftover_bridges"] = sorted(left)
    return report


def render(report: dict) -> str:
    lines = ["", "Foresight demo report", "=" * 60]
    exp = report.get("expected", {})
    lines.append(f"topology            {report['topology']} (capacities x {report['bw_scale']:g} "
                 f"into Mininet link rates)")
    lines.append(f"discovered          {report.get('switches')} switches, {report.get('directed_links')} "
                 f"directed links (expected {exp.get('switches')} and {exp.get('directed_links')}) "
                 f"in {report.get('discovery_s', 0):.2f} s from first switch to last link")
    ping = report.get("pingall", {})
    lines.append(f"pingAll             {ping.get('loss_pct', 'n/a')} % loss over {ping.get('pings')} pings "
                 f"({ping.get('seconds', 0):.1f} s)")
    ip = report.get("iperf3", {})
    path = report.get("path", {})
    lines.append(f"iperf3 TCP          {ip.get('src')} -> {ip.get('dst')}: "
                 + (f"{ip['received_mbps']:.2f} Mbit/s received over {ip['seconds']} s "
                    f"(path bottleneck {report.get('path_capacity_mbps', 0):.2f} Mbit/s, "
                    f"{ip.get('retransmits', 0)} retransmits)" if "received_mbps" in ip else f"failed: {ip}"))
    lines.append(f"path taken          {' -> '.join(path.get('switches', []))} "
                 f"({len(path.get('switches', [])) - 1} links, flows installed: {path.get('installed')})")
    lines.append("busiest links       (peak utilisation seen in port statistics during the transfer)")
    for link in report.get("busiest_links", []):
        lines.append(f"  {link['from']:>8} -> {link['to']:<8} {link['link']:<10} "
                     f"{link['peak_utilisation']:6.1%}  "
                     f"{link['rate_mbps']:6.2f} of {link['capacity_mbps']:.2f} Mbit/s")
    ctl = report.get("controller", {})
    lines.append(f"controller          {ctl.get('packet_in', 0)} packet-ins, "
                 f"{ctl.get('flow_adds', 0)} flow adds, {ctl.get('flow_deletes', 0)} flow deletes, "
                 f"{ctl.get('proxy_arp_replies', 0)} proxy ARP replies")
    took = report.get("controller_exit_s")
    lines.append(f"teardown            controller exited in {took:.2f} s after SIGTERM; "
                 if took is not None else "teardown            controller had already exited; ")
    lines[-1] += f"bridges left behind: {report.get('leftover_bridges') or 'none'}"
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="foresight lab run demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topology", default="abilene")
    ap.add_argument("--bw-scale", type=float, default=0.001, help="Mininet Mbit/s per dataset Mbit/s")
    ap.add_argument("--iperf-seconds", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "reports"), help="folder for demo.txt and demo.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run(args.topology, args.bw_scale, args.iperf_seconds)
    text = render(report)
    print(text)
    write_report(Path(args.out), "demo", text, report)
    ok = (report.get("switches") == report["expected"]["switches"]
          and report.get("directed_links") == report["expected"]["directed_links"]
          and report.get("pingall", {}).get("loss_pct") == 0 and not report["leftover_bridges"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
