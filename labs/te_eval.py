"""Offline traffic-engineering evaluator on a dataset's evaluation span.

For every interval ``t`` of the evaluation span (../shared/data/README.md:
Abilene 2880 <= t < 4032, GÉANT 216 <= t < 324) the true traffic matrix TM[t] is
routed by five schemes and each one's maximum link utilisation (MLU) measured:

- ``shortest_path``: all of an OD's traffic on its least-IGP-cost path;
- ``ecmp``: per-hop equal split over equal-cost next hops;
- ``reactive_te``: the min-MLU LP solved on TM[t-1], the last measured matrix;
- ``predictive_te``: the LP solved on the forecast of TM[t] made at the end of
  t-1 (one step ahead), at the forecast quantile chosen by the policy below;
- ``oracle``: the LP solved on TM[t] itself, the best any split over the same
  candidate paths can do.

The LP schemes split over the ``k`` shortest candidate paths (``apps.te.paths``).

Forecasts come from ``predictors.backtest.run``: models fitted on the fit span
only, then rolled over the evaluation span with intervals recalibrated walking
forward, exactly as the live prediction service would have served them.

Predictive policy: which forecast the LP plans on (the mean, q0.9 or q0.975, or
the robust plan over both the mean and q0.9) is chosen on the fit span alone: the
last ``validation_steps`` rows of the fit span are held out, forecasters are
fitted on the rows before them, every policy is scored by MLU/oracle on the
held-out rows, and the one with the lowest mean + p95 of that ratio wins. The
evaluation span never takes part in the choice.

Reported per scheme: MLU/oracle (mean, p50, p95, max), the number of intervals
with MLU > 1 once all demands are scaled so that the oracle's mean MLU over the
span is 0.8 (the factor is reported: the datasets' own scales are arbitrary, see
the data README), and the p50 LP build+solve time.
"""

from __future__ import annotations

import copy
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from apps.te import TEError
from apps.te.lp import DEFAULT_TIEBREAK, PathSet, mlu, solve_min_mlu
from apps.te.paths import ecmp_splits, k_shortest_paths, te_graph

log = logging.getLogger(__name__)

SCHEMES = ("shortest_path", "ecmp", "reactive_te", "predictive_te", "oracle")
POLICIES = ("mean", "q0.9", "q0.975", "mean+q0.9")
TARGET_ORACLE_MLU = 0.8
_QUANTILE_ROW = {"q0.025": 0, "q0.1": 1, "q0.9": 2, "q0.975": 3}     # backtest._QUANTILES order


@dataclass(frozen=True)
class Network:
    """The substrate and the routing every scheme may use, OD order fixed by ``ods``."""
    graph: object
    ods: tuple
    candidates: PathSet                 # k shortest paths per OD, for the LP schemes
    shortest: PathSet                   # one path per OD
    ecmp: PathSet
    ecmp_x: np.ndarray

    @property
    def shortest_x(self) -> np.ndarray:
        return self.shortest.first_path_splits()


def od_pairs(spec, names: Sequence[str]) -> list[tuple[str, str]]:
    """Map panel series ids ``"SRC->DST"`` (dataset node labels) to switch-name pairs."""
    by_label = {sw.label: sw.name for sw in spec.switches}
    out = []
    for name in names:
        src, sep, dst = name.partition("->")
        if not sep:
            raise TEError(f"series {name!r} is not of the form SRC->DST")
        for label in (src, dst):
            if label not in by_label:
                raise TEError(f"series {name!r}: node {label!r} is not in topology {spec.name!r}")
        out.append((by_label[src], by_label[dst]))
    return out


def build_network(graph, ods: Sequence[tuple], k: int = 4) -> Network:
    """Candidate, shortest and ECMP paths for every OD; TEError names an OD with no path."""
    candidates, ecmp = {}, {}
    for src, dst in ods:
        paths = k_shortest_paths(graph, src, dst, k)
        if not paths:
            raise TEError(f"OD {src}->{dst} has no path")
        candidates[(src, dst)] = paths
        ecmp[(src, dst)] = ecmp_splits(graph, src, dst)
    shortest = PathSet(graph, {od: paths[:1] for od, paths in candidates.items()})
    ecmp_set = PathSet(graph, {od: [p for p, _ in splits] for od, splits in ecmp.items()})
    ecmp_x = ecmp_set.splits_vector({od: [s for _, s in splits] for od, splits in ecmp.items()})
    return Network(graph, tuple(ods), PathSet(graph, candidates), shortest, ecmp_set, ecmp_x)


@dataclass
class SpanResult:
    """MLU per scheme on the true TM of every target interval, and LP times."""
    targets: np.ndarray                                 # interval indices
    mlu: dict[str, np.ndarray]                          # scheme -> [M]
    solve_ms: dict[str, np.ndarray] = field(default_factory=dict)   # LP schemes only

    def ratio(self, scheme: str) -> np.ndarray:
        oracle, value = self.mlu["oracle"], self.mlu[scheme]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(oracle > 0, value / oracle, np.where(value > 0, np.inf, 1.0))

    def scale_factor(self) -> float:
        """Demand multiplier that makes the oracle's mean MLU TARGET_ORACLE_MLU."""
        mean = float(np.mean(self.mlu["oracle"]))
        if mean <= 0:
            raise TEError("the oracle's mean MLU is 0 (no traffic); cannot scale demands")
        return TARGET_ORACLE_MLU / mean

    def summary(self, scheme: str, factor: float | None = None) -> dict:
        ratio = self.ratio(scheme)
        factor = self.scale_factor() if factor is None else factor
        times = self.solve_ms.get(scheme)
        return {"mlu_ratio_mean": float(np.mean(ratio)), "mlu_ratio_p50": float(np.percentile(ratio, 50)),
                "mlu_ratio_p95": float(np.percentile(ratio, 95)), "mlu_ratio_max": float(np.max(ratio)),
                "congested_intervals": int(np.sum(factor * self.mlu[scheme] > 1.0 + 1e-9)),
                "solve_ms_p50": None if times is None else float(np.percentile(times, 50))}


def evaluate_span(network: Network, tms: np.ndarray, targets: np.ndarray, plans: dict[str, np.ndarray],
                  tiebreak: float = DEFAULT_TIEBREAK) -> SpanResult:
    """Route TM[t] for every t in ``targets`` (consecutive, t >= 1) by every scheme.

    ``tms`` is [T, OD] with T > targets[-1]. ``plans`` maps each extra LP scheme to
    the matrices it plans on: [M, OD] (one per target) or [M, S, OD] (a robust plan
    over S matrices). The reactive plan for t is the oracle's plan for t - 1, so
    each measured matrix is solved once."""
    targets = np.asarray(targets, dtype=np.int64)
    if targets.size == 0 or np.any(np.diff(targets) != 1) or targets[0] < 1 or targets[-1] >= len(tms):
        raise TEError("targets must be consecutive intervals with a previous one inside the TM series")
    truth = tms[targets]
    out = SpanResult(targets, {}, {})
    out.mlu["shortest_path"] = np.array([mlu(network.shortest, network.shortest_x, tm) for tm in truth])
    out.mlu["ecmp"] = np.array([mlu(network.ecmp, network.ecmp_x, tm) for tm in truth])
    cands = network.candidates
    measured = [solve_min_mlu(cands, tms[t], tiebreak) for t in range(targets[0] - 1, targets[-1] + 1)]
    out.mlu["oracle"] = np.array([s.mlu for s in measured[1:]])
    out.solve_ms["oracle"] = np.array([1e3 * s.solve_s for s in measured[1:]])
    out.mlu["reactive_te"] = np.array([mlu(cands, s.x, tm) for s, tm in zip(measured[:-1], truth)])
    out.solve_ms["reactive_te"] = np.array([1e3 * s.solve_s for s in measured[:-1]])
    for name, plan in plans.items():
        if len(plan) != len(targets):
            raise TEError(f"plan {name!r} has {len(plan)} matrices for {len(targets)} targets")
        solved = [solve_min_mlu(cands, p, tiebreak) for p in plan]
        out.mlu[name] = np.array([mlu(cands, s.x, tm) for s, tm in zip(solved, truth)])
        out.solve_ms[name] = np.array([1e3 * s.solve_s for s in solved])
    return out


def policy_plan(policy: str, mean: np.ndarray, qs: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The matrices a predictive policy plans on, from a served forecast (mean [M, OD],
    quantiles [4, M, OD]); a missing forecast value falls back to the last measurement."""
    def fill(a: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(a), a, previous)

    parts = []
    for part in policy.split("+"):
        if part == "mean":
            parts.append(fill(mean))
        elif part in _QUANTILE_ROW:
            parts.append(fill(qs[_QUANTILE_ROW[part]]))
        else:
            raise TEError(f"unknown predictive policy {policy!r}; known: {', '.join(POLICIES)}")
    return parts[0] if len(parts) == 1 else np.stack(parts, axis=1)


@dataclass
class Evaluation:
    dataset: str
    k: int
    policy: str                                 # chosen on the fit span
    validation: SpanResult                      # fit-span hold-out, one scheme per policy
    result: SpanResult                          # the evaluation span
    times_s: np.ndarray                         # Unix time of every target interval
    models: str                                 # the served forecaster(s)

    def rows(self) -> list[dict]:
        factor = self.result.scale_factor()
        return [{"dataset": self.dataset, "scheme": s, **self.result.summary(s, factor)} for s in SCHEMES]


def validation_steps(step_s: int, fit_end: int) -> int:
    """Two days of the fit span, or a third of it when that is shorter (GÉANT: 72 of 216)."""
    return max(1, min(2 * round(86400 / step_s), fit_end // 3))


def choose_policy(validation: SpanResult) -> str:
    """The policy with the lowest mean + p95 of MLU/oracle on the fit-span hold-out."""
    def score(policy: str) -> float:
        s = validation.summary(policy)
        return s["mlu_ratio_mean"] + s["mlu_ratio_p95"]
    return min(POLICIES, key=score)


def _forecast(panel, split, dataset: str, candidates, say) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    from threadpoolctl import threadpool_limits

    from predictors import backtest

    # One native thread (OpenMP, BLAS): on two cores shared with other jobs a training
    # with the default pools once took 446 s, limited to one thread 22 s (before
    # predictors/__init__ made OpenMP wait passively; the limit also covers BLAS). It
    # reaches only libraries already loaded, so scikit-learn's OpenMP goes first.
    importlib.import_module("sklearn.ensemble")
    with threadpool_limits(limits=1):
        result = backtest.run(panel, split, [panel.step_s], dataset, candidates=candidates)
    origins, mean, qs = result.served[1]
    served = sorted(set(result.report.chosen[1]))
    say(f"{dataset}: forecasters fitted on [0, {split.fit_end}) in {result.report.seconds:.0f} s, "
        f"serving {'/'.join(served)} for intervals [{origins[0] + 1}, {origins[-1] + 2})")
    return origins + 1, mean, qs, "/".join(served)


def run(dataset: str, k: int = 4, candidates=None, tiebreak: float = DEFAULT_TIEBREAK,
        say: Callable[[str], None] | None = None) -> Evaluation:
    """Evaluate all schemes on ``dataset``'s evaluation span; see the module docstring."""
    from predictors.panel import SPLITS, Split, load_dataset
    from predictors.selection import default_candidates
    from topologies.catalog import load

    say = say or log.info
    if dataset not in SPLITS:
        raise TEError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(SPLITS))}")
    spec = load(dataset)
    panel = load_dataset(dataset)
    split = SPLITS[dataset]
    panel = panel.slice(0, split.eval_end)          # the reserved span is never read
    tms = panel.values
    if not np.all(np.isfinite(tms)):
        raise TEError(f"{dataset}: the traffic matrices have missing values")
    network = build_network(te_graph(spec), od_pairs(spec, panel.names), k)
    say(f"{dataset}: {len(network.ods)} OD pairs, {len(network.candidates.links)} directed links, "
        f"{network.candidates.n_paths} candidate paths (k={k})")

    def make_candidates():          # fresh, unfitted models for each of the two trainings
        if candidates is not None:
            return copy.deepcopy(list(candidates))
        return default_candidates(panel.step_s, recurrent=False)

    # 1. Policy choice on the fit span: forecasters fitted before a hold-out at its end.
    hold = validation_steps(panel.step_s, split.fit_end)
    inner = Split(fit_end=split.fit_end - hold, eval_end=split.fit_end)
    targets, mean, qs, _ = _forecast(panel.slice(0, split.fit_end), inner, dataset, make_candidates(), say)
    plans = {p: policy_plan(p, mean, qs, tms[targets - 1]) for p in POLICIES}
    validation = evaluate_span(network, tms, targets, plans, tiebreak)
    policy = choose_policy(validation)
    scores = ", ".join(f"{p} mean {validation.summary(p)['mlu_ratio_mean']:.3f} "
                       f"p95 {validation.summary(p)['mlu_ratio_p95']:.3f}" for p in POLICIES)
    say(f"{dataset}: predictive policy {policy!r} chosen on fit-span intervals "
        f"[{targets[0]}, {targets[-1] + 1}): {scores}")

    # 2. The evaluation span, forecasters fitted on the whole fit span.
    targets, mean, qs, models = _forecast(panel, split, dataset, make_candidates(), say)
    plan = policy_plan(policy, mean, qs, tms[targets - 1])
    result = evaluate_span(network, tms, targets, {"predictive_te": plan}, tiebreak)
    return Evaluation(dataset, k, policy, validation, result, panel.times[targets], models)


def format_table(evaluation: Evaluation) -> str:
    res = evaluation.result
    factor = res.scale_factor()
    lines = [f"{evaluation.dataset}: evaluation intervals [{res.targets[0]}, {res.targets[-1] + 1}) "
             f"({len(res.targets)}), k={evaluation.k}, forecaster {evaluation.models}, "
             f"predictive policy {evaluation.policy} (chosen on the fit span)",
             f"demand scale factor {factor:.4g} (oracle mean MLU {TARGET_ORACLE_MLU})",
             f"  {'scheme':<15}{'mean':>8}{'p50':>8}{'p95':>8}{'max':>8}{'MLU>1':>8}{'LP ms p50':>11}"]
    for row in evaluation.rows():
        ms = "-" if row["solve_ms_p50"] is None else f"{row['solve_ms_p50']:.1f}"
        lines.append(f"  {row['scheme']:<15}{row['mlu_ratio_mean']:8.3f}{row['mlu_ratio_p50']:8.3f}"
                     f"{row['mlu_ratio_p95']:8.3f}{row['mlu_ratio_max']:8.3f}"
                     f"{row['congested_intervals']:>8d}{ms:>11}")
    lines.append("  (mean..max: MLU / oracle MLU; MLU>1: intervals over capacity after scaling)")
    return "\n".join(lines)


def plot(evaluation: Evaluation, path: Path) -> None:
    """Scaled MLU and MLU/oracle over the evaluation span, one line per scheme."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = evaluation.result
    factor = res.scale_factor()
    hours = (evaluation.times_s - evaluation.times_s[0]) / 3600.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    colours = {"shortest_path": "tab:gray", "ecmp": "tab:brown", "reactive_te": "tab:orange",
               "predictive_te": "tab:blue", "oracle": "black"}
    for scheme in SCHEMES:
        top.plot(hours, factor * res.mlu[scheme], lw=0.8, color=colours[scheme], label=scheme)
        if scheme != "oracle":
            bottom.plot(hours, res.ratio(scheme), lw=0.8, color=colours[scheme], label=scheme)
    top.axhline(1.0, color="red", lw=0.6, ls="--")
    top.set_ylabel(f"MLU (demand x {factor:.3g})")
    top.legend(loc="upper right", fontsize=8, ncol=5)
    bottom.axhline(1.0, color="black", lw=0.6)
    bottom.set_ylabel("MLU / oracle")
    bottom.set_xlabel("hours since the start of the evaluation span")
    fig.suptitle(f"{evaluation.dataset}: MLU per interval, k={evaluation.k}, "
                 f"predictive policy {evaluation.policy}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
