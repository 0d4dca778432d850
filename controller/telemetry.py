"""Port counters to rates: bytes sampled every poll interval become Mbit/s.

Counter resets (a switch reconnecting, a port re-created) give a negative delta;
that sample is dropped rather than reported as a huge or negative rate.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        self._last: dict[tuple[int, int], PortSample] = {}

    def update(self, dp_id: int, samples: dict[int, PortSample]) -> dict[int, tuple[float, float]]:
        """Return {port_no: (tx_mbps, rx_mbps)} for ports with a previous sample."""
        rates = {}
        for port_no, sample in samples.items():
            prev = self._last.get((dp_id, port_no))
            self._last[(dp_id, port_no)] = sample
            if prev is None:
                continue
            dt = sample.time - prev.time
            dtx, drx = sample.tx_bytes - prev.tx_bytes, sample.rx_bytes - prev.rx_bytes
            if dt <= 0 or dtx < 0 or drx < 0:
                continue
            rates[port_no] = (dtx * 8 / dt / 1e6, drx * 8 / dt / 1e6)
        return rates

    def forget(self, dp_id: int) -> None:
        for key in [k for k in self._last if k[0] == dp_id]:
            del self._last[key]
