"""Benchmark: does a reroute back to a restored link lose packets, with and without
the drain before deletions (``controller.routing.drain_s``)?

Open vSwitch answers a barrier once its OpenFlow tables have changed, but its
userspace datapath keeps forwarding by the cached old actions until it revalidates,
a few milliseconds later; a switch further along whose old flow is deleted in that
time drops what still comes the old way. The drain keeps the old flows that long.

One lab per setting (``labs/failover_lab.py: repeat_restores``): ring4, the
s2-s3 link on h1 -> h3's path fails and comes back ``--rounds`` times under a 1 kHz
UDP probe both ways, each restore with ``--busy`` processes burning CPU (the loss
is a race, rare on an idle machine). The baseline is ``drain_s: 0``, in the same run.
Needs root; do not run beside another Mininet lab.

    sudo .venv/bin/python bench/bench_restore_drain.py [--rounds 30] [--busy 2]
"""

from __future__ import annotations

import argparse
import time

from controller.config import RoutingConfig
from labs.failover_lab import repeat_restores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30, help="restores per setting")
    ap.add_argument("--busy", type=int, default=2, help="CPU-burning processes during each restore")
    ap.add_argument("--drain-s", type=float, default=RoutingConfig().drain_s, help="the setting measured")
    args = ap.parse_args()
    started = time.monotonic()
    print(f"restore loss: ring4 s2-s3 down then up, {args.rounds} round(s) per setting, 1000 Hz UDP probe "
          f"both ways h1 <-> h3, {args.busy} busy process(es) during each restore")
    rows = {}
    for drain_s in (0.0, args.drain_s):
        lost = repeat_restores(drain_s, args.rounds, busy=args.busy)
        rows[drain_s] = lost
        print(f"  drain_s {drain_s:4.2f}: {sum(1 for n in lost if n)} of {len(lost)} "
              f"restores lost datagrams, "
              f"{sum(lost)} datagrams in all (per restore: {' '.join(str(n) for n in lost)})")
    base, now = sum(rows[0.0]), sum(rows[args.drain_s])
    print(f"  datagrams lost: {now} with the drain against {base} without"
          + (f" ({now / base:.2f} x)" if base else ""))
    print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
