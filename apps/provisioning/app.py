"""The provisioning app in the controller process: ``provider(view, resync)`` is its factory.

List ``apps.provisioning.app:provider`` in ``controller.providers`` (after the apps
whose knobs it changes: slices, stitching, qos). The factory opens the state file
(``provisioning.store_path``), the predictor's client and, when
``provisioning.rehearsal`` names one, the rehearsal; the controller shell starts it,
serves its gRPC API and closes it at shutdown.

Its loop (a thread, never the OpenFlow event loop): every ``interval_s`` real seconds
it sends the predictor the measured demand of the resources no other app reports
(``feed``: each link's rate as ``link:<src>-<dst>``, each QoS class's busiest meter
as ``qos:<class>``), asks the predictor for every resource's forecast (``horizons_s``, ``quantiles``)
and runs the engine's step (evaluate, then stage and deploy the top
recommendations); every ``anomaly_poll_s`` it asks ``GetAnomalies`` about the same
series and, when one is anomalous, runs the step at once (trigger ``anomaly
<series>``). Without a predictor (or when it fails) it recommends nothing and says
so: its basis is reactive.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apps.provisioning import SPEC
from apps.provisioning.changes import STATES
from apps.provisioning.config import ProvisioningConfig
from apps.provisioning.engine import Provisioner, Settings
from apps.provisioning.needs import points_from
from apps.provisioning.store import ProvisioningStore
from controller.appbase import App, CoreView
from controller.appkit import NO_PREDICTOR, Basis, predictor_client
from controller.desired import Desired, load_factory

LOG = logging.getLogger(__name__)


class ProvisioningApp(App):
    name = "provisioning"

    def __init__(
        self,
        view: CoreView,
        resync: Callable[[], None],
        settings: ProvisioningConfig,
        store: ProvisioningStore | None = None,
        predictor=None,
        rehearsal=None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(view, resync)
        self.settings = settings
        self.predictor = predictor
        self.wall = wall
        self.clock = view.config.controller.clock
        self.engine = Provisioner(
            view,
            resync,
            Settings(
                horizon_s=max(settings.horizons_s),
                threshold=settings.threshold or round(1 - settings.service_quantile, 9),
                service_quantile=settings.service_quantile,
                headroom=settings.headroom,
                urgency_s=settings.urgency_s,
                templates=dict(settings.templates),
                modes=dict(settings.modes),
                default_mode=settings.default_mode,
                confirm_timeout_s=settings.confirm_timeout_s,
                outcome_after_s=settings.outcome_after_s,
                isolate=settings.isolate,
                link_needs=settings.link_needs,
                link_timeout_s=settings.link_timeout_s,
            ),
            store=store,
            rehearsal=rehearsal,
            clock=self.now,
            sleep=sleep,
        )
        self.store = store
        self.basis_ = Basis(LOG, "provisioning", f"forecasts {max(settings.horizons_s):g} s ahead")
        if predictor is None:
            self.basis_.on_measurements(NO_PREDICTOR)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._trigger = "interval"
        self._thread: threading.Thread | None = None
        self._anomaly_since = 0.0
        self.steps = 0
        self.errors = 0

    def now(self) -> float:
        return self.clock.virtual(self.wall())

    # -- hooks
    def desired(self, dp_id: int, now: float) -> Desired:
        return self.engine.desired(dp_id)

    def basis(self):
        return self.basis_.mode

    def grpc_services(self) -> list:
        from apps.provisioning.api import services

        return services(self)

    def start(self) -> None:
        recovered = self.engine.recover()
        if recovered:
            LOG.warning(
                "provisioning: recovered %d interrupted change(s): %s", len(recovered), ", ".join(recovered)
            )
        if self.settings.auto or self.predictor is not None:
            self._thread = threading.Thread(target=self._loop, name="provisioning", daemon=True)
            self._thread.start()

    def stopping(self) -> None:
        self._stop.set()
        self._kick.set()

    def close(self) -> None:
        self.stopping()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.engine.rehearsal is not None:
            self.engine.rehearsal.close()
        if self.store is not None:
            self.store.close()

    # -- the loop
    def evaluate(self, trigger: str = "request") -> list:
        """Ask the predictor and run one engine step (``auto``) or only re-rank (not auto)."""
        forecasts = self.forecasts()
        now = self.now()
        if self.settings.auto:
            self.engine.step(now, forecasts, trigger, limit=self.settings.per_step)
        else:
            self.engine.observe()
            self.engine.judge(now)
            self.engine.evaluate(now, forecasts, trigger)
        self.steps += 1
        return self.engine.ranked()

    def feed(self) -> int:
        """Send the measured demand of the resources no other app reports (``feed``: links,
        QoS classes) to the predictor, stamped with the app clock; returns how many."""
        kinds = set(self.settings.feed)
        if self.predictor is None or not kinds:
            return 0
        measured = self.engine.measured()
        now = self.now()
        samples = [
            (r.series_id, now, measured[r.key])
            for r in self.engine.resources()
            if r.kind in kinds and r.key in measured
        ]
        if samples:
            try:
                self.predictor.ingest(samples, labels={"kind": "provisioning"})
            except Exception as err:  # noqa: BLE001 - a lost sample: the forecast ages, the loop goes on
                self.basis_.on_measurements(f"predictor refused samples: {type(err).__name__}: {err}")
                return 0
        return len(samples)

    def forecasts(self) -> dict:
        self.feed()
        series = sorted({r.series_id for r in self.engine.resources()})
        if self.predictor is None or not series:
            return {}
        try:
            forecasts = self._per_series(
                lambda ids: self.predictor.forecast(
                    ids, self.settings.horizons_s, self.settings.quantiles
                ).forecasts,
                series,
            )
        except Exception as err:  # noqa: BLE001 - the predictor down: recommend nothing, say so
            self.basis_.on_measurements(f"predictor failed: {type(err).__name__}: {err}")
            return {}
        self.basis_.on_forecasts()
        return {s: points_from(forecasts, s) for s in series}

    def _per_series(self, ask, series: list[str]) -> list:
        """``ask(series)``; when the predictor does not know some of them yet (a new slice
        it has no sample of), ask for each alone and leave the unknown ones out."""
        import grpc

        try:
            return list(ask(series))
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        out = []
        for one in series:
            try:
                out += list(ask([one]))
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                LOG.debug("provisioning: no forecast for %s yet: %s", one, err.details())
        return out

    def _anomalous(self) -> str:
        series = sorted({r.series_id for r in self.engine.resources()})
        if self.predictor is None or not series:
            return ""
        try:
            found = self._per_series(
                lambda ids: self.predictor.anomalies(ids, since_s=self._anomaly_since, min_score=1.0).scores,
                series,
            )
        except Exception as err:  # noqa: BLE001 - anomalies are a hint; the interval still runs
            LOG.debug("provisioning: GetAnomalies failed: %s", err)
            return ""
        hits = [a for a in found if a.anomalous]
        if hits:
            self._anomaly_since = max(a.timestamp_s for a in hits) + 1e-3
            return hits[0].series_id
        return ""

    def _loop(self) -> None:
        next_eval = 0.0
        next_poll = 0.0
        while not self._stop.is_set():
            t = time.monotonic()
            trigger = ""
            if t >= next_eval:
                trigger = "interval"
            elif t >= next_poll:
                next_poll = t + self.settings.anomaly_poll_s
                series = self._anomalous()
                if series:
                    trigger = f"anomaly {series}"
            if trigger:
                try:
                    self.evaluate(trigger)
                except Exception:  # noqa: BLE001 - one failed step must not end the loop
                    self.errors += 1
                    LOG.exception("provisioning: step failed")
                next_eval = time.monotonic() + self.settings.interval_s
            wait = max(0.05, min(next_eval, next_poll) - time.monotonic())
            self._kick.wait(wait)
            self._kick.clear()

    # -- metrics
    def metric_families(self) -> list:
        states = GaugeMetricFamily("foresight_provisioning_changes", "Changes by state", labels=["state"])
        counts = {s: 0 for s in STATES}
        for c in self.engine.list(limit=10**9):
            counts[c.state] += 1
        for s, n in counts.items():
            states.add_metric([s], n)
        recs = GaugeMetricFamily("foresight_provisioning_recommendations", "Recommendations in the queue")
        recs.add_metric([], len(self.engine.recommendations))
        steps = CounterMetricFamily("foresight_provisioning_steps", "Evaluations run", labels=["result"])
        steps.add_metric(["ok"], self.steps)
        steps.add_metric(["failed"], self.errors)
        return [states, recs, steps]


def provider(view: CoreView, resync: Callable[[], None]) -> ProvisioningApp:
    settings: ProvisioningConfig = view.section(SPEC.section)
    store = ProvisioningStore(settings.store_path) if settings.store_path else None
    rehearsal = None
    if settings.rehearsal:
        rehearsal = load_factory(settings.rehearsal)(view, dict(settings.rehearsal_options))
    app = ProvisioningApp(
        view, resync, settings, store, predictor_client(view.config.controller.predictor), rehearsal
    )
    LOG.info(
        "provisioning: every %g s, horizons %s s, P(exceed) >= %g raises a need; %d change(s) on "
        "record; rehearsal %s",
        settings.interval_s,
        ",".join(f"{h:g}" for h in settings.horizons_s),
        app.engine.settings.threshold,
        len(app.engine.changes),
        settings.rehearsal or "none (verification only)",
    )
    return app
