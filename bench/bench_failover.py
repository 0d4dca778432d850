"""Benchmark: the failover loss window both ways — with fast-failover groups (the
switches move traffic off a dead port themselves) and with controller-only rerouting
(they wait for the controller's new flows) — and the loss when the link returns.

Each round starts a lab per mode (``labs/failover_lab.py``): the controller
process, a Mininet triangle of userspace Open vSwitch bridges with four hosts per
switch and every host pair's path installed (pingAll), then a 1 kHz UDP probe runs
both ways between a host on s1 and one on s2 while the s1-s2 link goes down
(Mininet ``configLinkStatus``: both veth ends, like a pulled cable), and again while
it comes back. A loss window is the longest run of missing datagrams around the
event, as time between the datagrams at its edges. Targets: fast failover <= 50 ms,
controller only <= 500 ms.

The lab uses the usual names (s1.., h1x1..): do not run it beside another Mininet
lab. Needs root.

    sudo .venv/bin/python bench/bench_failover.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from labs.failover_lab import measure

TARGETS_MS = {True: 50.0, False: 500.0}
HOSTS = ("h1x1", "h2x1")


def _row(label: str, values: list[float]) -> str:
    return (f"  {label:<34} p50 {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms   "
            f"({', '.join(f'{v:.1f}' for v in values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="labs per mode")
    ap.add_argument("--rate-hz", type=float, default=1000.0, help="probe datagrams per second, each way")
    args = ap.parse_args()
    started = time.monotonic()
    results = {True: [], False: []}
    for _ in range(args.rounds):
        for ff in (True, False):
            results[ff].append(measure(ff, hosts=HOSTS, hosts_per_switch=4, all_pairs=True,
                                       rate_hz=args.rate_hz))
    fail_max = {}
    print(f"failover loss window: {args.rounds} round(s), {args.rate_hz:.0f} Hz UDP probe both ways "
          f"{HOSTS[0]} <-> {HOSTS[1]}, s1-s2 link down then up (triangle, 12 hosts, 132 paths)")
    for ff in (True, False):
        mode = "fast failover" if ff else "controller only"
        directions = sorted({w.direction for w in results[ff][0].windows})
        for event in ("fail", "restore"):
            for direction in directions:
                values = [r.window(event, direction).window_ms for r in results[ff]]
                print(_row(f"{mode} {event} {direction}", values))
        fails = [w.window_ms for r in results[ff] for w in r.windows if w.event == "fail"]
        restore_lost = sum(w.lost for r in results[ff] for w in r.windows if w.event == "restore")
        fail_max[ff] = max(fails)
        met = "met" if fail_max[ff] <= TARGETS_MS[ff] else "NOT met"
        print(f"  {mode}: worst failure window {fail_max[ff]:.1f} ms, target <= {TARGETS_MS[ff]:.0f} ms: "
              f"{met}; datagrams lost while rerouting back to the restored link: {restore_lost}")
    fast = statistics.median(w.window_ms for r in results[True] for w in r.windows if w.event == "fail")
    slow = statistics.median(w.window_ms for r in results[False] for w in r.windows if w.event == "fail")
    print(f"  ratio controller only / fast failover: p50 {slow / fast if fast else float('inf'):.1f} x, "
          f"max {fail_max[False] / fail_max[True] if fail_max[True] else float('inf'):.1f} x")
    print(f"  whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
