"""A stitch's demand and what it decides: which stitches are idle, which predicted
stitches to open.

Demand is what enters a stitch's tunnels at both ends (the manager's meter rates).
With a predictor, the measured demand goes to it as series ``stitch:<id>`` and the
forecast ``horizon_s`` ahead at ``quantile`` is what counts; without one, or while it
does not answer, the measurement (``basis`` says which, and logs each change). A
stitch is idle once its demand has stayed below ``idle_mbps`` for ``idle_after_s``.
``stitching.predicted`` pairs are opened when the forecast of series
``vnpair:<tenant>:<a>-<b>`` reaches their ``open_mbps``. The manager acts on what
this returns (deletes, creates); nothing here changes a stitch.
"""

from __future__ import annotations

import logging
from typing import Callable

import grpc

from apps.stitching.config import PredictedStitchConfig, StitchingConfig
from controller.appkit import NO_PREDICTOR, Basis
from predictors.client import quantile_value

LOG = logging.getLogger(__name__)


def pair_series(want: PredictedStitchConfig) -> str:
    return f"vnpair:{want.tenant}:{want.between[0]}-{want.between[1]}"


class StitchDemand:
    def __init__(self, settings: StitchingConfig):
        self.settings = settings
        self.predictor = None               # a PredictorClient, or None (reactive)
        self.basis = Basis(LOG, "stitching idle checks",
                           f"forecasts {settings.horizon_s:g} s ahead at q{settings.quantile:g}")
        self._idle_since: dict[str, float] = {}

    @property
    def described(self) -> str:
        """What the demand in an idle decision was: "measured" or "forecast (q.., .. s ahead)"."""
        s = self.settings
        return f"forecast (q{s.quantile:g}, {s.horizon_s:g} s ahead)" if self.basis.predictive else "measured"

    def ask(self, series_ids) -> dict[str, float]:
        """The forecasts ``horizon_s`` ahead at ``quantile`` of these series (grpc.RpcError
        if the predictor cannot answer)."""
        s = self.settings
        response = self.predictor.forecast(list(series_ids), [s.horizon_s], [s.quantile])
        return {fc.series_id: max(0.0, quantile_value(fc, s.quantile)) for fc in response.forecasts}

    def demand(self, measured: dict[str, float], now: float) -> dict[str, float]:
        """Each stitch's demand: its forecast where the predictor gives one, else what
        was measured (which is sent to the predictor first)."""
        out = dict(measured)
        if self.predictor is None:
            self.basis.on_measurements(NO_PREDICTOR)
            return out
        if not measured:
            return out
        ids = {f"stitch:{i}": i for i in measured}
        try:
            self.predictor.ingest([(sid, now, measured[i]) for sid, i in ids.items()],
                                  labels={"kind": "stitch"})
            forecasts = self.ask(ids)
        except grpc.RpcError as err:
            self.basis.on_measurements(f"predictor unreachable ({err.code().name})")
            return out
        self.basis.on_forecasts()
        out.update({ids[sid]: value for sid, value in forecasts.items() if sid in ids})
        return out

    def idle(self, demand: dict[str, float], now: float) -> list[tuple[str, float, float]]:
        """(stitch id, demand, seconds idle) of the stitches idle long enough; each is
        forgotten here, so it is reported once."""
        s = self.settings
        out = []
        for stitch_id, mbps in sorted(demand.items()):
            if mbps >= s.idle_mbps:
                self._idle_since.pop(stitch_id, None)
                continue
            since = self._idle_since.setdefault(stitch_id, now)
            if now - since >= s.idle_after_s:
                self._idle_since.pop(stitch_id, None)
                out.append((stitch_id, mbps, now - since))
        return out

    def to_open(self, joined: Callable[[str, int, int], bool]) -> list[tuple[PredictedStitchConfig, float]]:
        """The predicted pairs whose forecast reaches ``open_mbps`` and that no stitch
        joins yet (``joined(tenant, a_vnid, b_vnid)``), with the forecast."""
        s = self.settings
        if self.predictor is None or not s.predicted:
            return []
        series = {pair_series(p): p for p in s.predicted}
        try:
            forecasts = self.ask(series)
        except grpc.RpcError as err:
            LOG.warning("stitching: no forecasts for predicted stitches (%s)", err.code().name)
            return []
        out = []
        for series_id, value in sorted(forecasts.items()):
            want = series.get(series_id)
            if want is not None and value >= want.open_mbps and not joined(want.tenant, *want.between):
                out.append((want, value))
        return out
