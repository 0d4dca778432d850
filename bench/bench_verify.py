"""Benchmark: the data-plane verifier (apps.provisioning.verify) on GÉANT with every app's flows.

In-process, fake switches: the GÉANT topology (22 switches, 36 links, one host per
switch on port 1, links from port 2 on) is discovered by the controller core over
fake OpenFlow switches (``tests/lib/fakeoftable.py``), every ordered host pair's path
is installed by its first packet (fast failover on: detour groups too), and the QoS
(two classes, metered), traffic-engineering (labelled routes from a step on measured
rates) and slices (a VIP slice of two members: select groups, resubmit, learn)
providers add theirs. The verifier is loaded with what the switches hold, then

1. the full check: a fresh verifier loaded and checked for every host pair both
   ways (462 ordered pairs), the all-pairs time;
2. updates: ``--updates`` flows drawn at random from the installed ones are deleted
   and put back (two updates each), and every group is re-added as a modify: per
   update p50 / p99 / max (wall time, and the thread's CPU time: on a busy machine the
   wall time also holds waits for a core), classes walked again per update, and the
   cyclic garbage collector's runs during the updates;
3. baseline, measured in the same run: a full recomputation per update (a fresh
   verifier loaded with the changed tables and checked), on ``--baseline`` of the
   same updates; the ratio of its median to the incremental median.

Every incremental answer is compared with the fresh one at the end.

    PYTHONPATH=. .venv/bin/python bench/bench_verify.py [--updates 300] [--baseline 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.provisioning.verify import Policy, Topology, Verifier, add, delete  # noqa: E402
from apps.qos.config import QosConfig  # noqa: E402
from controller.config import Config  # noqa: E402
from tests.lib.app_flows import install_apps  # noqa: E402
from tests.lib.fakeoftable import FakeHost, FakeNetwork  # noqa: E402
from topologies.catalog import load  # noqa: E402

QOS = {"classes": [{"name": "ef", "dscp": [46], "rank": 0},
                   {"name": "best-effort", "dscp": [0], "rank": 2, "rate_mbps": 6}]}


def geant_network(name: str = "geant") -> FakeNetwork:
    spec = load(name)
    by_name = {s.name: s.dp_id for s in spec.switches}
    ports = {s.dp_id: 1 for s in spec.switches}
    links = []
    for link in spec.links:
        a, b = by_name[link.a], by_name[link.b]
        ports[a] += 1
        ports[b] += 1
        links.append((a, ports[a], b, ports[b]))
    hosts = [FakeHost(f"h{dp}", dp, 1, f"02:00:00:00:{dp >> 8:02x}:{dp & 0xff:02x}",
                      f"10.0.{dp >> 8}.{dp & 0xff}") for dp in sorted(ports)]
    config = Config.model_validate({"topology": spec.controller_topology(1.0),
                                    "controller": {"state": {"path": ""},
                                                   "routing": {"fast_failover": True, "drain_s": 0.0}}})
    config = config.model_copy(update={"qos": QosConfig.model_validate(QOS)})
    net = install_apps(FakeNetwork(links, hosts, config).start(),
                       members=sorted(n.name for n in hosts)[-2:])
    return net


def tables_of(net: FakeNetwork) -> dict:
    return {dp: (sw.specs(), sw.group_specs(), sw.meter_specs()) for dp, sw in net.switches.items()}


def fresh(topology: Topology, tables: dict, policy: Policy) -> tuple[Verifier, float]:
    started = time.perf_counter()
    v = Verifier(topology, policy=policy)
    for dp, (flows, groups, meters) in tables.items():
        v.load(dp, flows, groups, meters)
    v.check_all()
    return v, time.perf_counter() - started


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=300, help="flows deleted and put back (2 updates each)")
    ap.add_argument("--baseline", type=int, default=10, help="updates also timed as a full recomputation")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    net = geant_network()
    setup_s = time.perf_counter() - started
    tables = tables_of(net)
    topology = Topology(net.links, net.hosts.values())
    policy = Policy.all_pairs(net.hosts)
    n_flows = sum(len(f) for f, _, _ in tables.values())
    n_groups = sum(len(g) for _, g, _ in tables.values())
    n_meters = sum(len(m) for _, _, m in tables.values())

    full = [fresh(topology, tables, policy) for _ in range(3)]
    v = full[0][0]
    full_s = min(s for _, s in full)
    classes = len(v.classes)
    findings = v.findings()

    updates = []
    for _ in range(args.updates):
        dp = rng.choice(sorted(tables))
        spec = rng.choice(sorted(tables[dp][0], key=repr))
        updates += [delete(dp, spec), add(dp, spec)]
    updates += [add(dp, g) for dp in sorted(tables) for g in sorted(tables[dp][1], key=lambda g: g.group_id)]
    latencies, walked, cpu = [], [], []
    collections: list[tuple[int, float]] = []       # (generation, seconds) of the collector's runs
    started_gc: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started_gc.append(time.perf_counter())
        else:
            collections.append((info["generation"], time.perf_counter() - started_gc.pop()))

    gc.callbacks.append(on_gc)
    for update in updates:
        before = time.thread_time()
        report = v.apply(update)
        cpu.append(time.thread_time() - before)
        latencies.append(report.elapsed_s)
        walked.append(report.rewalked)
    gc.callbacks.remove(on_gc)

    # Baseline: what a verifier without increments does per update: everything again.
    baseline = []
    state = {dp: (set(f), set(g), set(m)) for dp, (f, g, m) in tables.items()}
    for update in updates[:args.baseline]:
        flows_, groups_, meters_ = state[update.dp_id]
        (flows_.discard if update.op == "delete" else flows_.add)(update.entry)
        baseline.append(fresh(topology, state, policy)[1])
    check, _ = fresh(topology, tables, policy)
    same = v.findings_set() == check.findings_set()

    inc_p50 = statistics.median(latencies)
    print(f"verifier, geant: {len(tables)} switches, {len(topology.peer)} directed link ends, "
          f"{len(topology.hosts)} hosts; {n_flows} flows, {n_groups} groups, {n_meters} meters installed by "
          f"core+qos+te+slices (set-up {setup_s:.1f} s)")
    print(f"  all-pairs check  {full_s * 1e3:8.1f} ms   fresh load + walk + {len(policy.reach) * 2} ordered "
          f"pairs (best of 3); {classes} classes, {len(findings)} findings")
    print(f"  per update       p50 {inc_p50 * 1e3:.3f} ms  p99 {pct(latencies, 99) * 1e3:.3f} ms  "
          f"max {max(latencies) * 1e3:.3f} ms over {len(updates)} updates "
          f"(classes walked again: median {statistics.median(walked):g}, max {max(walked)})")
    flow_n = 2 * args.updates
    for kind, part in (("flow", latencies[:flow_n]), ("group", latencies[flow_n:])):
        if part:
            print(f"    {kind} updates    p50 {statistics.median(part) * 1e3:.3f} ms  "
                  f"p99 {pct(part, 99) * 1e3:.3f} ms  max {max(part) * 1e3:.3f} ms over {len(part)}")
    # The same updates in the thread's CPU time: on a busy machine the wall time above also
    # holds the time the process waited for a core.
    print(f"    CPU time         p50 {statistics.median(cpu) * 1e3:.3f} ms  p99 {pct(cpu, 99) * 1e3:.3f} ms  "
          f"max {max(cpu) * 1e3:.3f} ms; updates over 10 ms: {sum(t > 0.01 for t in latencies)} wall, "
          f"{sum(t > 0.01 for t in cpu)} CPU")
    for gen in sorted({g for g, _ in collections}):
        runs = [t for g, t in collections if g == gen]
        print(f"    cyclic GC gen {gen}  {len(runs)} runs during the updates, "
              f"{sum(runs) * 1e3:.1f} ms in all, longest {max(runs) * 1e3:.1f} ms")
    print(f"  baseline         p50 {statistics.median(baseline) * 1e3:.1f} ms   full recomputation per "
          f"update ({len(baseline)} updates)")
    print(f"  ratio            {statistics.median(baseline) / inc_p50:8.0f} x  baseline / incremental (p50)")
    print(f"  incremental == fresh after all updates: {'yes' if same else 'NO'}")
    for finding in findings[:5]:
        print(f"    {finding}")


if __name__ == "__main__":
    main()
