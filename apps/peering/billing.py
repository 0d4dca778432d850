"""95th-percentile ("burstable") billing of an exit: what a rate path costs.

A transit provider (and an on-demand peering port) samples the rate of the port every
``SAMPLE_S`` (5 minutes) and bills the 95th percentile of the samples of the billing
window, times a price per Mbit/s.

The definition used here, the common one in transit contracts: sort the window's
samples, drop the top 5 % of them, rounded down (``n // 20`` samples), and bill the
largest sample left. With 20 samples the single largest is dropped and the second
largest billed; with 40 the two largest are dropped; with fewer than 20 nothing is
dropped (the maximum is billed). Equivalently the sample at 1-based rank
``ceil(0.95 * n)`` in ascending order. An empty window bills 0. (Direction is the
caller's choice: providers bill the larger of the inbound and outbound p95; pass
the samples of the direction that is larger.)

``expected_p95`` answers "what will the window bill if the forecast path happens":
the history so far with the forecast samples appended (in a rolling window of
``window_samples``, the oldest samples drop out). ``transit_saving`` prices moving
some Mbit/s off the exit during the forecast: the p95 before and after, and the
price difference per billing window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

SAMPLE_S = 300.0                         # one billing sample: 5 minutes
BILLING_WINDOW_S = 30 * 86400.0          # a 30-day month
DROP_ONE_IN = 20                         # the top 5 % of the samples are not billed


def p95(samples_mbps: Sequence[float]) -> float:
    """The billed 95th percentile of ``samples_mbps`` (any order): sorted, the top
    ``n // 20`` samples dropped, the largest remaining one."""
    values = _checked(samples_mbps, "samples_mbps")
    if not values:
        return 0.0
    values.sort()
    return values[len(values) - len(values) // DROP_ONE_IN - 1]


def expected_p95(history_mbps: Sequence[float], forecast_mbps: Sequence[float],
                 window_samples: int | None = None) -> float:
    """The window's p95 if the forecast path (one value per future 5-minute sample)
    is appended to the history; with ``window_samples`` only the last that many
    samples of the combined path are billed (a rolling window)."""
    path = _checked(history_mbps, "history_mbps") + _checked(forecast_mbps, "forecast_mbps")
    if window_samples is not None:
        if window_samples < 1:
            raise ValueError(f"window_samples must be >= 1, got {window_samples!r}")
        path = path[-window_samples:]
    return p95(path)


@dataclass(frozen=True)
class TransitSaving:
    p95_before_mbps: float        # the window's p95 with the forecast as it is
    p95_after_mbps: float         # ... with the moved Mbit/s taken off the forecast samples
    cost_before: float            # p95 times the price, per billing window
    cost_after: float

    @property
    def saved_mbps(self) -> float:
        return self.p95_before_mbps - self.p95_after_mbps

    @property
    def saved_cost(self) -> float:
        return self.cost_before - self.cost_after


def transit_saving(history_mbps: Sequence[float], forecast_mbps: Sequence[float],
                   moved_mbps: float | Sequence[float], cost_per_mbps: float,
                   window_samples: int | None = None) -> TransitSaving:
    """What moving ``moved_mbps`` off the exit during the forecast saves: a constant
    (every forecast sample) or one value per forecast sample. A sample cannot go
    below 0. Past samples are billed as they were."""
    forecast = _checked(forecast_mbps, "forecast_mbps")
    if isinstance(moved_mbps, (int, float)):
        moved = [float(moved_mbps)] * len(forecast)
    else:
        moved = _checked(moved_mbps, "moved_mbps")
        if len(moved) != len(forecast):
            raise ValueError(f"moved_mbps has {len(moved)} values, forecast_mbps {len(forecast)}; "
                             "give one per forecast sample or a single number")
    _checked(moved, "moved_mbps")
    if not (math.isfinite(cost_per_mbps) and cost_per_mbps >= 0):
        raise ValueError(f"cost_per_mbps must be finite and >= 0, got {cost_per_mbps!r}")
    after = [max(0.0, f - m) for f, m in zip(forecast, moved)]
    before_p95 = expected_p95(history_mbps, forecast, window_samples)
    after_p95 = expected_p95(history_mbps, after, window_samples)
    return TransitSaving(before_p95, after_p95, before_p95 * cost_per_mbps, after_p95 * cost_per_mbps)


def hourly_price(cost_per_mbps: float, billing_window_s: float = BILLING_WINDOW_S) -> float:
    """A per-window price per Mbit/s of p95 spread over the window's hours: what one
    Mbit/s carried through the busy samples costs per hour."""
    return cost_per_mbps * 3600.0 / billing_window_s


def _checked(values: Sequence[float], name: str) -> list[float]:
    out = []
    for i, value in enumerate(values):
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}[{i}] is {value!r}; rates must be finite and >= 0")
        out.append(v)
    return out
