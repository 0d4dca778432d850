"""Per-class traffic from meter counters: what each class offered and what its meters dropped.

Every telemetry poll a switch reports its meters' counters (bytes in, bytes dropped
by the band). ``MeterCounters`` turns two successive reports of one meter into
rates, sums the switches per class, and keeps byte totals that only grow: a meter
that is re-created (its counters start again from zero) adds what it counted since.
A switch that has not reported for ``stale_s`` no longer adds to the rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from controller.telemetry import CounterDeltas


@dataclass(frozen=True)
class ClassRates:
    """One class at the last meter poll. Rates in Mbit/s, totals in bytes since start."""

    offered_mbps: float = 0.0
    dropped_mbps: float = 0.0
    offered_bytes: int = 0
    dropped_bytes: int = 0
    time: float = 0.0                   # of the last report that changed it (0: none yet)

    @property
    def delivered_mbps(self) -> float:
        return max(0.0, self.offered_mbps - self.dropped_mbps)


@dataclass(frozen=True)
class _Sample:
    time: float
    offered_mbps: float = 0.0
    dropped_mbps: float = 0.0


class MeterCounters:
    """Meter counters of many switches -> ``ClassRates`` per class.

    ``class_of`` maps meter ids to class names; other meters are ignored."""

    def __init__(self, class_of: Mapping[int, str], stale_s: float):
        self.class_of = dict(class_of)
        self.stale_s = stale_s
        self._deltas = CounterDeltas()
        self._last: dict[tuple[int, int], _Sample] = {}
        self._totals: dict[str, list[int]] = {name: [0, 0] for name in self.class_of.values()}

    def update(self, dp_id: int, stats: Iterable, now: float) -> dict[str, ClassRates]:
        """Take one switch's ``OFPMeterStats``; return every class's rates."""
        for stat in stats:
            name = self.class_of.get(stat.meter_id)
            if name is None:
                continue
            dropped = sum(band.byte_band_count for band in stat.band_stats)
            delta = self._deltas.read((dp_id, stat.meter_id), now, (stat.byte_in_count, dropped))
            self._last[(dp_id, stat.meter_id)] = _Sample(now, delta.mbps(0) or 0.0, delta.mbps(1) or 0.0)
            totals = self._totals[name]
            totals[0] += delta.grown[0]
            totals[1] += delta.grown[1]
        return self.rates(now)

    def rates(self, now: float) -> dict[str, ClassRates]:
        sums = {name: [0.0, 0.0, 0.0] for name in self._totals}
        for (_, meter_id), sample in self._last.items():
            if now - sample.time > self.stale_s:
                continue
            acc = sums[self.class_of[meter_id]]
            acc[0] += sample.offered_mbps
            acc[1] += sample.dropped_mbps
            acc[2] = max(acc[2], sample.time)
        return {name: ClassRates(acc[0], acc[1], *self._totals[name], acc[2]) for name, acc in sums.items()}
