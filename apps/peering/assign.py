"""Prefix groups onto exits: the assignment MILP behind ``planner.Predictive``.

Every group goes to exactly one of its allowed exits (binary ``x[g, e]``); for every
exit and every horizon the groups on it must fit under the exit's limit (Mbit/s,
the planner passes headroom × capacity); the cost of a group on an exit (per hour,
the planner's prices, latency and change penalty) is minimised. Solved with HiGHS
through ``scipy.optimize.milp``.

When the demand cannot fit, the capacity rows get slack and the problem is solved
lexicographically: first the least total overload (Mbit/s above the limits, summed
over exits and horizons), then the cheapest plan with no more overload than that.
That is the limit of a very heavy slack penalty without putting a 1e9 next to
prices of 1e-4 in one objective, where HiGHS's relative MIP gap (1e-4 by default)
would swamp the prices. The common case, a plan that fits, is one solve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

OVERLOAD_TOL_MBPS = 1e-6
# Within 0.1 % of the cheapest plan: proving much tighter on 150 groups x 4 exits (a
# multiple knapsack once the cheap peers fill) took HiGHS over 5 s; at 1e-3 it takes
# 0.02-0.35 s. The planner undoes any move this slack lets through that saves less
# than its hysteresis.
_OPTIONS = {"mip_rel_gap": 1e-3, "presolve": True}


class SolverError(RuntimeError):
    """HiGHS returned no usable assignment (time limit without an incumbent, or worse)."""


@dataclass(frozen=True)
class Assignment:
    exit_of: dict[str, str]         # group -> exit (relaxed: the exit with its largest share)
    overload_mbps: float            # total Mbit/s above the limits, over exits and horizons
    cost: float                     # sum of cost x share (whatever ``cost`` holds)
    loads_mbps: dict[str, list[float]]   # exit -> load per horizon


def solve(cost: Mapping[tuple[str, str], float], demand_mbps: Mapping[str, Sequence[float]],
          limit_mbps: Mapping[str, float], fixed: Mapping[str, str] | None = None,
          time_limit_s: float = 5.0, relax: bool = False) -> Assignment:
    """The cheapest assignment of groups to exits within the limits, else the least
    overloaded one. ``cost[(group, exit)]`` lists the allowed pairs and what each
    costs; ``demand_mbps[group]`` is one value per horizon (all the same length);
    ``fixed`` pins groups to an exit (which must be an allowed pair). ``relax`` solves
    the LP relaxation instead (a group may split over exits): a fluid lower bound on
    the cost, exact and fast."""
    fixed = dict(fixed or {})
    pairs = sorted(cost)
    if not pairs:
        return Assignment({}, 0.0, 0.0, {})
    groups = sorted({g for g, _ in pairs})
    exits = sorted({e for _, e in pairs})
    for g, e in sorted(fixed.items()):
        if (g, e) not in cost:
            raise ValueError(f"group {g!r} is fixed to {e!r}, which is not one of its allowed exits")
    n_h = len(demand_mbps[groups[0]])
    d = np.array([[float(v) for v in demand_mbps[g]] for g in groups]).reshape(len(groups), n_h)
    g_index = {g: i for i, g in enumerate(groups)}
    n = len(pairs)
    c = np.array([cost[p] for p in pairs], dtype=np.float64)

    a_eq = sp.csr_matrix((np.ones(n), ([g_index[g] for g, _ in pairs], np.arange(n))),
                         shape=(len(groups), n))
    # One capacity row per (exit, horizon) that could bind: an exit whose every allowed
    # group together fits at a horizon needs no row there.
    rows, cols, vals, limits = [], [], [], []
    for e in exits:
        on_e = [j for j, (_, pe) in enumerate(pairs) if pe == e]
        for h in range(n_h):
            load = [d[g_index[pairs[j][0]], h] for j in on_e]
            if sum(load) <= limit_mbps[e] + OVERLOAD_TOL_MBPS:
                continue
            r = len(limits)
            rows += [r] * len(on_e)
            cols += on_e
            vals += load
            limits.append(float(limit_mbps[e]))
    n_rows = len(limits)
    a_ub = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n))
    lb = np.zeros(n)
    for g, e in fixed.items():
        lb[pairs.index((g, e))] = 1.0
    options = dict(_OPTIONS, time_limit=time_limit_s)

    def run(c_all, a_cap, extra_cols, extra_rows=()):
        """Solve with ``extra_cols`` slack columns appended (>= 0, continuous)."""
        m = n + extra_cols
        eq = sp.hstack([a_eq, sp.csr_matrix((len(groups), extra_cols))], format="csr")
        constraints = [LinearConstraint(eq, 1.0, 1.0)]
        if a_cap.shape[0]:
            constraints.append(LinearConstraint(a_cap, -np.inf, np.array(limits)))
        constraints.extend(extra_rows)
        integrality = np.concatenate([np.zeros(n) if relax else np.ones(n), np.zeros(extra_cols)])
        bounds = Bounds(np.concatenate([lb, np.zeros(extra_cols)]),
                        np.concatenate([np.ones(n), np.full(extra_cols, np.inf)]))
        res = milp(c_all, integrality=integrality, bounds=bounds, constraints=constraints,
                   options=options)
        return res if res.x is not None and res.status in (0, 1) else None, res, m

    res, raw, _ = run(c, a_ub, 0)
    if res is None:
        if raw.status not in (2, 4):            # anything but "infeasible" is a real failure
            raise SolverError(f"assignment MILP: {raw.message}")
        slack = sp.hstack([a_ub, -sp.identity(n_rows, format="csr")], format="csr")
        first, raw, m = run(np.concatenate([np.zeros(n), np.ones(n_rows)]), slack, n_rows)
        if first is None:
            raise SolverError(f"assignment MILP (least overload): {raw.message}")
        overload = float(first.x[n:].sum())
        cap_total = LinearConstraint(np.concatenate([np.zeros(n), np.ones(n_rows)])[None, :], -np.inf,
                                     overload * (1 + 1e-7) + OVERLOAD_TOL_MBPS)
        res, raw, _ = run(np.concatenate([c, np.zeros(n_rows)]), slack, n_rows, (cap_total,))
        if res is None:
            res = first                         # the least-overload plan, whatever it costs
    x = np.clip(res.x[:n], 0.0, 1.0)
    exit_of = {}
    for g in groups:
        js = [j for j, (pg, _) in enumerate(pairs) if pg == g]
        best = max(js, key=lambda j: (x[j], -j))
        exit_of[g] = pairs[best][1]
    if not relax:
        x = np.zeros(n)
        x[[pairs.index((g, e)) for g, e in exit_of.items()]] = 1.0
    loads = {e: [0.0] * n_h for e in exits}
    for j, (g, e) in enumerate(pairs):
        if x[j] > 1e-9:
            loads[e] = [a + x[j] * b for a, b in zip(loads[e], d[g_index[g]])]
    overload = sum(max(0.0, v - limit_mbps[e]) for e in exits for v in loads[e])
    return Assignment(exit_of, overload if overload > OVERLOAD_TOL_MBPS else 0.0, float(c @ x), loads)
