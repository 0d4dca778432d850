"""Benchmark: path installs per second, barrier-confirmed — every host sends its first
packet to every other host at once, and the clock stops when every pair's packet
has arrived and every switch has answered every barrier the controller sent.

Real pieces: the controller process, Open vSwitch (userspace datapath) bridges in a
Mininet ring with chords (a mesh: every switch pair has a link-disjoint detour),
a few real hosts per switch. The hosts are made known first (a broadcast ping each,
as bench_slices does) and given static ARP entries for each other, so the burst is
nothing but first packets: each host runs ``labs/pair_burst.py``, which at an
agreed instant sends one UDP datagram to every other host and waits for one from
each. Each datagram reaches the controller (packet-in), which computes the pair's
path, sends its flows to every hop (with fast failover also the groups and detour
flows), closes each switch's sync with a barrier, and sends the packet on.

Per mode, a fresh lab:
1. ``controller.routing.fast_failover`` true (the default): pairs per second to
   confirmed (all datagrams delivered and barrier_replies >= sync_barriers, polled
   every few ms), p50/p95/max of the per-pair first-packet delivery time (send to
   arrival), OpenFlow messages per pair from the controller's counters, and a GetPath
   sweep afterwards that every pair is ``installed``.
2. Baseline: the same with fast_failover false; the ratios fast failover / not.

The default is GÉANT-sized (22 switches, one host each: 462 pairs). The burst must end
well inside ``controller.discovery.link_timeout_s`` (3.5 s): while the controller
works through it, LLDP waits in the same packet-in queue, and a burst much longer
than that (22 switches with 2 hosts each, 1892 pairs, with fast failover) makes
every link expire, every path reroute and switches drop their connections; the
bench then stops with the counters that show it (link deletes, switch leaves,
send failures) instead of a figure.

Bridges and hosts have names of their own (fpp1.., fq1..), so a Mininet lab someone
else runs on the machine (s1.., h1..) is not touched; everything started is stopped
by handle. Needs root.

    sudo .venv/bin/python bench/bench_paths.py [--switches 22] [--hosts-per-switch 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchnet import BenchNet, mesh_links, percentile
from labs.lab import ROOT, ControllerProcess, ensure_ovs, start_mininet

BURST = ROOT / "labs" / "pair_burst.py"
BURST_PORT = 5599
BURST_TIMEOUT_S = 20.0
POLL_S = 0.003
MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                "sync_barriers")
OTHER_COUNTERS = ("packet_in", "barrier_replies", "openflow_errors", "unknown_destination",
                  "no_path", "proxy_arp_replies", "lldp_sent")
# Signs that the burst overran the controller: links expired (LLDP answered too late),
# switches dropped their connections, messages could not be sent.
TROUBLE_COUNTERS = ("event_link_delete", "event_switch_leave", "send_failures", "break_wait_timeouts")


NET = BenchNet("fpp", "fq", dp_base=0xC0, subnet=97)


class CounterPoller:
    """GetStatus counters every few ms in a thread: (asked_at, answered_at, counters)."""

    def __init__(self, client):
        self.client = client
        self.samples: list[tuple[float, float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            asked = time.time()
            counters = dict(self.client.status().counters)
            self.samples.append((asked, time.time(), counters))
            self._stop.wait(POLL_S)

    def __enter__(self) -> "CounterPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def quiet_after(self, t: float) -> tuple[float, dict[str, int]] | None:
        """The first sample asked for at or after ``t`` in which every barrier had been
        answered: (when it was answered, its counters)."""
        for asked, answered, c in self.samples:
            if asked >= t and c.get("barrier_replies", 0) >= c.get("sync_barriers", 0):
                return answered, c
        return None


class Lab:
    """One controller (fast failover on or off) and one Mininet mesh, hosts placed."""

    def __init__(self, fast_failover: bool, n_switches: int, hosts_per_switch: int, workdir: Path):
        self.fast_failover = fast_failover
        self.n_switches = n_switches
        self.hosts_per_switch = hosts_per_switch
        self.n_hosts = n_switches * hosts_per_switch
        self.links = mesh_links(n_switches)
        config = {"controller": {"routing": {"fast_failover": fast_failover}},
                  "topology": NET.metadata(self.links, n_switches)}
        self.controller = ControllerProcess(config, workdir)
        self.net = None
        self.figures: dict = {}

    @property
    def client(self):
        return self.controller.client

    def start(self) -> None:
        from mininet.log import setLogLevel

        ensure_ovs()
        self.controller.start()
        setLogLevel("warning")
        started = time.monotonic()
        self.net = start_mininet(NET.topo(self.links, self.n_switches, self.hosts_per_switch),
                                 self.controller.of_port)
        neighbours = "".join(f"neigh replace {NET.host_ip(n)} lladdr {NET.host_mac(n)} "
                             f"dev {NET.host_prefix}{{me}}-eth0 "
                             "nud permanent\n" for n in range(1, self.n_hosts + 1))
        for n, host in enumerate(self.hosts(), start=1):
            # Checksums: the userspace datapath does not complete what the veth offloads
            # (UDP would arrive with a bad sum). Static ARP: the burst is first packets only.
            host.cmd(f"ethtool -K {NET.host_name(n)}-eth0 tx off >/dev/null 2>&1; "
                     "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
            batch = self.controller.workdir / f"neigh-{NET.host_name(n)}.batch"
            batch.write_text(neighbours.replace("{me}", str(n)))
            host.cmd(f"ip -batch {batch}")
        self.figures["mininet_s"] = time.monotonic() - started
        started = time.monotonic()
        self.client.wait_topology(self.n_switches, 2 * len(self.links), 60)
        self.figures["discovery_s"] = time.monotonic() - started
        started = time.monotonic()
        self.place_hosts()
        self.figures["placement_s"] = time.monotonic() - started

    def hosts(self) -> list:
        return [self.net.get(NET.host_name(n)) for n in range(1, self.n_hosts + 1)]

    def place_hosts(self, timeout_s: float = 60.0) -> None:
        """Every host pings a nobody: its broadcast ARP shows the controller where it is."""
        target = NET.host_ip(0xFFFE)          # nobody: the ARP for it is broadcast
        deadline = time.monotonic() + timeout_s
        missing = self.hosts()
        while time.monotonic() < deadline:
            known = {h.mac for h in self.client.hosts()}
            missing = [h for h in self.hosts() if h.MAC() not in known]
            if not missing:
                return
            for host in missing:
                host.sendCmd(f"ping -c1 -W1 {target}")
            for host in missing:
                host.waitOutput()
        raise TimeoutError(f"{len(missing)} hosts were not learned in {timeout_s} s")

    def stop(self) -> None:
        if self.net is not None:
            try:
                self.net.stop()
            finally:
                self.net = None
        self.controller.stop()

    def counters(self) -> dict[str, int]:
        return dict(self.client.status().counters)

    def burst(self) -> dict:
        """Every host to every other at once; figures up to barrier confirmation."""
        ips = [NET.host_ip(n) for n in range(1, self.n_hosts + 1)]
        pairs = self.n_hosts * (self.n_hosts - 1)
        before = self.counters()
        start_at = time.time() + 1.0 + 0.02 * self.n_hosts     # time for every host to be listening
        procs = []
        for n, host in enumerate(self.hosts(), start=1):
            peers = ",".join(ip for ip in ips if ip != NET.host_ip(n))
            procs.append(host.popen([sys.executable, str(BURST), "--port", str(BURST_PORT),
                                     "--start-at", f"{start_at:.6f}", "--peers", peers,
                                     "--timeout-s", str(BURST_TIMEOUT_S)]))
        with CounterPoller(self.client) as poller:
            reports = []
            for proc in procs:
                out, err = proc.communicate(timeout=BURST_TIMEOUT_S + 30)
                if proc.returncode != 0:
                    raise RuntimeError(f"pair_burst failed: {err.decode(errors='replace')[-500:]}")
                reports.append(json.loads(out.decode().strip().splitlines()[-1]))
            delays = [recv - send for r in reports for send, recv in r["received"].values()]
            last_recv = max((recv for r in reports for _, recv in r["received"].values()), default=start_at)
            deadline = time.time() + 30
            quiet = poller.quiet_after(last_recv)
            while quiet is None and time.time() < deadline:
                time.sleep(0.05)
                quiet = poller.quiet_after(last_recv)
        if quiet is None:
            now = self.counters()
            trouble = ", ".join(f"{k} {now.get(k, 0) - before.get(k, 0)}" for k in TROUBLE_COUNTERS)
            raise TimeoutError(f"switches did not answer every barrier within 30 s of the last delivery "
                               f"({'fast failover' if self.fast_failover else 'controller only'}, "
                               f"{pairs} pairs; during the burst: {trouble})")
        confirmed_at, after = quiet
        first_send = min(send for r in reports for send, _ in r["received"].values())
        installed = sum(self.client.path(a, b).installed for a in ips for b in ips if a != b)
        return {"pairs": pairs, "delivered": len(delays), "installed": installed,
                "sent": sum(r["sent"] for r in reports), "delays": delays,
                "start_skew_s": first_send - start_at,
                "delivered_s": last_recv - start_at, "confirmed_s": confirmed_at - start_at,
                "counts": {k: after.get(k, 0) - before.get(k, 0)
                           for k in MOD_COUNTERS + OTHER_COUNTERS + TROUBLE_COUNTERS}}


def _ms(samples: list[float], q: float) -> str:
    return f"{percentile(samples, q) * 1e3:7.1f} ms"


def report(runs: dict[bool, list[dict]], n_switches: int, hosts_per_switch: int, n_links: int,
           labs: dict[bool, list[dict]]) -> None:
    n_hosts = n_switches * hosts_per_switch
    pairs = n_hosts * (n_hosts - 1)
    print(f"path installs: {len(runs[True])} lab(s) per mode; {n_switches} OVS userspace switches "
          f"(ring + chords, {n_links} links), {n_hosts} Mininet hosts, all {pairs} directed pairs' "
          f"first packets at once")
    for ff in (True, False):
        s = labs[ff]
        print(f"  set-up ({'fast failover' if ff else 'controller only'}): Mininet "
              f"{statistics.median(x['mininet_s'] for x in s):.1f} s, discovery "
              f"{statistics.median(x['discovery_s'] for x in s):.1f} s, placing hosts "
              f"{statistics.median(x['placement_s'] for x in s):.1f} s")
    rates, per_pair = {}, {}
    for ff in (True, False):
        label = "fast failover" if ff else "controller only"
        rs = runs[ff]
        delays = [d for r in rs for d in r["delays"]]
        rates[ff] = statistics.median(r["pairs"] / r["confirmed_s"] for r in rs)
        delivered = sum(r["delivered"] for r in rs)
        installed = sum(r["installed"] for r in rs)
        total = sum(r["pairs"] for r in rs)
        print(f"  {label:<15} {rates[ff]:7.1f} pairs/s to confirmed  (all delivered "
              f"{statistics.median(r['delivered_s'] for r in rs) * 1e3:.0f} ms, every barrier answered "
              f"{statistics.median(r['confirmed_s'] for r in rs) * 1e3:.0f} ms after the burst; "
              f"sends began {max(r['start_skew_s'] for r in rs) * 1e3:.1f} ms late at most)")
        if delays:
            print(f"  {'':<15} first packet send -> arrival per pair: p50 {_ms(delays, 50)}  "
                  f"p95 {_ms(delays, 95)}  max {_ms(delays, 100)}")
        print(f"  {'':<15} delivered {delivered}/{total}, GetPath installed {installed}/{total}")
        counts = {k: sum(r["counts"][k] for r in rs) / total for k in MOD_COUNTERS}
        per_pair[ff] = sum(counts.values())
        other = {k: sum(r["counts"][k] for r in rs) for k in OTHER_COUNTERS}
        print(f"  {'':<15} per pair: {per_pair[ff]:.2f} OpenFlow modifications counted ("
              + ", ".join(f"{k} {v:.2f}" for k, v in counts.items() if v)
              + f"), packet_in {other['packet_in'] / total:.2f} (LLDP in the window included: "
              f"{other['lldp_sent']} LLDP sent); OpenFlow errors {other['openflow_errors']}, "
              f"unknown destination {other['unknown_destination']}, no path {other['no_path']}")
        trouble = {k: sum(r["counts"][k] for r in rs) for k in TROUBLE_COUNTERS}
        if any(trouble.values()):
            print(f"  {'':<15} WARNING the burst disturbed the network, figures suspect: "
                  + ", ".join(f"{k} {v}" for k, v in trouble.items()))
    print(f"  ratio         fast failover / controller only: pairs/s {rates[True] / rates[False]:.2f} x, "
          f"OpenFlow messages per pair {per_pair[True] / per_pair[False]:.2f} x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=22)
    ap.add_argument("--hosts-per-switch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="labs per mode, in alternating order")
    args = ap.parse_args()
    started = time.monotonic()
    runs: dict[bool, list[dict]] = {True: [], False: []}
    labs: dict[bool, list[dict]] = {True: [], False: []}
    for r in range(args.rounds):
        for ff in ((True, False) if r % 2 == 0 else (False, True)):
            with tempfile.TemporaryDirectory(prefix="foresight-bench-paths-") as tmp:
                lab = Lab(ff, args.switches, args.hosts_per_switch, Path(tmp))
                try:
                    lab.start()
                    runs[ff].append(lab.burst())
                    labs[ff].append(lab.figures)
                except BaseException:
                    print(f"controller log tail:\n{lab.controller.log_tail()}", file=sys.stderr)
                    raise
                finally:
                    lab.stop()
    report(runs, args.switches, args.hosts_per_switch, len(mesh_links(args.switches)), labs)
    print(f"  whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
