"""Benchmark: CreateSlice until enforced — every switch has confirmed (OpenFlow barrier)
the slice's meters, groups and flows — and slices per second, for 100 slices.

Real pieces: the controller process with the slices app, Open vSwitch (userspace
datapath) bridges in a Mininet triangle, and one pool member per slice, each a real
Mininet host the controller has placed (it pinged, so its switch and port are
known). Each slice therefore gets its whole rule set on every switch: IN meter,
two select groups, VIP, load-balancer, member and transit flows, and on the
member's switch its OUT meter and reply flow.

1. Baseline: 100 sequential CreateSlice without ``enforce_timeout_s`` (the answer
   comes once the controller has sent the change, before any switch confirmed it),
   then the time until every switch has answered (the controller's barrier_replies
   counter catching up with sync_barriers). Then all 100 are deleted.
2. The same 100 with ``enforce_timeout_s``: latency per call (p50, p95, max), the
   server's own ``enforced_s``, slices per second; the ratios enforced / not.
3. The bare barrier round trip to one bridge, without the controller: a raw
   OpenFlow 1.3 connection to the bridge's management socket, BARRIER_REQUEST
   after BARRIER_REQUEST.

Bridges and hosts have names of their own (fsb1.., fb1..), so a Mininet lab someone
else runs on the machine (s1.., h1..) is not touched; everything started is
stopped by handle. Needs root.

    sudo .venv/bin/python bench/bench_slices.py [--slices 100] [--switches 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import socket
import statistics
import tempfile
import time
from pathlib import Path

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from apps.slices.client import SlicesClient
from benchnet import BenchNet, percentile, ring_links
from labs.lab import ControllerProcess, ensure_ovs, start_mininet

WIRE = ProtocolDesc(ofp.OFP_VERSION)
ENFORCE_TIMEOUT_S = 30.0
MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                "meter_adds", "meter_modifies", "meter_deletes", "sync_barriers")
WAIT_COUNTERS = ("barrier_waits", "barrier_wait_us")


NET = BenchNet("fsb", "fb", dp_base=0xB0, subnet=98)


def _wire(msg) -> bytes:
    msg.datapath = WIRE
    msg.serialize()
    return bytes(msg.buf)


def barrier_rtts(bridge: str, count: int) -> list[float]:
    """Round trips of BARRIER_REQUEST on a raw OpenFlow connection to the bridge
    (messages built and read with os-ken's own OpenFlow 1.3 codec)."""
    def read(sock) -> tuple[int, int]:
        buf = b""
        while len(buf) < ofp.OFP_HEADER_SIZE:
            chunk = sock.recv(ofp.OFP_HEADER_SIZE - len(buf))
            if not chunk:
                raise ConnectionError(f"{bridge}: management connection closed")
            buf += chunk
        _, msg_type, length, xid = ofproto_parser.header(buf)
        while len(buf) < length:
            buf += sock.recv(length - len(buf))
        if msg_type == ofp.OFPT_ECHO_REQUEST:
            reply = parser.OFPEchoReply(None, data=buf[ofp.OFP_HEADER_SIZE:])
            reply.xid = xid
            sock.sendall(_wire(reply))
        return msg_type, xid

    rtts = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(f"/var/run/openvswitch/{bridge}.mgmt")
        sock.sendall(_wire(parser.OFPHello(None)))
        while read(sock)[0] != ofp.OFPT_HELLO:
            pass
        for xid in range(100, 100 + count):
            request = parser.OFPBarrierRequest(None)
            request.xid = xid
            wire = _wire(request)
            started = time.perf_counter()
            sock.sendall(wire)
            while read(sock) != (ofp.OFPT_BARRIER_REPLY, xid):
                pass
            rtts.append(time.perf_counter() - started)
    return rtts


class Bench:
    def __init__(self, n_slices: int, n_switches: int, workdir: Path):
        self.n_slices = n_slices
        self.n_switches = n_switches
        self.hosts_per_switch = math.ceil(n_slices / n_switches)
        self.workdir = workdir
        self.members = [NET.host_name(n) for n in range(1, n_slices + 1)]
        self.links = ring_links(n_switches)
        config = {
            "controller": {"providers": ["apps.slices.app:provider"]},
            "topology": NET.metadata(self.links, n_switches),
            "slices": {"store_path": str(workdir / "slices.sqlite"), "drain_s": 0,
                       "members": [{"pool": "bench", "host_id": h, "ipv4": NET.host_ip(n)}
                                   for n, h in enumerate(self.members, start=1)],
                       "scaling": {"enabled": False}},
        }
        self.controller = ControllerProcess(config, workdir)
        self.net = None
        self.slices: SlicesClient | None = None
        self.figures: dict = {}

    # ---- set-up -----------------------------------------------------------------------

    def start(self) -> None:
        from mininet.log import setLogLevel

        ensure_ovs()
        self.controller.start()
        self.slices = SlicesClient(self.controller.grpc_address, timeout_s=30.0)
        setLogLevel("warning")
        started = time.monotonic()
        self.net = start_mininet(NET.topo(self.links, self.n_switches, self.hosts_per_switch),
                                 self.controller.of_port)
        for host in self.net.hosts:
            host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
        self.figures["mininet_s"] = time.monotonic() - started
        started = time.monotonic()
        self.controller.client.wait_topology(self.n_switches, 2 * len(self.links), 60)
        self.figures["discovery_s"] = time.monotonic() - started
        started = time.monotonic()
        self.place_members()
        self.figures["placement_s"] = time.monotonic() - started

    def place_members(self, timeout_s: float = 60.0) -> None:
        """Every member pings: its ARP shows the controller where it is."""
        wanted = {self.net.get(h).MAC() for h in self.members}
        target = NET.host_ip(0xFFFE)          # nobody: the ARP for it is broadcast
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            known = {h.mac for h in self.controller.client.hosts()}
            missing = [h for h in self.members if self.net.get(h).MAC() not in known]
            if not missing:
                return
            for name in missing:
                self.net.get(name).sendCmd(f"ping -c1 -W1 {target}")
            for name in missing:
                self.net.get(name).waitOutput()
        raise TimeoutError(f"{len(wanted - known)} members were not placed in {timeout_s} s")

    def stop(self) -> None:
        if self.slices is not None:
            self.slices.close()
        if self.net is not None:
            self.net.stop()
        self.controller.stop()

    # ---- measurements -----------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        return dict(self.controller.client.status().counters)

    def wait_quiet(self, timeout_s: float = 60.0) -> float:
        """Seconds until every SyncBarrier sent has been answered."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            c = self.counters()
            if c.get("barrier_replies", 0) >= c.get("sync_barriers", 0):
                return time.monotonic() - started
            time.sleep(0.005)
        raise TimeoutError(f"switches did not answer every barrier in {timeout_s} s")

    def create_all(self, enforce_timeout_s: float) -> dict:
        latencies, enforced = [], []
        before = self.counters()
        started = time.monotonic()
        for i in range(self.n_slices):
            t0 = time.monotonic()
            answer = self.slices.create(f"b{i}", client="bench", vip_cidr=f"10.200.{i}.0/30",
                                        bandwidth_mbps=10.0, per_member_mbps=10.0, pool="bench",
                                        max_members=1, priority="silver", members=1,
                                        enforce_timeout_s=enforce_timeout_s)
            latencies.append(time.monotonic() - t0)
            enforced.append(answer.enforced_s)
            if not all(m.placed for m in answer.members):
                raise RuntimeError(f"slice b{i}: member {answer.members[0].host_id} not placed")
        total_s = time.monotonic() - started
        settle_s = self.wait_quiet()
        after = self.counters()
        return {"latencies": latencies, "enforced": enforced, "total_s": total_s, "settle_s": settle_s,
                "counts": {k: after.get(k, 0) - before.get(k, 0)
                           for k in MOD_COUNTERS + WAIT_COUNTERS + ("openflow_errors",)}}

    def delete_all(self) -> None:
        for i in range(self.n_slices):
            self.slices.delete(f"b{i}")
        self.wait_quiet()

    def run(self, rounds: int, barriers: int) -> None:
        """``rounds`` of both batches, in alternating order (so neither always runs on a
        warmer controller); the bare barriers before and after."""
        self.figures["barrier_rtts"] = barrier_rtts(NET.switch_name(1), barriers)
        runs = {"plain": [], "enforced": []}
        for r in range(rounds):
            order = ("plain", "enforced") if r % 2 == 0 else ("enforced", "plain")
            for kind in order:
                runs[kind].append(self.create_all(ENFORCE_TIMEOUT_S if kind == "enforced" else 0.0))
                self.delete_all()
        self.figures["barrier_rtts"] += barrier_rtts(NET.switch_name(1), barriers)
        self.figures.update(runs)


def _pooled(runs: list[dict], key: str) -> list[float]:
    return [x for r in runs for x in r[key]]


def _count(runs: list[dict], key: str) -> int:
    return sum(r["counts"][key] for r in runs)


def _ms(samples: list[float], q: float, digits: int = 1) -> str:
    return f"{percentile(samples, q) * 1e3:7.{digits}f} ms"


def report(bench: Bench) -> None:
    f = bench.figures
    n, sw = bench.n_slices, bench.n_switches
    plain, enf = f["plain"], f["enforced"]
    print(f"slices: {len(enf)} round(s) of {n} sequential CreateSlice with and {n} without "
          f"enforce_timeout_s, one placed member each; {sw} OVS userspace switches (ring), "
          f"{len(bench.net.hosts)} Mininet hosts")
    print(f"  set-up: Mininet {f['mininet_s']:.1f} s, discovery {f['discovery_s']:.1f} s, "
          f"placing {n} members {f['placement_s']:.1f} s")
    rates = {}
    for label, runs in (("not enforced", plain), ("enforced", enf)):
        lat = _pooled(runs, "latencies")
        rates[label] = statistics.median(n / r["total_s"] for r in runs)
        settle_ms = max(r["settle_s"] for r in runs) * 1e3
        print(f"  {label:<13} p50 {_ms(lat, 50)}  p95 {_ms(lat, 95)}  max {_ms(lat, 100)}  "
              f"{rates[label]:6.1f} slices/s  (then {settle_ms:.0f} ms at most until every barrier "
              f"was answered)")
    e = _pooled(enf, "enforced")
    print(f"  enforced_s    p50 {_ms(e, 50)}  p95 {_ms(e, 95)}  max {_ms(e, 100)}  "
          f"server side: request arrival to the last barrier reply")
    waits = _count(enf, "barrier_waits")
    wait_ms = _count(enf, "barrier_wait_us") / max(1, waits) / 1e3
    print(f"  barrier wait  mean {wait_ms:6.2f} ms of each enforced create waiting for the replies, "
          f"after the change was sent ({waits} waits)")
    if n >= 20:
        first = [x for r in enf for x in r["latencies"][:10]]
        last = [x for r in enf for x in r["latencies"][-10:]]
        print(f"  growth        enforced p50 of creates 1-10 {_ms(first, 50).strip()}, "
              f"of creates {n - 9}-{n} {_ms(last, 50).strip()}")
    rtts = f["barrier_rtts"]
    print(f"  bare barrier  p50 {_ms(rtts, 50, 3)}  p95 {_ms(rtts, 95, 3)}  "
          f"mean {statistics.mean(rtts) * 1e3:.3f} ms: round trip to {NET.switch_name(1)} on its management "
          f"socket, no controller ({len(rtts)} barriers)")
    plain_lat, enf_lat = _pooled(plain, "latencies"), _pooled(enf, "latencies")
    p50_ratio = percentile(enf_lat, 50) / percentile(plain_lat, 50)
    p95_ratio = percentile(enf_lat, 95) / percentile(plain_lat, 95)
    print(f"  ratio         enforced / not enforced: p50 {p50_ratio:.2f} x, p95 {p95_ratio:.2f} x, "
          f"slices/s {rates['enforced'] / rates['not enforced']:.2f} x")
    counts = {k: _count(enf, k) / (len(enf) * n * sw) for k in MOD_COUNTERS}
    errors = _count(plain, "openflow_errors") + _count(enf, "openflow_errors")
    print(f"  per slice per switch: {sum(counts.values()):.2f} OpenFlow messages counted ("
          + ", ".join(f"{k} {v:.2f}" for k, v in counts.items() if v)
          + f"; the barrier between groups/meters and flows is not counted); OpenFlow errors {errors}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--switches", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both batches")
    ap.add_argument("--barriers", type=int, default=500,
                    help="bare barrier round trips to time, before and after the batches")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="foresight-bench-slices-") as tmp:
        bench = Bench(args.slices, args.switches, Path(tmp))
        started = time.monotonic()
        try:
            bench.start()
            bench.run(args.rounds, args.barriers)
            report(bench)
        finally:
            bench.stop()
        print(f"  whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
