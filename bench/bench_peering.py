"""Benchmark: prefixes learned over BGP and programmed into Open vSwitch, per second.

Real pieces: the controller process with the peering app, GoBGP as our speaker, an
FRR router as the transit provider announcing ``--prefixes`` prefixes (``--origins``
origin ASes, so as many prefix groups), the userspace Open vSwitch edge switch.
Everything is started first except the provider's router; the clock starts when it
starts. Measured, every 50 ms:

- ``established``: the controller reports the session up;
- ``learned``: the controller has every prefix (ListPeerings);
- ``programmed``: the edge switch holds one ``egress`` flow per prefix
  (``ovs-ofctl dump-aggregate``), each pointing at its prefix group's fast-failover group.

The goal (issue 14): learned and programmed in under 10 s. Baseline in the same run:
the same number of exact flows added to a scratch bridge by ``ovs-ofctl add-flows``
from a file, with and without ``--bundle`` (what Open vSwitch itself takes); the
ratios say how far the controller's path is from that ceiling.

    sudo .venv/bin/python bench/bench_peering.py [--prefixes 10000] [--origins 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labs.lab import ensure_ovs  # noqa: E402
from labs.peering_net import NeighbourSpec, PeeringNetwork, peering_section  # noqa: E402
from proto import peering_pb2 as pb  # noqa: E402

EGRESS_TABLE = 7


def announcements(prefixes: int, origins: int) -> list[tuple[str, tuple[int, ...]]]:
    base = int(ipaddress.IPv4Address("100.64.0.0"))
    return [
        (f"{ipaddress.IPv4Address(base + i * 256)}/24", (64999, 64600 + i % origins)) for i in range(prefixes)
    ]


def egress_flows(switch: str = "edge") -> int:
    out = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", switch, f"table={EGRESS_TABLE}"],
        capture_output=True,
        text=True,
    ).stdout
    m = re.search(r"flow_count=(\d+)", out)
    return int(m.group(1)) if m else 0


def one_round(prefixes: int, origins: int, workdir: Path) -> dict:
    routes = announcements(prefixes, origins)
    transit = NeighbourSpec(
        {
            "name": "transit",
            "asn": 64500,
            "address": "10.100.0.2",
            "kind": "transit",
            "capacity_mbps": 100.0,
            "cost_per_mbps": 1.0,
            "always": True,
            "max_prefixes": 2 * prefixes,
        },
        routes,
    )
    config = {
        "controller": {"providers": ["apps.peering.app:provider"]},
        "peering": peering_section([transit], workdir, "plain_bgp", interval_s=5.0),
    }
    network = PeeringNetwork([transit], workdir, config)
    marks: dict[str, float] = {}
    try:
        network.start(routers=False)  # the provider's router starts on the clock
        deadline = time.monotonic() + 120
        began = time.monotonic()
        network.start_router(transit)
        while time.monotonic() < deadline and "programmed" not in marks:
            now = time.monotonic() - began
            s = network.sessions().get("transit")
            if s is not None and s.state == pb.ESTABLISHED:
                marks.setdefault("established", now)
                if s.prefixes >= prefixes:
                    marks.setdefault("learned", now)
            if "learned" in marks and egress_flows() >= prefixes:
                marks["programmed"] = time.monotonic() - began
            time.sleep(0.05)
        counters = {
            k: v
            for k, v in sorted(network.controller.client.status().counters.items())
            if k.startswith(("flow", "group", "sync", "peering"))
        }
    finally:
        network.stop()
    if "programmed" not in marks:
        raise SystemExit(f"not programmed within 120 s: {marks}")
    return {
        **{k: round(v, 3) for k, v in marks.items()},
        "programmed_after_established_s": round(marks["programmed"] - marks["established"], 3),
        "counters": counters,
    }


def ovs_baseline(prefixes: int, workdir: Path, bundle: bool) -> float:
    """Seconds for ovs-ofctl to add the same number of flows to a scratch bridge."""
    bridge = "fbpeer0"
    base = int(ipaddress.IPv4Address("100.64.0.0"))
    path = workdir / "flows.txt"
    path.write_text(
        "".join(
            f"table={EGRESS_TABLE},priority=124,ip,nw_dst={ipaddress.IPv4Address(base + i * 256)}/24,"
            f"actions=output:1\n"
            for i in range(prefixes)
        )
    )
    subprocess.run(
        [
            "ovs-vsctl",
            "--may-exist",
            "add-br",
            bridge,
            "--",
            "set",
            "bridge",
            bridge,
            "datapath_type=netdev",
            "protocols=OpenFlow13",
        ],
        check=True,
    )
    try:
        began = time.monotonic()
        subprocess.run(
            [
                "ovs-ofctl",
                "-O",
                "OpenFlow13",
                *(["--bundle"] if bundle else []),
                "add-flows",
                bridge,
                str(path),
            ],
            check=True,
        )
        return time.monotonic() - began
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefixes", type=int, default=10000)
    ap.add_argument(
        "--origins", type=int, default=100, help="origin ASes (prefix groups); FRR copes with ~100"
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    if not 1 <= args.origins <= 200 or args.prefixes < args.origins or args.prefixes > 60000:
        ap.error("--origins 1..200, --prefixes from --origins to 60000")
    ensure_ovs()
    workdir = Path(tempfile.mkdtemp(prefix="foresight-bench-peering-"))
    workdir.chmod(0o755)  # FRR's daemons run as frr: they must reach their run directories
    try:
        rounds = [one_round(args.prefixes, args.origins, workdir / f"r{i}") for i in range(args.rounds)]
        plain = ovs_baseline(args.prefixes, workdir, bundle=False)
        bundled = ovs_baseline(args.prefixes, workdir, bundle=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    med = {
        k: statistics.median(r[k] for r in rounds)
        for k in ("established", "learned", "programmed", "programmed_after_established_s")
    }
    result = {
        "prefixes": args.prefixes,
        "origins": args.origins,
        "rounds": rounds,
        "median": med,
        "ovs_add_flows_s": round(plain, 3),
        "ovs_bundle_s": round(bundled, 3),
        "ratio_vs_add_flows": round(med["programmed_after_established_s"] / plain, 2),
        "ratio_vs_bundle": round(med["programmed_after_established_s"] / bundled, 2),
        "goal_s": 10.0,
    }
    print(f"{args.prefixes} prefixes in {args.origins} groups, median of {args.rounds} round(s):")
    print(
        f"  provider's router started -> session established {med['established']:.2f} s -> every prefix "
        f"learned {med['learned']:.2f} s -> every prefix programmed {med['programmed']:.2f} s"
    )
    print(f"  established -> programmed: {med['programmed_after_established_s']:.2f} s (goal < 10 s)")
    print(
        f"  baseline, the same flows by ovs-ofctl: add-flows {plain:.2f} s "
        f"(x{result['ratio_vs_add_flows']}), "
        f"--bundle {bundled:.2f} s (x{result['ratio_vs_bundle']})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
