"""The min-max-link-utilisation (MLU) multicommodity flow LP over candidate paths.

``PathSet`` compiles candidate paths per OD pair against the directed links of a
graph: a sparse link-by-path incidence matrix, the OD of every path and the link
capacities. A split vector ``x`` holds one fraction per (OD, path), in the
PathSet's order; the fractions of an OD sum to 1.

``solve_min_mlu`` solves, with HiGHS through ``scipy.optimize.linprog`` on sparse
matrices::

    minimise    t  (+ a tie-break, below)
    subject to  sum_p x[od, p] = 1                               for every OD with demand
                sum_{(od, p) uses e} d[od] x[od, p] / c[e] <= t  for every directed link e
                x >= 0, t >= 0

Rows are written in utilisation (demand over capacity) rather than Mbit/s so the
coefficients stay near 1 whatever the units. Several traffic matrices can be given
at once: the LP then minimises the largest MLU over all of them (a robust plan).
ODs without demand get no variables; their split is the first (shortest) path.

Tie-break: the min-max optimum is rarely unique: links off the bottleneck can be
loaded anywhere up to t, and the simplex returns whichever vertex it reaches. With
``tiebreak > 0`` the objective adds ``tiebreak / E * sum_e utilisation_e`` (E the
link count), which is at most ``tiebreak * t``; so the MLU found is within a
factor ``1 + tiebreak`` of the optimum, and among near-optimal splits the one with
the least total load (shortest paths) is returned, leaving headroom elsewhere.
The default 1e-3 was chosen on the fit spans alone (the hold-out at the end of
each, see ``labs.te_eval``): on Abilene's, plans from the previous interval's
matrix scored a mean MLU/oracle of 1.070 without the tie-break and 1.035 with it
(1e-2: 1.035); on GÉANT's, 1.056 against 1.057 (1e-2: 1.054).

``mlu`` scores any splits on any traffic matrix, so a plan made on one matrix can
be judged on the one that really happened.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from apps.te import TEError
from apps.te.paths import CAPACITY

Node = Hashable
OD = tuple          # (src, dst)
DEFAULT_TIEBREAK = 1e-3


class LPError(RuntimeError):
    """The solver did not return an optimal solution."""


class PathSet:
    """Candidate paths per OD compiled against a graph's directed links."""

    def __init__(self, graph: nx.DiGraph, paths: Mapping[OD, Sequence[Sequence[Node]]],
                 capacity: str = CAPACITY):
        if not paths:
            raise TEError("no OD pairs given")
        for u, v, cap in graph.edges(data=capacity):
            if cap is None or not (isinstance(cap, (int, float)) and math.isfinite(cap) and cap > 0):
                raise TEError(f"link {u}->{v} has {capacity} {cap!r}; capacities must be positive")
        ods, per_od, arcs = [], [], set()
        for od, candidates in paths.items():
            src, dst = _check_od(graph, od)
            if not candidates:
                raise TEError(f"OD {src}->{dst} has no path")
            seen = set()
            for path in candidates:
                path = tuple(path)
                if len(path) < 2 or path[0] != src or path[-1] != dst:
                    raise TEError(f"path {_show(path)} does not run from {src} to {dst}")
                if path in seen:
                    raise TEError(f"OD {src}->{dst} lists path {_show(path)} twice")
                seen.add(path)
                for u, v in zip(path, path[1:]):
                    if not graph.has_edge(u, v):
                        raise TEError(f"path {_show(path)} uses {u}->{v}, which is not a link")
                    arcs.add((u, v))
            ods.append((src, dst))
            per_od.append(tuple(tuple(p) for p in candidates))
        if len(set(ods)) != len(ods):
            raise TEError("an OD pair is listed twice")
        self.graph = graph
        self.ods: tuple[OD, ...] = tuple(ods)
        self.od_index = {od: i for i, od in enumerate(self.ods)}
        self.paths: tuple[tuple[tuple, ...], ...] = tuple(per_od)
        self.links: tuple[tuple, ...] = tuple(sorted(graph.edges(), key=lambda e: (str(e[0]), str(e[1]))))
        self.link_index = {arc: i for i, arc in enumerate(self.links)}
        self.capacity_mbps = np.array([graph[u][v][capacity] for u, v in self.links], dtype=np.float64)
        counts = np.array([len(p) for p in self.paths])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.path_od = np.repeat(np.arange(len(self.ods)), counts)
        rows, cols = [], []
        for j, path in enumerate(p for od_paths in self.paths for p in od_paths):
            for arc in zip(path, path[1:]):
                rows.append(self.link_index[arc])
                cols.append(j)
        self.incidence = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                       shape=(len(self.links), self.n_paths))

    @property
    def n_paths(self) -> int:
        return int(self.offsets[-1])

    def first_path_splits(self) -> np.ndarray:
        """All of every OD's demand on its first (shortest) candidate."""
        x = np.zeros(self.n_paths)
        x[self.offsets[:-1]] = 1.0
        return x

    def demand_vector(self, demands) -> np.ndarray:
        """Demands in Mbit/s as a vector in OD order, validated: a mapping OD -> Mbit/s
        (missing ODs are 0) or an array of one value per OD."""
        if isinstance(demands, Mapping):
            out = np.zeros(len(self.ods))
            for od, value in demands.items():
                src, dst = _check_od(self.graph, od)
                if (src, dst) not in self.od_index:
                    raise TEError(f"OD {src}->{dst} has no path")
                out[self.od_index[(src, dst)]] = _demand(value, (src, dst))
            return out
        out = np.asarray(demands, dtype=np.float64)
        if out.shape != (len(self.ods),):
            raise TEError(f"demand vector has shape {out.shape}, expected ({len(self.ods)},), one per OD")
        bad = np.flatnonzero(~np.isfinite(out) | (out < 0))
        if bad.size:
            src, dst = self.ods[bad[0]]
            raise TEError(f"demand for OD {src}->{dst} is {float(out[bad[0]])!r}; "
                          "demands must be finite and >= 0")
        return out

    def check_splits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n_paths,):
            raise TEError(f"splits have shape {x.shape}, expected ({self.n_paths},), one per candidate path")
        if np.any(~np.isfinite(x) | (x < -1e-9)):
            raise TEError("splits must be finite and >= 0")
        sums = np.add.reduceat(x, self.offsets[:-1])
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if bad.size:
            src, dst = self.ods[bad[0]]
            raise TEError(f"splits of OD {src}->{dst} sum to {sums[bad[0]]:.6g}, not 1")
        return x

    def splits_vector(self, splits: Mapping[OD, Sequence[float]]) -> np.ndarray:
        """A split vector from per-OD fractions (in the order of that OD's paths)."""
        x = self.first_path_splits()
        for od, fractions in splits.items():
            src, dst = _check_od(self.graph, od)
            i = self.od_index.get((src, dst))
            if i is None:
                raise TEError(f"OD {src}->{dst} has no path")
            lo, hi = self.offsets[i], self.offsets[i + 1]
            if len(fractions) != hi - lo:
                raise TEError(f"OD {src}->{dst} has {hi - lo} paths but {len(fractions)} fractions")
            x[lo:hi] = fractions
        return self.check_splits(x)

    def splits(self, x: np.ndarray) -> dict[OD, tuple[tuple[tuple, float], ...]]:
        """Per OD: (path, fraction) for every candidate path with a positive fraction."""
        out = {}
        for i, od in enumerate(self.ods):
            lo = self.offsets[i]
            out[od] = tuple((p, float(x[lo + j])) for j, p in enumerate(self.paths[i]) if x[lo + j] > 1e-9)
        return out

    def loads_mbps(self, x: np.ndarray, demand) -> np.ndarray:
        """Traffic on every directed link (in ``links`` order) when ``demand`` is split by ``x``."""
        d = self.demand_vector(demand)
        return self.incidence @ (self.check_splits(x) * d[self.path_od])

    def utilisation(self, x: np.ndarray, demand) -> np.ndarray:
        return self.loads_mbps(x, demand) / self.capacity_mbps


def mlu(pathset: PathSet, x: np.ndarray, demand) -> float:
    """The maximum link utilisation when ``demand`` (Mbit/s per OD) is split by ``x``."""
    return float(np.max(pathset.utilisation(x, demand), initial=0.0))


@dataclass(frozen=True)
class Solution:
    x: np.ndarray           # split per (OD, path), PathSet order
    mlu: float              # largest MLU over the traffic matrices solved for
    solve_s: float          # wall time of the LP build and solve
    pathset: PathSet

    def splits(self) -> dict[OD, tuple[tuple[tuple, float], ...]]:
        return self.pathset.splits(self.x)


def solve_min_mlu(pathset: PathSet, demands, tiebreak: float = DEFAULT_TIEBREAK,
                  dense: bool = False) -> Solution:
    """Splits minimising the MLU of ``demands``: one traffic matrix (mapping or vector)
    or several (array [S, OD]: the largest of their MLUs is minimised).

    ``dense`` builds the constraint matrices as dense arrays (a benchmark baseline)."""
    started = time.perf_counter()
    if not (math.isfinite(tiebreak) and tiebreak >= 0):
        raise TEError(f"tiebreak must be >= 0, got {tiebreak!r}")
    if isinstance(demands, Mapping):
        tms = pathset.demand_vector(demands)[None, :]
    else:
        raw = np.asarray(demands, dtype=np.float64)
        tms = np.stack([pathset.demand_vector(row) for row in np.atleast_2d(raw)])
    active = np.flatnonzero(tms.max(axis=0) > 0)
    x = pathset.first_path_splits()
    if active.size == 0:
        return Solution(x, 0.0, time.perf_counter() - started, pathset)
    # Columns: the candidate paths of active ODs, then t.
    cols = np.concatenate([np.arange(pathset.offsets[i], pathset.offsets[i + 1]) for i in active])
    n = cols.size
    od_of = pathset.path_od[cols]
    inc = pathset.incidence[:, cols]
    inv_cap = sp.diags(1.0 / pathset.capacity_mbps)
    n_links = len(pathset.links)
    blocks = [inv_cap @ inc @ sp.diags(tm[od_of]) for tm in tms]
    util = sp.vstack(blocks, format="csr")                          # [S*E, n]
    a_ub = sp.hstack([util, sp.csr_matrix(-np.ones((util.shape[0], 1)))], format="csr")
    row_of = np.searchsorted(active, od_of)
    a_eq = sp.csr_matrix((np.ones(n), (row_of, np.arange(n))), shape=(active.size, n + 1))
    c = np.zeros(n + 1)
    c[-1] = 1.0
    if tiebreak > 0:
        c[:n] = tiebreak / n_links * np.asarray(sum(blocks).sum(axis=0)).ravel() / len(tms)
    if dense:
        a_ub, a_eq = a_ub.toarray(), a_eq.toarray()
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), A_eq=a_eq, b_eq=np.ones(active.size),
                  bounds=(0, None), method="highs")
    if res.status != 0:
        raise LPError(f"min-MLU LP: {res.message}")
    x[cols] = np.clip(res.x[:n], 0.0, None)
    # Renormalise away the solver's rounding so every OD's fractions sum to exactly 1.
    sums = np.add.reduceat(x, pathset.offsets[:-1])
    x /= np.repeat(sums, np.diff(pathset.offsets))
    worst = max(mlu(pathset, x, tm) for tm in tms)
    return Solution(x, worst, time.perf_counter() - started, pathset)


def _check_od(graph: nx.DiGraph, od) -> tuple:
    try:
        src, dst = od
    except (TypeError, ValueError):
        raise TEError(f"OD {od!r} is not a (source, destination) pair") from None
    for end, node in (("source", src), ("destination", dst)):
        if node not in graph:
            raise TEError(f"OD {src}->{dst}: unknown {end} node {node!r}")
    if src == dst:
        raise TEError(f"OD {src}->{dst}: source and destination are the same node")
    return src, dst


def _demand(value, od) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TEError(f"demand for OD {od[0]}->{od[1]} is {value!r}, not a number") from None
    if not math.isfinite(out) or out < 0:
        raise TEError(f"demand for OD {od[0]}->{od[1]} is {value!r}; demands must be finite and >= 0")
    return out


def _show(path) -> str:
    return "-".join(str(n) for n in path) or "(empty)"
