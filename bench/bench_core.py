"""Benchmark: how fast the controller core turns events into OpenFlow messages.

In-process, no switches: the GÉANT topology (22 switches, 36 links) is discovered
through real LLDP frames fed to the core, one host per switch is learned, then

1. path set-up: the first IPv4 packet of every ordered host pair (462 pairs) goes
   through ``packet_in``; every message it returns is serialised as os-ken would.
   Baseline, measured in the same run: networkx's own shortest path for the same
   pairs on the same graph (the floor for any controller that computes paths).
2. reroute: the busiest link fails; the core recomputes every path (and, with fast
   failover, every detour) and sends the difference. Baseline: pushing the whole
   desired state again (what a controller without a diff would send).

Switches answer every SyncBarrier at once (a deletion waits for the additions'
confirmations, controller.core), so every message of a change is counted.

    .venv/bin/python bench/bench_core.py [--topology geant] [--repeat 3] [--no-fast-failover]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import networkx as nx
from os_ken.lib.packet import arp, ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from controller.config import Config
from controller.core import ControllerCore, SyncBarrier
from controller.topology import Port
from topologies.catalog import load

WIRE = ProtocolDesc(ofp.OFP_VERSION)


def _frame(*protocols) -> bytes:
    pkt = packet.Packet()
    for proto in protocols:
        pkt.add_protocol(proto)
    pkt.serialize()
    return bytes(pkt.data)


def _answered(core, out, now: float) -> list:
    """``out`` plus whatever the switches' barrier replies release (held deletions)."""
    out = list(out)
    i = 0
    while i < len(out):
        dp, msg = out[i]
        if isinstance(msg, SyncBarrier):
            out += core.barrier_replied(dp, msg.generation, now)
        i += 1
    return out


def _mods(out) -> int:
    return sum(1 for _, m in out if type(m).__name__ in ("OFPFlowMod", "OFPGroupMod"))


def _serialise(out) -> int:
    size = 0
    for _, msg in out:
        msg.datapath = WIRE
        msg.serialize()
        size += len(msg.buf)
    return size


class Network:
    """Ports numbered like the Mininet lab: host on port 1, then links in spec order."""

    def __init__(self, name: str, fast_failover: bool = True):
        spec = load(name)
        self.spec = spec
        self.dps = [s.dp_id for s in spec.switches]
        self.ports = {dp: [1] for dp in self.dps}
        self.peer = {}
        by_name = {s.name: s.dp_id for s in spec.switches}
        for link in spec.links:
            a, b = by_name[link.a], by_name[link.b]
            pa, pb = len(self.ports[a]) + 1, len(self.ports[b]) + 1
            self.ports[a].append(pa)
            self.ports[b].append(pb)
            self.peer[(a, pa)] = (b, pb)
            self.peer[(b, pb)] = (a, pa)
        self.config = Config.model_validate({"topology": spec.controller_topology(1.0),
                                             "controller": {"state": {"path": ""},
                                                            "routing": {"fast_failover": fast_failover}}})
        self.core = ControllerCore(self.config)
        self.now = 0.0

    def mac(self, dp: int) -> str:
        return f"02:00:00:00:{dp >> 8:02x}:{dp & 0xff:02x}"

    def ip(self, dp: int) -> str:
        return f"10.0.{dp >> 8}.{dp & 0xff}"

    def deliver_lldp(self, out) -> None:
        for dp, msg in out:
            if type(msg).__name__ != "OFPPacketOut" or not msg.data or msg.data[12:14] != b"\x88\xcc":
                continue
            port = msg.actions[0].port
            if (dp, port) in self.peer:
                far_dp, far_port = self.peer[(dp, port)]
                _answered(self.core, self.core.packet_in(far_dp, far_port, msg.data, self.now), self.now)

    def start(self) -> None:
        for dp in self.dps:
            ports = [Port(p, f"s{dp}-eth{p}", f"0e:00:00:00:{dp:02x}:{p:02x}") for p in self.ports[dp]]
            out = self.core.switch_connected(dp, ports, self.now)
            self.deliver_lldp(out)
            for dumped in (self.core.flows_dumped, self.core.groups_dumped, self.core.meters_dumped):
                _answered(self.core, dumped(dp, [], self.now), self.now)   # empty tables: reconciled
        self.now += 3.0
        self.deliver_lldp(_answered(self.core, self.core.tick(self.now), self.now))
        for dp in self.dps:
            _answered(self.core, self.core.packet_in(dp, 1, _frame(
                ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=self.mac(dp), ethertype=0x0806),
                arp.arp(opcode=arp.ARP_REQUEST, src_mac=self.mac(dp), src_ip=self.ip(dp),
                        dst_mac="00:00:00:00:00:00", dst_ip=self.ip(dp))), self.now), self.now)


def bench(name: str, fast_failover: bool = True) -> dict:
    net = Network(name, fast_failover)
    net.start()
    core = net.core
    assert core.topology.graph.number_of_edges() == 2 * len(net.spec.links), "discovery incomplete"
    pairs = [(a, b) for a in net.dps for b in net.dps if a != b]

    latencies, flowmods, size = [], 0, 0
    start = time.perf_counter()
    for a, b in pairs:
        data = _frame(ethernet.ethernet(dst=net.mac(b), src=net.mac(a), ethertype=0x0800),
                      ipv4.ipv4(src=net.ip(a), dst=net.ip(b), proto=17))
        t0 = time.perf_counter()
        out = _answered(core, core.packet_in(a, 1, data, net.now), net.now)
        size += _serialise(out)
        latencies.append(time.perf_counter() - t0)
        flowmods += _mods(out)
    setup_s = time.perf_counter() - start

    graph = core.topology.simple_graph()
    start = time.perf_counter()
    for a, b in pairs:
        nx.shortest_path(graph, a, b, weight="weight")
    baseline_s = time.perf_counter() - start

    # Reroute: fail the link carrying the most installed paths.
    load_by_link = Counter()
    for hops in core.forwarding.paths.values():
        for h in hops[:-1]:
            load_by_link[(h.dp_id, h.out_port)] += 1
    (dp, port), carried = max(load_by_link.items(), key=lambda kv: (kv[1], kv[0]))
    t0 = time.perf_counter()
    out = core.port_changed(dp, Port(port, f"s{dp}-eth{port}", f"0e:00:00:00:{dp:02x}:{port:02x}", up=False),
                            False, net.now)
    out = _answered(core, out, net.now)
    _serialise(out)
    reroute_s = time.perf_counter() - t0
    diff_mods = _mods(out)
    t0 = time.perf_counter()
    full = [(d, spec) for d in net.dps for want in [core.desired(d, net.now)]
            for spec in [*want.flows.values(), *want.groups.values()]]
    full_s = time.perf_counter() - t0
    return {
        "topology": name, "switches": len(net.dps), "links": 2 * len(net.spec.links),
        "pairs": len(pairs), "setup_s": setup_s, "baseline_s": baseline_s,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1e3,
        "flowmods_per_pair": flowmods / len(pairs), "bytes": size,
        "failed_link_paths": carried, "reroute_ms": reroute_s * 1e3, "diff_flowmods": diff_mods,
        "full_flowmods": len(full), "full_compute_ms": full_s * 1e3, "fast_failover": fast_failover,
        "groups": sum(len(core.desired(d, net.now).groups) for d in net.dps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topology", default="geant")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-fast-failover", action="store_true", help="paths without pre-installed detours")
    args = ap.parse_args()
    runs = [bench(args.topology, not args.no_fast_failover) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r["setup_s"])
    r = best
    print(f"controller core, {r['topology']}: {r['switches']} switches, {r['links']} directed links, "
          f"{r['pairs']} host pairs, fast failover {'on' if r['fast_failover'] else 'off'} "
          f"({r['groups']} groups) (best of {args.repeat})")
    print(f"  path set-up      {r['pairs'] / r['setup_s']:8.0f} pairs/s   "
          f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms per first packet, "
          f"{r['flowmods_per_pair']:.1f} flow/group-mods/pair")
    print(f"  baseline         {r['pairs'] / r['baseline_s']:8.0f} paths/s   networkx shortest_path alone")
    print(f"  ratio            {r['setup_s'] / r['baseline_s']:8.1f} x  set-up time / path computation time")
    print(f"  reroute          {r['reroute_ms']:8.1f} ms     "
          f"link carrying {r['failed_link_paths']} paths fails: "
          f"{r['diff_flowmods']} flow/group-mods sent")
    print(f"  baseline         {r['full_compute_ms']:8.1f} ms     computing the full desired state: "
          f"{r['full_flowmods']} flow/group-mods to push")
    print(f"  ratio            {r['diff_flowmods'] / r['full_flowmods']:8.3f} x  mods sent / full re-push")


if __name__ == "__main__":
    main()
