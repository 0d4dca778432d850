"""Per-class traffic from meter counters: what each class offered and what its meters dropped.

Every telemetry poll a switch reports its meters' counters (bytes in, bytes dropped
by the band). ``MeterCounters`` turns two successive reports of one meter into
rates, sums the switches per class, and keeps byte totals that only grow: a meter
that is re-created (its counters start again from zero) adds what it counted since.
A switch that has not reported for ``stale_s`` no longer adds to the rates.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from controller.telemetry import MeterRate, MeterRates


# One class at the last meter poll: rates in Mbit/s, totals in bytes since start.
ClassRates = MeterRate


class MeterCounters:
    """Meter counters of many switches -> ``ClassRates`` per class (``MeterRates``
    grouped by class); ``class_of`` maps meter ids to class names, other meters are
    ignored; every class is reported from the start."""

    def __init__(self, class_of: Mapping[int, str], stale_s: float):
        self.class_of = dict(class_of)
        self._meters = MeterRates(stale_s)

    def update(self, dp_id: int, stats: Iterable, now: float) -> dict[str, ClassRates]:
        """Take one switch's ``OFPMeterStats``; return every class's rates."""
        self._meters.update(dp_id, stats, now, self.class_of.get)
        return self.rates(now)

    def busiest(self, now: float) -> dict[str, float]:
        """Per class, the most one switch's meter of it was offered (Mbit/s) at the last poll."""
        seen = self._meters.busiest(now)
        return {name: seen.get(name, 0.0) for name in self.class_of.values()}

    def rates(self, now: float) -> dict[str, ClassRates]:
        seen = self._meters.rates(now)
        return {name: seen.get(name, ClassRates()) for name in self.class_of.values()}
