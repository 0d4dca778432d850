"""The TE lab's plan, chosen before anything runs: scale, replay window and flows
from the fit span alone (steps 1 and 2 of ``labs.te_lab``'s description), the offline
reference for the replayed matrices, and each run's controller configuration. No
Mininet and no processes: a catalogue topology, a dataset panel and the LP
(``apps.te``) in, a ``Plan`` and configuration dicts out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from labs.te_eval import od_pairs
from apps.te.lp import PathSet, solve_min_mlu
from apps.te.paths import k_shortest_paths, te_graph
from predictors.panel import Panel, Split
from topologies.catalog import TopologySpec, load

TE_PROVIDER = "apps.te.app:provider"


class PlanError(ValueError):
    """The fit span admits no plan for the scenario; the message says why."""


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; ``plan`` derives scale, window and flows from the fit span."""

    topology: str = "abilene"
    dataset: str = "abilene"
    samples: int = 96                   # replay window, 5-minute samples (8 h)
    step_real_s: float = 2.0            # real seconds per sample (and per TE step)
    load_mbps: float = 50.0             # mean total offered load over the fit-span windows
    lp_target: float = 0.85             # the LP optimum's lp_percentile on those windows maps here
    lp_percentile: float = 95.0
    min_flow_mbps: float = 0.05         # OD pairs under this fit-window mean (scaled) get no flow
    max_bw_mbps: float = 1000.0
    path_metric: str = "inverse_capacity"   # the controller's shortest paths (TE off)
    k: int = 4                          # candidate paths per OD pair
    horizon_s: float = 300.0            # TE forecast horizon, app-clock s
    quantile: float = 0.9
    threshold: float = 0.8
    sockets: int = 8                    # source ports each OD's datagrams take turns over
    setup_s: float = 30.0               # real seconds allowed for the network to come up (~10 s)


@dataclass
class Plan:
    """Scale, window and flows, all chosen on the fit span; ``rates`` are the replay."""

    slot: int                           # window start, samples after midnight UTC
    start: int                          # replay [start, stop), dataset indices (evaluation span)
    stop: int
    start_time: float
    ratio: float                        # utilisation scale: lab MLU = ratio x dataset MLU
    demand_scale: float                 # lab Mbit/s per dataset Mbit/s
    bw_scale: float                     # lab link Mbit/s per dataset Mbit/s (= demand_scale / ratio)
    pairs: list[str]                    # replayed OD series, "SRC->DST" (dataset labels)
    rates: dict[str, list[float]]       # pair -> lab Mbit/s per replayed sample
    fit: dict = field(default_factory=dict)     # what the choice saw on the fit span

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("rates")
        return out


# --- choosing scale, window and flows (fit span only) ----------------------------------------

def baseline_paths(spec: TopologySpec, ods: list[tuple[str, str]], metric: str) -> dict:
    """The controller's shortest path for every OD, as ``controller.topology`` picks it:
    weight reference / capacity (``inverse_capacity``) or 1 (``hops``), the
    lexicographically smallest dp_id list among equals."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(sw.dp_id for sw in spec.switches))
    reference = max(link.capacity_mbps for link in spec.links)
    for link in spec.links:
        weight = reference / link.capacity_mbps if metric == "inverse_capacity" else 1.0
        a, b = spec.switch(link.a).dp_id, spec.switch(link.b).dp_id
        graph.add_edge(a, b, weight=weight)
        graph.add_edge(b, a, weight=weight)
    name = {sw.dp_id: sw.name for sw in spec.switches}
    out = {}
    for src, dst in ods:
        ends = spec.switch(src).dp_id, spec.switch(dst).dp_id
        best = min(nx.all_shortest_paths(graph, *ends, weight="weight"))
        out[(src, dst)] = [tuple(name[dp] for dp in best)]
    return out


@dataclass(frozen=True)
class Routing:
    """Shortest-path (TE off) and candidate (LP) path sets over the dataset's OD pairs."""
    shortest: PathSet
    candidates: PathSet

    def mlus(self, tms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per matrix: shortest-path MLU and the LP optimum, dataset units."""
        x = self.shortest.first_path_splits()
        sp = np.array([float(np.max(self.shortest.utilisation(x, tm), initial=0.0)) for tm in tms])
        lp = np.array([solve_min_mlu(self.candidates, tm).mlu for tm in tms])
        return sp, lp


def routing(spec: TopologySpec, names: list[str], metric: str, k: int) -> Routing:
    graph = te_graph(spec)
    ods = od_pairs(spec, names)
    candidates = {od: k_shortest_paths(graph, od[0], od[1], k) for od in ods}
    return Routing(PathSet(graph, baseline_paths(spec, ods, metric)), PathSet(graph, candidates))


def choose_window(sp: np.ndarray, lp: np.ndarray, per_day: int, samples: int, lp_target: float,
                  percentile: float) -> tuple[int, float, list[dict]]:
    """The window start (slot of the day) and utilisation ratio: for each slot, the
    ``samples``-long windows starting there on every day that holds one whole are
    pooled; the ratio puts the LP's ``percentile`` over them at ``lp_target``; the slot
    whose windows then have shortest-path MLU > 1 most often wins (earliest on ties)."""
    n = len(sp)
    table = []
    for slot in range(per_day):
        starts = [d * per_day + slot for d in range(n // per_day + 1) if d * per_day + slot + samples <= n]
        if not starts:
            continue
        idx = (np.asarray(starts)[:, None] + np.arange(samples)).ravel()
        level = float(np.percentile(lp[idx], percentile))
        if level <= 0:
            continue
        ratio = lp_target / level
        table.append({"slot": slot, "windows": len(starts), "ratio": ratio,
                      "sp_over_1": float(np.mean(ratio * sp[idx] > 1.0)),
                      "lp_over_1": float(np.mean(ratio * lp[idx] > 1.0))})
    if not table:
        raise PlanError(f"the fit span ({n} samples) holds no whole {samples}-sample window")
    best = max(table, key=lambda row: (row["sp_over_1"], -row["slot"]))
    if best["sp_over_1"] <= 0:
        raise PlanError(f"no window where shortest paths overload a link while the LP stays at {lp_target}")
    return best["slot"], best["ratio"], table


def plan(scn: Scenario, spec: TopologySpec, panel: Panel, split: Split) -> Plan:
    """Scale, window and flows from ``panel``'s fit span; the replay is the same
    window on the first evaluation day."""
    fit = np.nan_to_num(panel.values[:split.fit_end])
    route = routing(spec, list(panel.names), scn.path_metric, scn.k)
    sp, lp = route.mlus(fit)
    per_day = panel.period_steps()
    slot, ratio, table = choose_window(sp, lp, per_day, scn.samples, scn.lp_target, scn.lp_percentile)
    starts = [d * per_day + slot for d in range(split.fit_end // per_day + 1)
              if d * per_day + slot + scn.samples <= split.fit_end]
    idx = (np.asarray(starts)[:, None] + np.arange(scn.samples)).ravel()
    demand_scale = scn.load_mbps / float(fit[idx].sum(axis=1).mean())
    means = fit[idx].mean(axis=0) * demand_scale
    keep = [j for j in range(len(panel.names)) if means[j] >= scn.min_flow_mbps]
    if not keep:
        raise PlanError(f"no OD pair reaches min_flow_mbps={scn.min_flow_mbps}")
    kept = np.zeros_like(fit[idx])
    kept[:, keep] = fit[idx][:, keep]
    sp_kept, lp_kept = route.mlus(kept)
    day0 = -(-split.fit_end // per_day) * per_day
    start, stop = day0 + slot, day0 + slot + scn.samples
    if stop > split.eval_end:
        raise PlanError(f"replay [{start}, {stop}) runs past the evaluation span (< {split.eval_end})")
    pairs = [panel.names[j] for j in keep]
    rates = {panel.names[j]: [max(0.0, float(v) * demand_scale)
                              for v in np.nan_to_num(panel.values[start:stop, j])] for j in keep}
    return Plan(slot=slot, start=start, stop=stop, start_time=float(panel.times[start]), ratio=ratio,
                demand_scale=demand_scale, bw_scale=demand_scale / ratio, pairs=pairs, rates=rates, fit={
                    "windows": len(starts), "samples": int(idx.size), "flows": len(keep),
                    "od_pairs": len(panel.names),
                    "kept_share": float(kept.sum() / max(fit[idx].sum(), 1e-12)),
                    "total_mbps_mean": scn.load_mbps,
                    "total_mbps_p95": float(np.percentile(kept.sum(axis=1), 95) * demand_scale),
                    "sp_mlu_p95": float(np.percentile(ratio * sp_kept, 95)),
                    "sp_mlu_max": float(np.max(ratio * sp_kept)),
                    "sp_over_1": float(np.mean(ratio * sp_kept > 1)),
                    "lp_mlu_p95": float(np.percentile(ratio * lp_kept, 95)),
                    "lp_mlu_max": float(np.max(ratio * lp_kept)),
                    "lp_over_1": float(np.mean(ratio * lp_kept > 1)),
                    "slots": sorted(table, key=lambda r: -r["sp_over_1"])[:5]})


def replay_reference(scn: Scenario, spec: TopologySpec, p: Plan) -> dict:
    """Shortest-path MLU and the LP optimum of the replayed (scaled) matrices: what the
    offline tools say the two runs could reach. Reported, never used to choose."""
    route = routing(spec, p.pairs, scn.path_metric, scn.k)
    tms = np.array([p.rates[pair] for pair in p.pairs]).T / p.bw_scale     # dataset-capacity units
    sp, lp = route.mlus(tms)
    return {"sp_mlu": sp.tolist(), "lp_mlu": lp.tolist()}


# --- the runs' configuration -----------------------------------------------------------------

def series(pair: str) -> str:
    src, dst = pair.split("->")
    return f"od:{src}-{dst}"


def controller_config(scn: Scenario, p: Plan, te_on: bool, predictor, decisions: Path,
                      real_origin: float) -> dict:
    reference = max(link.capacity_mbps for link in load(scn.topology).links) * p.bw_scale
    return {
        "controller": {"providers": [TE_PROVIDER] if te_on else [],
                       "telemetry": {"poll_interval_s": 0.5},
                       "routing": {"path_metric": scn.path_metric,
                                   "reference_mbps": min(reference, scn.max_bw_mbps)},
                       "predictor": {"address": predictor.address if te_on and predictor else "",
                                     "timeout_s": 5.0},
                       "clock": {"time_scale": 300 / scn.step_real_s, "virtual_origin_s": p.start_time,
                                 "real_origin_s": real_origin}},
        "te": {"interval_s": scn.step_real_s, "horizon_s": scn.horizon_s, "quantile": scn.quantile,
               "k": scn.k, "threshold": scn.threshold, "decisions_path": str(decisions)},
    }
