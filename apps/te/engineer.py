"""Traffic engineering in the controller: plan OD splits from the forecast traffic
matrix, install them as weighted splits over labelled routes, move traffic before
links congest.

Every ``interval_s`` (one step, ``TrafficEngineer.step``):

1. The ODs are the (ingress switch, egress switch) pairs of the host pairs the
   controller forwards between. A new OD gets its shortest path as a one-route
   plan at once, so its traffic is counted from the start.
2. Measured TM: each OD's rate from its route groups' byte counters (polled with
   the port statistics, ``group_stats``), over the last ``MEASURE_WINDOW_S``.
3. The measured rates go to the predictor as series ``od:<src>-<dst>`` (switch
   names), stamped with the app clock; the forecast ``horizon_s`` ahead at
   ``quantile`` is the TM planned for. An OD without a forecast (predictor down,
   not configured, refused) uses its measured rate, and the step says so.
4. Candidates: the ``k`` cheapest paths per OD on the live topology (the same link
   weights as shortest-path forwarding); capacities from ``topology.links``
   (else ``default_capacity_mbps``).
5. The current plan is scored on the planned TM (predicted MLU); port statistics
   give the measured utilisation of every link. When either crosses ``threshold``,
   the min-MLU LP (``apps.te.lp``) is solved; its plan replaces the current one
   if it cuts the predicted MLU by ``min_gain`` at least (no churn for nothing).
   ODs in ``priority_pairs`` (stitched traffic) are placed first, on links
   shrunk by ``headroom``, and best effort then gets what they leave, the links
   they use still keeping that headroom.

Each step is logged, counted (``te_*`` counters) and, with ``decisions_path``,
appended as one JSON line: time, TM source, predicted and measured MLU, action,
the ODs that moved and their splits. Plans live in memory: after a restart the
first step re-plans from what it measures (pairs fall back to shortest path
meanwhile).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Callable

import grpc
import networkx as nx
import numpy as np

from prometheus_client.core import GaugeMetricFamily

from apps.te import SPEC, TEError
from apps.te import dataplane
from apps.te.dataplane import LABEL_MAX, LABEL_MIN, Host, Route
from apps.te.lp import LPError, PathSet, mlu, solve_min_mlu
from apps.te.paths import CAPACITY, WEIGHT, k_shortest_paths
from apps.te.config import TeConfig
from controller.appbase import App, CoreView, Knob, KnobError
from controller.appkit import NO_PREDICTOR, Basis
from controller.config import ClockConfig
from controller.desired import Desired
from controller.stepper import GridStepper
from predictors.client import quantile_value

LOG = logging.getLogger(__name__)

SERIES_PREFIX = "od:"
STALE_POLLS = 3            # group counters older than this many intervals count as no traffic
# Open vSwitch pushes datapath counters to its groups in batches (about every 0.5 s),
# so a rate over one short poll swings far above and below the truth: rates are taken
# over this window instead.
MEASURE_WINDOW_S = 3.0
OD = tuple[int, int]


@dataclass
class _Counter:
    """An OD group's byte counter over the last ``MEASURE_WINDOW_S``: (time, bytes) samples."""

    samples: deque = field(default_factory=deque)

    def add(self, now: float, count: int) -> None:
        if self.samples and (count < self.samples[-1][1] or now <= self.samples[-1][0]):
            self.samples.clear()            # a reset counter (group re-created): start again
        self.samples.append((now, count))
        while len(self.samples) > 2 and self.samples[1][0] <= now - MEASURE_WINDOW_S:
            self.samples.popleft()

    @property
    def time(self) -> float:
        return self.samples[-1][0]

    @property
    def rate_mbps(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) * 8 / (t1 - t0) / 1e6


@dataclass
class StepRecord:
    time: float                       # real (wall) seconds
    app_time: float                   # the app clock
    source: str                       # "forecast", "measured" or "mixed"
    ods: int
    demand_mbps: float                # total of the TM planned for
    predicted_mlu: float              # the plan in place, on that TM
    measured_mlu: float               # from port statistics
    action: str                       # "hold", "replan", "keep" (LP found no real gain), "new_ods"
    planned_mlu: float | None = None  # the LP's plan on the TM, when solved
    solve_ms: float | None = None
    moved: dict = field(default_factory=dict)   # "src-dst" -> [[path names, fraction], ...]
    why: str = ""

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class TrafficEngineer(App):
    name = SPEC.name

    def __init__(self, view: CoreView, resync: Callable[[], None], settings: TeConfig, predictor=None,
                 clock: ClockConfig | None = None, wall: Callable[[], float] = time.time,
                 poll_interval_s: float = 2.0):
        super().__init__(view, resync)
        self.settings = settings
        self.predictor = predictor
        self.clock = clock or ClockConfig()
        self.wall = wall
        self.poll_interval_s = poll_interval_s
        self._basis = Basis(LOG, "traffic engineering",
                            f"forecasts {settings.horizon_s:g} s ahead at q{settings.quantile:g}")
        self._lock = threading.Lock()
        # OD -> its routes; labels by path; byte counters by route group.
        self.plans: dict[OD, tuple[Route, ...]] = {}
        self._labels: dict[tuple[int, ...], int] = {}
        self._next_label = LABEL_MIN
        self._counters: dict[int, _Counter] = {}
        self._candidates: tuple[int, dict[OD, list[tuple[int, ...]]]] = (-1, {})
        self._by_od: tuple[tuple[int, int], dict[OD, list[tuple[Host, Host]]]] = ((-1, -1), {})
        self.history: list[StepRecord] = []
        self._steps = GridStepper("te-steps", self.clock, settings.interval_s, self.step, wall,
                                  on_error=self._step_failed)
        self._priority = set(settings.priority_pairs)

    # ---- what the switches hold --------------------------------------------------------

    def desired(self, dp_id: int, now: float) -> Desired:
        with self._lock:
            plans = dict(self.plans)
        if not plans:
            return Desired()
        return dataplane.switch_entries(dp_id, plans, self._pairs_by_od(), self._ports)

    def _ports(self, path: tuple[int, ...]):
        graph = self.view.graph()
        if any(not graph.has_edge(a, b) for a, b in zip(path, path[1:])):
            return None
        return self.view.hop_ports(list(path))

    def _pairs_by_od(self) -> dict[OD, list[tuple[Host, Host]]]:
        """OD -> the host pairs forwarded between its switches (the core's wanted pairs);
        kept until forwarding or the host table changes (every switch's sync asks)."""
        key = (self.view.forwarding_version, self.view.hosts_version)
        if self._by_od[0] != key:
            self._by_od = (key, self._walk_pairs())
        return self._by_od[1]

    def _walk_pairs(self) -> dict[OD, list[tuple[Host, Host]]]:
        out: dict[OD, list[tuple[Host, Host]]] = {}
        view = self.view
        for src_mac, dst_mac in view.forwarded_pairs():
            src, dst = view.host(src_mac), view.host(dst_mac)
            if src is None or dst is None or src.dp_id == dst.dp_id:
                continue
            out.setdefault((src.dp_id, dst.dp_id), []).append(
                (Host(src.mac, src.dp_id, src.port_no), Host(dst.mac, dst.dp_id, dst.port_no)))
        return out

    # ---- counters ----------------------------------------------------------------------

    def group_stats(self, dp_id: int, stats: list, now: float) -> None:
        with self._lock:
            planned = {dataplane.group_id(r.label) for routes in self.plans.values() for r in routes}
            for stat in stats:
                if stat.group_id in planned:
                    self._counters.setdefault(stat.group_id, _Counter()).add(now, int(stat.byte_count))
            for gid in [g for g in self._counters if g not in planned]:
                del self._counters[gid]             # a route no longer planned

    def measured(self, now: float) -> dict[OD, float]:
        """Each planned OD's rate at the last poll: the sum over its routes' groups (a
        route without a fresh reading counts 0)."""
        stale = STALE_POLLS * max(self.poll_interval_s, self.settings.interval_s)
        out = {}
        with self._lock:
            for od, routes in self.plans.items():
                total = 0.0
                for r in routes:
                    c = self._counters.get(dataplane.group_id(r.label))
                    if c is not None and c.rate_mbps is not None and now - c.time <= stale:
                        total += c.rate_mbps
                out[od] = total
        return out

    # ---- one step -----------------------------------------------------------------------

    def step(self, now: float | None = None) -> StepRecord | None:
        now = self.wall() if now is None else now
        if now < self.clock.real_origin_s or self._steps.stopped:
            return None
        with self.view.reading():
            ods = sorted(self._pairs_by_od())
            graph = self._graph()
            link_util = max((link.utilisation for link in self.view.links()), default=0.0)
        if not ods:
            return None
        candidates = self._candidate_paths(graph, ods)
        ods = [od for od in ods if candidates.get(od)]
        new = [od for od in ods if od not in self.plans]
        if new:
            with self._lock:
                for od in new:
                    self.plans[od] = (self._route(candidates[od][0], 1.0),)
        vnow = self.clock.virtual(now)
        measured = self.measured(now)
        tm, source = self._traffic_matrix(ods, measured, vnow)
        pathset = PathSet(graph, {od: candidates[od] for od in ods})
        x_now = self._current_splits(pathset)
        predicted = mlu(pathset, x_now, tm)
        record = StepRecord(now, vnow, source, len(ods), round(sum(tm.values()), 3), round(predicted, 4),
                            round(link_util, 4), "hold")
        if new:
            record.action, record.why = "new_ods", f"{len(new)} new OD(s) on their shortest path"
        if max(predicted, link_util) > self.settings.threshold:
            self._replan(record, pathset, tm, x_now, predicted)
        if self._steps.stopped:
            return None                     # the controller is stopping: the switches may be gone
        if new or record.action == "replan":
            self.resync()
        self._finish(record)
        return record

    def _graph(self) -> nx.DiGraph:
        """The live switch graph with capacities and forwarding's link weights."""
        graph = nx.DiGraph()
        for a, b, data in self.view.graph().edges(data=True):
            cap = self.view.capacity_mbps(a, b) or self.settings.default_capacity_mbps
            graph.add_edge(a, b, **{CAPACITY: float(cap), WEIGHT: float(data["weight"])})
        return graph

    def _candidate_paths(self, graph: nx.DiGraph, ods: list[OD]) -> dict[OD, list[tuple[int, ...]]]:
        version = self.view.topology_version
        if self._candidates[0] != version:
            self._candidates = (version, {})
        cache = self._candidates[1]
        for od in ods:
            if od not in cache:
                try:
                    cache[od] = [tuple(p) for p in k_shortest_paths(graph, od[0], od[1], self.settings.k)]
                except TEError:
                    cache[od] = []
        return cache

    def _traffic_matrix(self, ods: list[OD], measured: dict[OD, float], vnow: float
                        ) -> tuple[dict[OD, float], str]:
        forecasts = self._forecasts(ods, measured, vnow)
        tm = {od: forecasts.get(od, measured.get(od, 0.0)) for od in ods}
        source = ("forecast" if len(forecasts) == len(ods) else "measured" if not forecasts else "mixed")
        return tm, source

    def _forecasts(self, ods: list[OD], measured: dict[OD, float], vnow: float) -> dict[OD, float]:
        if self.predictor is None:
            self._basis.on_measurements(NO_PREDICTOR)
            return {}
        names = {od: self.series_id(od) for od in ods}
        q = self.settings.quantile
        try:
            if self.settings.ingest:
                self.predictor.ingest([(names[od], vnow, measured.get(od, 0.0)) for od in ods],
                                      labels={"kind": "od"})
            response = self.predictor.forecast(list(names.values()), [self.settings.horizon_s], [q])
        except grpc.RpcError as err:
            self._basis.on_measurements(f"predictor unreachable or refused: "
                                        f"{err.code().name}: {err.details()}")
            return {}
        self._basis.on_forecasts()
        by_name = {name: od for od, name in names.items()}
        out = {}
        for fc in response.forecasts:
            od = by_name.get(fc.series_id)
            if od is None:
                continue
            value = quantile_value(fc, q)
            if math.isfinite(value):
                out[od] = max(0.0, float(value))
        return out

    def series_id(self, od: OD) -> str:
        return f"{SERIES_PREFIX}{self._name(od[0])}-{self._name(od[1])}"

    def _name(self, dp_id: int) -> str:
        return self.view.switch_name(dp_id)

    @property
    def mode(self) -> str:
        """"predictive" while steps plan on forecasts, else "reactive"."""
        return self._basis.mode

    def basis(self) -> str:
        return self._basis.mode

    def _current_splits(self, pathset: PathSet) -> np.ndarray:
        x = pathset.first_path_splits()
        with self._lock:
            plans = dict(self.plans)
        for i, od in enumerate(pathset.ods):
            lo, hi = pathset.offsets[i], pathset.offsets[i + 1]
            fractions = {r.path: r.fraction for r in plans[od]} if od in plans else {}
            row = np.array([fractions.get(p, 0.0) for p in pathset.paths[i]])
            if row.sum() > 0:
                x[lo:hi] = row / row.sum()
        return x

    def _replan(self, record: StepRecord, pathset: PathSet, tm: dict[OD, float], x_now: np.ndarray,
                predicted: float) -> None:
        started = time.perf_counter()
        try:
            x_new = self._solve(pathset, tm)
        except (LPError, TEError) as err:
            record.action, record.why = "hold", f"LP failed: {err}"
            self.view.count("te_lp_failures")
            LOG.error("traffic engineering: %s", record.why)
            return
        record.solve_ms = round((time.perf_counter() - started) * 1e3, 2)
        planned = mlu(pathset, x_new, tm)
        record.planned_mlu = round(planned, 4)
        if planned > predicted * (1 - self.settings.min_gain):
            record.action = "keep"
            record.why = (f"the LP plan's MLU {planned:.3f} is not {self.settings.min_gain:.0%} below "
                          f"the current {predicted:.3f}")
            return
        moved = {}
        with self._lock:
            for i, od in enumerate(pathset.ods):
                lo, hi = pathset.offsets[i], pathset.offsets[i + 1]
                if np.allclose(x_new[lo:hi], x_now[lo:hi], atol=1e-3):
                    continue
                routes = tuple(self._route(p, float(f)) for p, f in zip(pathset.paths[i], x_new[lo:hi])
                               if f > 1e-3)
                self.plans[od] = routes
                moved[f"{self._name(od[0])}-{self._name(od[1])}"] = [
                    ["-".join(self._name(d) for d in r.path), round(r.fraction, 3)] for r in routes]
        record.action, record.moved = "replan", moved
        record.why = (f"utilisation over {self.settings.threshold:g} (predicted {predicted:.3f}, measured "
                      f"{record.measured_mlu:.3f}): {len(moved)} OD(s) re-split, "
                      f"MLU {predicted:.3f} -> {planned:.3f}")
        self.view.count("te_replans")
        self.view.count("te_od_moves", len(moved))

    def _solve(self, pathset: PathSet, tm: dict[OD, float]) -> np.ndarray:
        """Min-MLU splits; priority ODs first, on links shrunk by the headroom."""
        names = {od: (self._name(od[0]), self._name(od[1])) for od in pathset.ods}
        prio = {od for od in pathset.ods if names[od] in self._priority and tm.get(od, 0) > 0}
        if not prio:
            return solve_min_mlu(pathset, tm).x
        keep = 1 - self.settings.headroom
        first = _scaled(pathset.graph, {arc: keep for arc in pathset.links})
        stage1 = solve_min_mlu(PathSet(first, {od: pathset.paths[pathset.od_index[od]]
                                               for od in sorted(prio)}),
                               {od: tm[od] for od in prio})
        prio_load = stage1.pathset.loads_mbps(stage1.x, {od: tm[od] for od in prio})
        load_on = dict(zip(stage1.pathset.links, prio_load))
        # Best effort gets what priority leaves, links carrying priority keeping the headroom.
        factors = {arc: (max(keep - load_on[arc] / pathset.graph[arc[0]][arc[1]][CAPACITY], 1e-3)
                         if load_on.get(arc, 0.0) > 0 else 1.0) for arc in pathset.links}
        rest = [od for od in pathset.ods if od not in prio]
        x = pathset.first_path_splits()
        _copy_splits(stage1, pathset, x)
        if rest:
            second = PathSet(_scaled(pathset.graph, factors),
                             {od: pathset.paths[pathset.od_index[od]] for od in rest})
            stage2 = solve_min_mlu(second, {od: tm.get(od, 0.0) for od in rest})
            _copy_splits(stage2, pathset, x)
        return x

    def _route(self, path: tuple[int, ...], fraction: float) -> Route:
        label = self._labels.get(path)
        if label is None:
            label = self._new_label()
            self._labels[path] = label
        return Route(path, label, fraction)

    def _new_label(self) -> int:
        """The next label after the last one given, skipping those in use (a label
        freed by one plan is not reused at once, so a frame still on it cannot be
        misrouted)."""
        in_use = {r.label for routes in self.plans.values() for r in routes}
        self._labels = {p: lab for p, lab in self._labels.items() if lab in in_use}
        taken = set(self._labels.values())
        span = LABEL_MAX - LABEL_MIN + 1
        for i in range(span):
            label = LABEL_MIN + (self._next_label - LABEL_MIN + i) % span
            if label not in taken:
                self._next_label = label + 1
                return label
        raise TEError(f"all {span} path labels are in use")

    def _finish(self, record: StepRecord) -> None:
        self.history.append(record)
        del self.history[:-1000]
        self.view.count("te_steps")
        self.view.count(f"te_steps_{record.source}")
        log = LOG.info if record.action in ("replan", "new_ods") else LOG.debug
        log("te step: %s TM (%d ODs, %.2f Mbit/s), predicted MLU %.3f, measured %.3f: %s%s",
            record.source, record.ods, record.demand_mbps, record.predicted_mlu, record.measured_mlu,
            record.action, f" ({record.why})" if record.why else "")
        if self.settings.decisions_path:
            try:
                with open(self.settings.decisions_path, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record.as_json()) + "\n")
            except OSError as err:
                self.view.count("te_decision_write_errors")
                LOG.error("te: cannot append to %s: %s", self.settings.decisions_path, err)

    # -- knobs (controller.appbase.Knob): the utilisation that triggers a reroute
    def knobs(self) -> list[Knob]:
        return [Knob("te", "reroute", "threshold", self.settings.threshold, low=0.05, high=2.0)]

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        if (kind, target, field) != ("te", "reroute", "threshold"):
            return super().set_knob(kind, target, field, value)
        try:
            settings = self.settings.model_validate({**self.settings.model_dump(), "threshold": value})
        except ValueError as err:
            raise KnobError(f"{kind}:{target}.{field}: {value!r} refused: {err}") from None
        LOG.info("te: reroute threshold %g -> %g", self.settings.threshold, value)
        self.settings = settings
        return self.knobs()[0]

    def metric_families(self) -> list:
        """Prometheus families for the controller's /metrics (read at scrape time)."""
        mlu_ = GaugeMetricFamily("foresight_te_mlu", "Maximum link utilisation at the last TE step",
                                 labels=["measure"])
        demand = GaugeMetricFamily("foresight_te_od_demand_mbps", "Per-OD traffic at the last poll",
                                   labels=["od"])
        routes = GaugeMetricFamily("foresight_te_od_routes", "Routes an OD's traffic is split over",
                                   labels=["od"])
        if self.history:
            last = self.history[-1]
            mlu_.add_metric(["predicted"], last.predicted_mlu)
            mlu_.add_metric(["measured"], last.measured_mlu)
        for od, rate in sorted(self.measured(self.wall()).items()):
            demand.add_metric([f"{self._name(od[0])}-{self._name(od[1])}"], rate)
        with self._lock:
            for od, rs in sorted(self.plans.items()):
                routes.add_metric([f"{self._name(od[0])}-{self._name(od[1])}"], len(rs))
        return [mlu_, demand, routes]

    # ---- the background loop ------------------------------------------------------------

    def start(self) -> None:
        if self.settings.decisions_path:
            FsPath(self.settings.decisions_path).parent.mkdir(parents=True, exist_ok=True)
        self._steps.start()

    def _step_failed(self) -> None:
        self.view.count("te_step_errors")

    def stopping(self) -> None:
        """The controller is stopping: no step starts, a running one changes nothing."""
        self._steps.halt()

    def close(self) -> None:
        self._steps.stop(timeout_s=1.0)


def _scaled(graph: nx.DiGraph, factors: dict) -> nx.DiGraph:
    out = graph.copy()
    for (u, v), f in factors.items():
        out[u][v][CAPACITY] = graph[u][v][CAPACITY] * f
    return out


def _copy_splits(stage, pathset: PathSet, x: np.ndarray) -> None:
    """Write a stage's splits (its PathSet lists a subset of the ODs, each with the
    same candidate paths in the same order) into ``x``, the full PathSet's vector."""
    sub = stage.pathset
    for j, od in enumerate(sub.ods):
        i = pathset.od_index[od]
        x[pathset.offsets[i]:pathset.offsets[i + 1]] = stage.x[sub.offsets[j]:sub.offsets[j + 1]]
