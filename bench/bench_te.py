"""Benchmark: min-MLU LP solve time on real traffic matrices (issue target: GÉANT <= 1 s).

Builds the dataset's TE problem (GÉANT: 22 nodes, 72 directed links, 462 OD pairs,
k = 4 candidate paths each) and solves the LP for ``--tms`` real matrices spread
evenly over the fit span, timing the LP build and the HiGHS solve together, then
reports p50 / p95 for:

1. the LP as the evaluator solves it (sparse constraint matrices),
2. baseline: the same LP with dense constraint matrices (scipy's default shape of
   input), same matrices, same solver; the two must agree on the MLU,
3. reference: scoring fixed shortest-path routing (k = 1, no LP) on each matrix,

and the ratios. Offline computation only, no switches.

    .venv/bin/python bench/bench_te.py [--dataset geant] [--tms 20] [--k 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from labs.te_eval import build_network, od_pairs
from apps.te.lp import mlu, solve_min_mlu
from apps.te.paths import te_graph
from predictors.panel import SPLITS, load_dataset
from topologies.catalog import load


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="geant", choices=sorted(SPLITS))
    ap.add_argument("--tms", type=int, default=20, help="traffic matrices from the fit span")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="timed solves per matrix (the median is kept)")
    args = ap.parse_args()

    spec = load(args.dataset)
    panel = load_dataset(args.dataset)
    fit_end = SPLITS[args.dataset].fit_end
    started = time.perf_counter()
    net = build_network(te_graph(spec), od_pairs(spec, panel.names), args.k)
    build_s = time.perf_counter() - started
    busy = np.flatnonzero(panel.values[:fit_end].sum(axis=1) > 0)          # GÉANT rows 0-1 are empty
    rows = busy[np.linspace(0, busy.size - 1, args.tms).round().astype(int)]
    cands = net.candidates
    print(f"{args.dataset}: {len(spec.switches)} nodes, {len(cands.links)} directed links, "
          f"{len(cands.ods)} OD pairs, {cands.n_paths} candidate paths (k={args.k}); "
          f"paths and incidence built in {1e3 * build_s:.0f} ms")
    print(f"{len(rows)} fit-span matrices, rows {rows[0]}..{rows[-1]}; "
          f"{args.rounds} timed solves each, median kept")

    solve_min_mlu(cands, panel.values[rows[0]])                               # warm-up: imports, caches
    sparse_ms, dense_ms, sp_ms, gap = [], [], [], []
    for row in rows:
        tm = panel.values[row]
        runs = [solve_min_mlu(cands, tm) for _ in range(args.rounds)]
        sparse_ms.append(1e3 * statistics.median(r.solve_s for r in runs))
        dense = [solve_min_mlu(cands, tm, dense=True) for _ in range(args.rounds)]
        dense_ms.append(1e3 * statistics.median(r.solve_s for r in dense))
        gap.append(abs(runs[0].mlu - dense[0].mlu) / runs[0].mlu)
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            mlu(net.shortest, net.shortest_x, tm)
            times.append(time.perf_counter() - t0)
        sp_ms.append(1e3 * statistics.median(times))

    print(f"  {'':<36}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, samples in (("LP, sparse matrices (evaluator)", sparse_ms),
                          ("LP, dense matrices (baseline)", dense_ms),
                          ("shortest-path MLU, no LP (k=1)", sp_ms)):
        print(f"  {name:<36}{_pct(samples, 50):9.2f}{_pct(samples, 95):9.2f}{max(samples):9.2f}")
    print(f"dense / sparse p50: {_pct(dense_ms, 50) / _pct(sparse_ms, 50):.2f}x; "
          f"LP / shortest-path scoring p50: {_pct(sparse_ms, 50) / _pct(sp_ms, 50):.0f}x; "
          f"largest MLU difference sparse vs dense: {max(gap):.1e} (relative)")
    verdict = "meets" if _pct(sparse_ms, 95) <= 1000 else "MISSES"
    print(f"target: LP <= 1 s per matrix: p95 {_pct(sparse_ms, 95):.1f} ms {verdict} it")


if __name__ == "__main__":
    main()
