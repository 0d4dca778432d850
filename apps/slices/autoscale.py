"""Predictive scaling: every step, measured slice demand goes to the predictor and
the forecast at each slice's SLA quantile sizes the slice ahead of the demand.

One step (``Autoscaler.step``):

1. finish drains that are due;
2. measured demand per slice = the rate offered to its VIP meters at the last poll;
3. send it to the predictor as series ``slice:<name>`` (label kind=slice), stamped
   with the app clock (``controller.clock``: a lab replays 5-minute data faster);
4. ask for the forecast ``horizon_s`` ahead at the slice's SLA quantile;
5. ``ScalingPolicy.decide`` picks the member count (forecast or measured, whichever
   is higher; hysteresis on the way down; dissolve after quiet time) and the
   manager applies it. Every decision, including "hold", is logged and published
   with its forecast, measured load and lead time.

Steps run on the clock's grid, at ``real_origin_s + k * interval_s``, so that a lab
replaying one sample per interval always measures and ingests at the same point of
each sample. Before ``real_origin_s`` (a replay that has not begun) there are no steps.

When the predictor is unreachable or not configured, step 4 is skipped, decisions
use the measured load and say so ("no forecast: using measured load"), and the mode
(``predictive`` or ``reactive``) is logged when it changes.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import grpc

from apps.slices.manager import SliceManager, SliceView
from apps.slices.scaling import SERIES_PREFIX, Forecast, ScalingDecision, series_id
from controller.appkit import NO_PREDICTOR, Basis
from controller.config import ClockConfig
from predictors.client import quantile_value
from controller.stepper import GridStepper

LOG = logging.getLogger(__name__)

STALE_POLLS = 3            # measured rates older than this many intervals count as no traffic


class Autoscaler:
    def __init__(self, manager: SliceManager, predictor=None, horizon_s: float = 300.0,
                 clock: ClockConfig | None = None, interval_s: float = 10.0, ingest: bool = True,
                 wall: Callable[[], float] = time.time):
        self.manager = manager
        self.predictor = predictor          # a predictors.client.PredictorClient, or None
        self.horizon_s = horizon_s
        self.clock = clock or ClockConfig()
        self.interval_s = interval_s
        self.ingest = ingest
        self.wall = wall
        self._basis = Basis(LOG, "slices scaling", f"forecasts {horizon_s:g} s ahead")
        self.steps = 0
        self._steps = GridStepper("slices-autoscale", self.clock, interval_s, self.step, wall)

    # --- one step ---------------------------------------------------------------------

    def step(self, now: float | None = None) -> list[ScalingDecision]:
        now = self.wall() if now is None else now
        if now < self.clock.real_origin_s:
            return []           # the app clock has not started: nothing measured belongs to it
        vnow = self.clock.virtual(now)
        self.manager.finish_drains(now)
        views = self.manager.list()
        if not views:
            return []
        measured = {v.slice.name: self._measured(v, now) for v in views}
        forecasts = self._forecasts(views, measured, vnow)
        decisions = []
        for view in views:
            name = view.slice.name
            try:
                decisions.append(self.manager.decide(name, vnow, forecasts.get(name), measured[name]))
            except Exception:  # noqa: BLE001 - one slice's failure must not stop the others
                LOG.exception("slice %s: scaling step failed", name)
        self.steps += 1
        return decisions

    def _measured(self, view: SliceView, now: float) -> float:
        rates = view.rates
        if rates.time <= 0 or now - rates.time > STALE_POLLS * max(self.interval_s, 1.0):
            return 0.0
        return rates.offered_in_mbps

    def _forecasts(self, views: list[SliceView], measured: dict[str, float], vnow: float
                   ) -> dict[str, Forecast]:
        if self.predictor is None:
            self._basis.on_measurements(NO_PREDICTOR)
            return {}
        names = [v.slice.name for v in views]
        try:
            if self.ingest:
                self.predictor.ingest([(series_id(n), vnow, measured[n]) for n in names],
                                      labels={"kind": "slice"})
            quantiles = sorted({v.slice.sla_quantile for v in views})
            response = self.predictor.forecast([series_id(n) for n in names], [self.horizon_s], quantiles)
        except grpc.RpcError as err:
            self._basis.on_measurements(f"predictor unreachable or refused: "
                                        f"{err.code().name}: {err.details()}")
            return {}
        self._basis.on_forecasts()
        quantile_of = {series_id(v.slice.name): v.slice.sla_quantile for v in views}
        out = {}
        for fc in response.forecasts:
            q = quantile_of.get(fc.series_id)
            value = quantile_value(fc, q)
            out[fc.series_id[len(SERIES_PREFIX):]] = Forecast(max(0.0, value), fc.horizon_s)
            if fc.degraded:
                LOG.debug("%s: degraded forecast (%s)", fc.series_id, fc.degraded_reason)
        return out

    @property
    def mode(self) -> str:
        """"predictive" while scaling on forecasts, else "reactive"."""
        return self._basis.mode

    @property
    def last_error(self) -> str:
        """Why scaling last fell back to measurements."""
        return self._basis.why

    # --- the background loop ------------------------------------------------------------

    def start(self) -> None:
        self._steps.start()

    def next_step_at(self, now: float) -> float:
        return self._steps.next_step_at(now)

    def stop(self) -> None:
        self._steps.stop(timeout_s=10.0)
