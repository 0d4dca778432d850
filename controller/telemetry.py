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
