"""The QoS app in the controller process: ``provider(core, resync)`` is its factory.

List ``apps.qos.app:provider`` in ``controller.providers`` and the classes under
``qos.classes``. The classes come from the config at start-up; a metered class's rate is a knob
(``controller.appbase.Knob``, kind ``meter``) another app may change at run time,
which resyncs. Otherwise what a switch holds changes only with its host ports, and
the core resyncs on those itself.

``QosProvider`` is a ``controller.appbase.App``: ``desired`` puts the class rules
on each switch's host ports (``dataplane``), ``meter_stats`` turns the class meters'
counters into per-class offered and dropped rates (``rates``), which
``metric_families`` exposes as ``foresight_qos_*`` and which are logged when a class
starts or stops dropping and, while any class carries traffic, once a minute.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apps.qos import SPEC, dataplane
from apps.qos.config import QosConfig
from apps.qos.dataplane import QosClass
from apps.qos.rates import ClassRates, MeterCounters
from controller.appbase import App, CoreView, Knob, KnobError
from controller.desired import Desired

LOG = logging.getLogger(__name__)

SUMMARY_EVERY_S = 60.0
STALE_POLLS = 3                 # a switch silent for this many polls stops adding to the rates
KNOB_MIN_MBPS, KNOB_MAX_MBPS = 0.001, 100_000.0   # a class rate knob's range
MAX_CACHED = 1024               # distinct host-port sets whose entries are kept
SERIES_PREFIX = "qos:"          # the predictor series of a class's demand: qos:<class>


def series_id(class_name: str) -> str:
    return SERIES_PREFIX + class_name


class QosProvider(App):
    """QoS classes on every switch's host ports, and their counters."""

    name = SPEC.name

    def __init__(self, view: CoreView, resync: Callable[[], None] = lambda: None):
        super().__init__(view, resync)
        settings: QosConfig = view.section(SPEC.section)
        poll_interval_s = view.config.controller.telemetry.poll_interval_s
        self.classes: tuple[QosClass, ...] = dataplane.classes_from(settings)
        self.burst_s = settings.burst_s
        # Entries depend only on the host ports (the classes are fixed), so switches
        # with the same ports share them and an unchanged switch costs a lookup.
        self._built: dict[frozenset[int], Desired] = {}
        self._counters = MeterCounters({c.meter_id: c.name for c in self.classes},
                                       stale_s=STALE_POLLS * poll_interval_s)
        self._rates: dict[str, ClassRates] = {c.name: ClassRates() for c in self.classes}
        self._busiest: dict[str, float] = {}
        self._dropping: set[str] = set()
        self._next_summary = 0.0

    # --- controller.appbase.App ---------------------------------------------------------

    def desired(self, dp_id: int, now: float) -> Desired:
        ports = frozenset(self.view.edge_ports(dp_id, now))
        built = self._built.get(ports)
        if built is None:
            if len(self._built) >= MAX_CACHED:
                self._built.clear()
            built = self._built[ports] = dataplane.switch_entries(self.classes, ports, self.burst_s)
        return built

    def meter_stats(self, dp_id: int, stats: list, now: float) -> None:
        """Class meter counters from one switch (``OFPMeterStats``) -> per-class rates."""
        self._rates = self._counters.update(dp_id, stats, now)     # replaced whole: scrapes read it unlocked
        self._busiest = self._counters.busiest(now)
        self._log(now)

    # --- knobs (controller.appbase.Knob): each metered class's rate --------------------------
    def knobs(self) -> list[Knob]:
        """A metered class's rate applies per ingress switch, so its demand (``measured_mbps``,
        series ``qos:<class>``) is what its busiest switch offered; the provisioning app
        sends that series to the predictor."""
        busiest = self._busiest
        switches = tuple(self.view.switch_ids())
        return [Knob("meter", c.name, "rate_mbps", c.rate_mbps, low=KNOB_MIN_MBPS, high=KNOB_MAX_MBPS,
                     series_id=series_id(c.name), measured_mbps=busiest.get(c.name, 0.0), switches=switches)
                for c in self.classes if c.rate_mbps]

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        """A metered class's rate, for this process's life: ``qos.classes`` stays what the
        config says (a restarted controller starts from it; the provisioning app puts its
        deployed changes back)."""
        cls = next((c for c in self.classes if c.name == target and c.rate_mbps), None)
        if (kind, field) != ("meter", "rate_mbps") or cls is None:
            return super().set_knob(kind, target, field, value)
        if not KNOB_MIN_MBPS <= value <= KNOB_MAX_MBPS:
            raise KnobError(f"{kind}:{target}.{field}: {value:g} is outside "
                            f"{KNOB_MIN_MBPS:g}..{KNOB_MAX_MBPS:g}")
        self.classes = tuple(replace(c, rate_kbps=round(value * 1000)) if c is cls else c
                             for c in self.classes)
        self._built = {}
        LOG.info("qos: class %s rate %g -> %g Mbit/s", target, cls.rate_mbps, value)
        self.resync()
        return next(k for k in self.knobs() if k.target == target)

    def rates(self) -> dict[str, ClassRates]:
        """Per class (by name), at the last meter poll."""
        return dict(self._rates)

    def metric_families(self) -> list:
        """Prometheus families for the controller's /metrics (read at scrape time)."""
        rates = self._rates
        rate = GaugeMetricFamily("foresight_qos_rate_mbps", "QoS class traffic at its ingress meters, "
                                 "at the last meter poll", labels=["class", "measure"])
        volume = CounterMetricFamily("foresight_qos_bytes", "Bytes a QoS class offered at its ingress "
                                     "meters, and bytes they dropped", labels=["class", "measure"])
        limit = GaugeMetricFamily("foresight_qos_limit_mbps", "A QoS class's meter rate per ingress switch "
                                  "(0: unmetered)", labels=["class", "rank"])
        for cls in self.classes:
            r = rates.get(cls.name, ClassRates())
            for measure in ("offered", "delivered", "dropped"):
                rate.add_metric([cls.name, measure], getattr(r, f"{measure}_mbps"))
            volume.add_metric([cls.name, "offered"], r.offered_bytes)
            volume.add_metric([cls.name, "dropped"], r.dropped_bytes)
            limit.add_metric([cls.name, str(cls.rank)], cls.rate_mbps or 0.0)
        return [rate, volume, limit]

    # --- internals ----------------------------------------------------------------------

    def _log(self, now: float) -> None:
        for cls in self.classes:
            r = self._rates[cls.name]
            if r.dropped_mbps > 0 and cls.name not in self._dropping:
                self._dropping.add(cls.name)
                LOG.info("qos: class %s (rank %d) over its %g Mbit/s: offered %.2f, dropped %.2f Mbit/s",
                         cls.name, cls.rank, cls.rate_mbps or 0.0, r.offered_mbps, r.dropped_mbps)
            elif r.dropped_mbps == 0 and cls.name in self._dropping:
                self._dropping.discard(cls.name)
                LOG.info("qos: class %s no longer dropping (offered %.2f Mbit/s)", cls.name, r.offered_mbps)
        if now >= self._next_summary and any(r.offered_mbps for r in self._rates.values()):
            self._next_summary = now + SUMMARY_EVERY_S
            LOG.info("qos: %s", "; ".join(
                f"{c.name} offered {self._rates[c.name].offered_mbps:.2f} dropped "
                f"{self._rates[c.name].dropped_mbps:.2f} Mbit/s" for c in self.classes))


def provider(view: CoreView, resync: Callable[[], None]) -> QosProvider:
    app = QosProvider(view, resync)
    if not app.classes:
        LOG.warning("qos: provider listed but qos.classes is empty: nothing to enforce")
    for cls in app.classes:
        LOG.info("qos: class %s rank %d priority %d dscp %s%s, %s", cls.name, cls.rank, cls.priority,
                 ",".join(map(str, cls.dscp)) or "-", " (default)" if cls.default else "",
                 f"metered at {cls.rate_mbps:g} Mbit/s per ingress switch" if cls.rate_mbps else "unmetered")
    return app
