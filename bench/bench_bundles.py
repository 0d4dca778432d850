"""Benchmark: a 1,000-flow change on a real Open vSwitch bridge under a 1 kHz probe, as
one OpenFlow bundle (``controller.bundles``) against plain flow-mods, and the rollback.

The change is what the controller sends for it: ``controller.desired.plan`` from the
previous entries to the new ones — 1,000 destination flows (``classify``, one per IPv4
destination) re-pointed from port 2 to port 3 — sent as plain flow-mods and a barrier,
or wrapped by ``controller.bundles.wrap`` (open, adds, check barrier, commit, barrier),
over a bare OpenFlow 1.3 connection (``tests.lib.ofchannel``; the controller's own
tests cover the sync around it). The rollback is the plan back, as one bundle.

Data plane: a netdev bridge with three veth ports into namespaces: the sender (port 1)
sends 1,000 datagrams a second to each of two destinations of the change, the first
and the last in its order; a capture on port 2 (the old way) and port 3 (the new way)
records where each arrived (the ports' hosts do not own the addresses: raw sockets
see the frames). Per change, counted over the datagrams sent from 50 ms before it to
50 ms after the switch's last reply:

- lost: sent, never seen on either port;
- mixed: datagrams that reached a state that is neither the old nor the new one as a
  whole — the last destination's datagrams still leaving the old way although the
  first destination's were already leaving the new way (sent after the first of
  those). A bundle makes that zero; plain flow-mods take effect one by one.

Needs root and the Open vSwitch lock on a shared machine:

    flock /tmp/foresight-ovs.lock .venv/bin/python bench/bench_bundles.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROBE_PORT = 40999
N_DESTS = 1000


def dest_ip(i: int) -> str:
    return f"10.66.{(i + 1) >> 8}.{(i + 1) & 0xff}"


# ---- the probe's two ends (run in the namespaces by the benchmark itself) ----------------------

def run_sender(dests: list[str], rate_hz: float, duration_s: float, out: str) -> None:
    """Send to each of ``dests`` ``rate_hz`` datagrams a second: (seq, dest index, send time)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = []
    seq = 0
    start = time.time()
    step = 1.0 / rate_hz
    next_at = start
    while time.time() - start < duration_s:
        for k, dst in enumerate(dests):
            now = time.time()
            sock.sendto(struct.pack("!IId", seq, k, now) + bytes(48), (dst, PROBE_PORT))
            sent.append((seq, k, now))
            seq += 1
        next_at += step
        delay = next_at - time.time()
        if delay > 0:
            time.sleep(delay)
    Path(out).write_text(json.dumps(sent))


def run_capture(ifname: str, duration_s: float, out: str) -> None:
    """Record every probe datagram seen on ``ifname``: (seq, dest index, send time, seen time)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((ifname, 0))
    sock.settimeout(0.2)
    seen = []
    end = time.time() + duration_s
    while time.time() < end:
        try:
            frame = sock.recv(2048)
        except socket.timeout:
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 17 or len(frame) < 14 + ihl + 8 + 16:
            continue
        udp = 14 + ihl
        if struct.unpack_from("!H", frame, udp + 2)[0] != PROBE_PORT:
            continue
        seq, k, sent_at = struct.unpack_from("!IId", frame, udp + 8)
        seen.append((seq, k, sent_at, time.time()))
    Path(out).write_text(json.dumps(seen))


# ---- the lab ----------------------------------------------------------------------------------

def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Lab:
    """A netdev bridge ``fbb<pid>`` with ports 1-3 on veths into namespaces; all removed on close."""

    def __init__(self):
        tag = os.getpid() % 10000
        self.bridge = f"fbb{tag}"
        self.ns = {port: f"fbb{tag}h{port}" for port in (1, 2, 3)}
        self.ifname = {port: f"fbb{tag}v{port}" for port in (1, 2, 3)}
        self.made_ns: list[str] = []
        self.made_links: list[str] = []

    def open(self, target: str) -> None:
        sh("ovs-vsctl", "--", "add-br", self.bridge, "--", "set", "bridge", self.bridge,
           "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13")
        for port in (1, 2, 3):
            ns, host, switch = self.ns[port], self.ifname[port], f"{self.bridge}s{port}"
            sh("ip", "netns", "add", ns)
            self.made_ns.append(ns)
            sh("ip", "link", "add", switch, "type", "veth", "peer", "name", host)
            self.made_links.append(switch)
            sh("sysctl", "-qw", f"net.ipv6.conf.{switch}.disable_ipv6=1")
            sh("ip", "link", "set", host, "netns", ns)
            sh("ip", "-n", ns, "link", "set", host, "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{host}.disable_ipv6=1")
            sh("ip", "link", "set", switch, "up")
            sh("ovs-vsctl", "add-port", self.bridge, switch, "--", "set", "interface", switch,
               f"ofport_request={port}")
        ns, host = self.ns[1], self.ifname[1]
        sh("ip", "-n", ns, "addr", "add", "10.66.255.1/16", "dev", host)
        for i in (0, N_DESTS - 1):
            sh("ip", "-n", ns, "neigh", "replace", dest_ip(i), "lladdr", "02:66:00:00:00:02", "dev", host)
        sh("ovs-vsctl", "set-controller", self.bridge, target)

    def close(self) -> None:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", self.bridge], capture_output=True)
        for link in self.made_links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in self.made_ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def spawn(self, port: int, *args: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns[port], sys.executable, __file__, *args])


# ---- the changes ------------------------------------------------------------------------------

def entries_to(port: int):
    import apps.slices  # noqa: F401 - registers the owner whose cookie the flows carry
    from controller import cookies
    from controller.desired import Entries
    from controller.flows import flow

    cookie = cookies.cookie("slices", 1)
    specs = [flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": dest_ip(i)}, [("output", port)],
                  cookie=cookie) for i in range(N_DESTS)]
    # The classify table's miss goes to forward, whose miss would be the controller: drop there.
    specs.append(flow("ingress", 0, {}, [], goto="classify", cookie=cookies.cookie("pipeline")))
    return Entries(flows={s.key: s for s in specs})


class Deployer:
    def __init__(self, chan):
        self.chan = chan
        self.generation = 0

    def apply(self, want, have, bundled: bool) -> float:
        """Send the plan from ``have`` to ``want``; seconds until the switch's last reply.
        Raises on any OpenFlow error."""
        from os_ken.ofproto import ofproto_v1_3_parser as parser

        from controller import bundles, desired, refusals

        self.generation += 1
        msgs = desired.plan(want, have).messages()
        started = time.monotonic()
        if bundled:
            wrapped, pending = bundles.wrap(self.generation, msgs)
            got = self.chan.request(wrapped)
            if not [m for m in got if isinstance(m, parser.OFPErrorMsg)]:
                got += self.chan.request([bundles.BundleCommit(self.generation)] + pending.after)
        else:
            got = self.chan.request(msgs)
        took = time.monotonic() - started
        errors = [refusals.error_name(m) for m in got if isinstance(m, parser.OFPErrorMsg)]
        if errors:
            raise RuntimeError(f"the switch refused the change: {errors}")
        return took


def analyse(sent: list, seen: dict[int, list], changes: list[tuple[float, float, int, int]]) -> list[dict]:
    """Per change (start, end, old port, new port): lost and mixed datagrams (module docstring)."""
    where: dict[int, list[tuple[int, float]]] = {}
    for port, rows in seen.items():
        for seq, _, _, seen_at in rows:
            where.setdefault(seq, []).append((port, seen_at))
    rows = []
    for start, end, old, new in changes:
        window = [(seq, k, t) for seq, k, t in sent if start - 0.05 <= t <= end + 0.05]
        lost = sum(1 for seq, _, _ in window if seq not in where)
        def went(seq: int, port: int) -> bool:
            return any(p == port for p, _ in where.get(seq, ()))

        first_new = min((t for seq, k, t in window if k == 0 and went(seq, new)), default=None)
        last_new = min((t for seq, k, t in window if k == 1 and went(seq, new)), default=None)
        mixed = 0
        if first_new is not None:
            mixed += sum(1 for seq, k, t in window if k == 1 and t > first_new and went(seq, old))
        if last_new is not None:
            mixed += sum(1 for seq, k, t in window if k == 0 and t > last_new and went(seq, old))
        rows.append({"lost": lost, "mixed": mixed, "sent": len(window)})
    return rows


def measure(rounds: int, rate_hz: float, settle_s: float) -> dict:
    from tests.lib.ofchannel import OFChannel

    lab = Lab()
    workdir = Path(tempfile.mkdtemp(prefix="foresight-bundles-"))
    procs: list[subprocess.Popen] = []
    results: dict = {"plain": [], "bundles": [], "rollback_s": [], "apply_s": {"plain": [], "bundles": []}}
    try:
        with OFChannel.listen() as chan:
            lab.open(chan.target)
            chan.accept()
            deployer = Deployer(chan)
            old, new = entries_to(2), entries_to(3)
            from controller.desired import Entries
            deployer.apply(old, Entries(), bundled=True)
            duration_s = 1.0 + rounds * 2 * (3 * settle_s + 0.5) + 2.0
            for port in (2, 3):
                procs.append(lab.spawn(port, "--role", "capture", "--ifname", lab.ifname[port],
                                       "--duration-s", f"{duration_s + 1.0}",
                                       "--out", str(workdir / f"seen{port}")))
            time.sleep(0.5)
            procs.append(lab.spawn(1, "--role", "sender", "--rate-hz", f"{rate_hz}", "--duration-s",
                                   f"{duration_s}", "--out", str(workdir / "sent"),
                                   "--dests", dest_ip(0), dest_ip(N_DESTS - 1)))
            time.sleep(1.0)
            changes: dict[str, list] = {"plain": [], "bundles": []}
            for _ in range(rounds):
                for mode in ("plain", "bundles"):
                    bundled = mode == "bundles"
                    start = time.time()
                    took = deployer.apply(new, old, bundled)
                    changes[mode].append((start, time.time(), 2, 3))
                    results["apply_s"][mode].append(took)
                    time.sleep(settle_s)
                    # Back, as a rollback: one bundle, timed.
                    start = time.time()
                    results["rollback_s"].append(deployer.apply(old, new, bundled=True))
                    time.sleep(settle_s)
            for proc in procs:
                proc.wait(timeout=duration_s + 30)
            procs.clear()
        sent = json.loads((workdir / "sent").read_text())
        seen = {port: json.loads((workdir / f"seen{port}").read_text()) for port in (2, 3)}
        for mode in ("plain", "bundles"):
            results[mode] = analyse(sent, seen, changes[mode])
        return results
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        lab.close()
        subprocess.run(["rm", "-rf", str(workdir)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="changes per mode (each followed by a rollback)")
    ap.add_argument("--rate-hz", type=float, default=1000.0, help="probe datagrams a second, per destination")
    ap.add_argument("--settle-s", type=float, default=0.5, help="time between changes")
    ap.add_argument("--role", choices=("sender", "capture"), help=argparse.SUPPRESS)
    ap.add_argument("--ifname", help=argparse.SUPPRESS)
    ap.add_argument("--duration-s", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--dests", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "sender":
        run_sender(args.dests, args.rate_hz, args.duration_s, args.out)
        return
    if args.role == "capture":
        run_capture(args.ifname, args.duration_s, args.out)
        return
    started = time.monotonic()
    results = measure(args.rounds, args.rate_hz, args.settle_s)
    print(f"bundles: {N_DESTS}-flow change (port 2 -> 3) on a netdev bridge, {args.rounds} round(s) per "
          f"mode, {args.rate_hz:.0f} Hz UDP probe to the change's first and last destination")
    totals = {}
    for mode in ("plain", "bundles"):
        rows = results[mode]
        applies = results["apply_s"][mode]
        totals[mode] = (sum(r["lost"] for r in rows), sum(r["mixed"] for r in rows))
        per_change = " ".join(f"{r['lost']}/{r['mixed']}" for r in rows)
        print(f"  {mode:<8} lost {totals[mode][0]:4d}  mixed {totals[mode][1]:4d}  of "
              f"{sum(r['sent'] for r in rows)} datagrams   (per change lost/mixed: {per_change})   "
              f"applied in p50 {statistics.median(applies) * 1000:.1f} ms, max {max(applies) * 1000:.1f} ms")
    base, now = totals["plain"], totals["bundles"]
    print(f"  lost+mixed with bundles: {sum(now)} against {sum(base)} with plain flow-mods"
          + (f" ({sum(now) / sum(base):.2f} x)" if sum(base) else ""))
    rollback = results["rollback_s"]
    print(f"  rollback (the {N_DESTS} flows back, one bundle, until the switch's reply): "
          f"p50 {statistics.median(rollback) * 1000:.1f} ms, max {max(rollback) * 1000:.1f} ms "
          f"(target < 1000 ms)")
    print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
