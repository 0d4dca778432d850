"""Counters to rates: byte (or packet) counters read every poll become what they
counted since the reading before, and Mbit/s.

``CounterDeltas`` is the one place that reads counters: port, meter and group
counters all go through it. A reading below the one before (a switch reconnecting, a
port, meter or group re-created) means the counter started again from zero: all of
it is new, and no rate comes of it rather than a huge or negative one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable


@dataclass(frozen=True)
class Delta:
    """What some counters grew since their last reading."""

    grown: tuple[int, ...]          # counted since then (since zero, after a reset or at first)
    seconds: float | None           # since then; None at the first reading or after a reset

    def mbps(self, i: int = 0) -> float | None:
        """Counter ``i`` (bytes) as Mbit/s over the interval; None without one."""
        return None if self.seconds is None else self.grown[i] * 8 / self.seconds / 1e6


class CounterDeltas:
    """The last reading of each key's counters (e.g. ``(dp_id, meter_id)``)."""

    def __init__(self):
        self._last: dict[Hashable, tuple[float, tuple[int, ...]]] = {}

    def read(self, key: Hashable, now: float, values: tuple[int, ...]) -> Delta:
        last = self._last.get(key)
        self._last[key] = (now, values)
        if last is None or any(v < lv for v, lv in zip(values, last[1])):
            return Delta(values, None)
        grown = tuple(v - lv for v, lv in zip(values, last[1]))
        return Delta(grown, now - last[0] if now > last[0] else None)

    def forget(self, which: Callable[[Hashable], bool]) -> None:
        for key in [k for k in self._last if which(k)]:
            del self._last[key]


@dataclass(frozen=True)
class PortSample:
    time: float
    tx_bytes: int
    rx_bytes: int
    tx_packets: int = 0
    rx_packets: int = 0
    tx_dropped: int = 0
    rx_dropped: int = 0


class PortRates:
    def __init__(self):
        self._deltas = CounterDeltas()

    def update(self, dp_id: int, samples: dict[int, PortSample]) -> dict[int, tuple[float, float]]:
        """Return {port_no: (tx_mbps, rx_mbps)} for ports with a previous sample."""
        rates = {}
        for port_no, sample in samples.items():
            delta = self._deltas.read((dp_id, port_no), sample.time, (sample.tx_bytes, sample.rx_bytes))
            if delta.seconds is not None:
                rates[port_no] = (delta.mbps(0), delta.mbps(1))
        return rates

    def forget(self, dp_id: int) -> None:
        self._deltas.forget(lambda key: key[0] == dp_id)


@dataclass(frozen=True)
class MeterRate:
    """What a group of meters (a QoS class, a slice's direction, a stitch end) saw:
    rates in Mbit/s summed over the switches' last fresh readings, byte totals since
    start that only grow (a re-created meter adds what it counts anew)."""

    offered_mbps: float = 0.0
    dropped_mbps: float = 0.0
    offered_bytes: int = 0
    dropped_bytes: int = 0
    time: float = 0.0               # of the newest reading in it (0: none yet)
    measured: bool = False          # some reading in it has a rate (not just a first reading)

    @property
    def delivered_mbps(self) -> float:
        return max(0.0, self.offered_mbps - self.dropped_mbps)


@dataclass(frozen=True)
class _MeterSample:
    time: float
    offered_mbps: float
    dropped_mbps: float
    measured: bool


class MeterRates:
    """Every app's meter counters (``OFPMeterStats``: bytes in, bytes its band dropped)
    turned into offered and dropped rates per group of meters. ``update`` takes one
    switch's report and ``group_of(meter_id)`` (None: not ours); a switch that has not
    reported a meter for ``stale_s`` no longer adds to the rates."""

    def __init__(self, stale_s: float = float("inf")):
        self.stale_s = stale_s
        self._deltas = CounterDeltas()
        self._last: dict[tuple[int, int], tuple[Hashable, _MeterSample]] = {}
        self._totals: dict[Hashable, list[int]] = {}

    def update(self, dp_id: int, stats, now: float, group_of: Callable[[int], Hashable | None]) -> None:
        for stat in stats:
            group = group_of(stat.meter_id)
            if group is None:
                continue
            dropped = sum(band.byte_band_count for band in stat.band_stats)
            key = (dp_id, stat.meter_id)
            delta = self._deltas.read(key, now, (stat.byte_in_count, dropped))
            # Open vSwitch starts a meter's counters again when the meter is modified (a
            # slice's new bandwidth): that reading gives no rate, and the rate before it
            # stands until the next one rather than reading as a drop to zero.
            if delta.seconds is not None or key not in self._last or self._last[key][0] != group:
                self._last[key] = (group, _MeterSample(
                    now, delta.mbps(0) or 0.0, delta.mbps(1) or 0.0, delta.seconds is not None))
            totals = self._totals.setdefault(group, [0, 0])
            totals[0] += delta.grown[0]
            totals[1] += delta.grown[1]

    def rates(self, now: float) -> dict[Hashable, MeterRate]:
        """Each group seen so far (a group whose readings went stale keeps its totals)."""
        sums: dict[Hashable, list] = {group: [0.0, 0.0, 0.0, False] for group in self._totals}
        for group, sample in self._last.values():
            if now - sample.time > self.stale_s or group not in sums:
                continue
            acc = sums[group]
            acc[0] += sample.offered_mbps
            acc[1] += sample.dropped_mbps
            acc[2] = max(acc[2], sample.time)
            acc[3] = acc[3] or sample.measured
        return {group: MeterRate(acc[0], acc[1], *self._totals[group], acc[2], acc[3])
                for group, acc in sums.items()}

    def busiest(self, now: float) -> dict[Hashable, float]:
        """Each group's busiest single meter (the most one switch's meter was offered, Mbit/s),
        from fresh readings: what a per-switch rate must cover."""
        out: dict[Hashable, float] = {}
        for group, sample in self._last.values():
            if now - sample.time <= self.stale_s:
                out[group] = max(out.get(group, 0.0), sample.offered_mbps)
        return out

    def forget(self, which: Callable[[Hashable], bool]) -> None:
        """Drop the groups ``which`` names (a deleted slice or stitch)."""
        for key in [k for k, (group, _) in self._last.items() if which(group)]:
            del self._last[key]
        for group in [g for g in self._totals if which(g)]:
            del self._totals[group]
