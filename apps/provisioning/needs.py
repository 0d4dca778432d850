"""Needs: which resource runs out of capacity within the horizon, when, and how likely.

A *resource* is anything with a capacity that demand can exceed: a link, a slice's
bandwidth, a stitch's reservation, a meter's rate. The predictor forecasts its demand
(one series per resource) at several horizons, each with quantiles. From those this
module computes, per horizon,

- ``p_exceed``: the probability that demand exceeds the capacity. The forecast's
  quantiles are points of the demand's distribution function (value ``v_q`` at level
  ``q``); between them the distribution function is taken as linear, so
  ``P(D > c) = 1 - F(c)`` with ``F`` interpolated. Beyond the outermost quantiles the
  tails are extended linearly at the slope of the nearest pair, down to 0 and up to
  1 (a forecast with quantiles 0.1..0.9 says nothing about the last 10 % on each
  side; the linear tail is the least committal guess that keeps ``F`` monotone);
- ``unmet_mbps``: the expected demand above capacity, ``E[max(0, D - c)]``, the
  integral of the quantile function above ``c`` over the levels (the same linear
  interpolation and tails), in Mbit/s;
- ``need_mbps``: the capacity that would cover the demand at the configured service
  quantile (e.g. q0.95) over the whole horizon: what a template is asked to provide.

A *need* is raised when, at some horizon within reach, ``p_exceed`` reaches the
threshold; its ``deadline_s`` is the earliest such horizon (time to impact; the
forecast is taken as linear between horizons, so the crossing is interpolated), its
``confidence`` the largest ``p_exceed`` up to the horizon, its weight the expected
unmet demand at the worst horizon. Everything here is pure: forecasts and capacities
in, needs out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

KINDS = ("link", "slice", "stitch", "meter")


class NeedsError(ValueError):
    """A forecast or resource that cannot be read; the message names the series or field."""


@dataclass(frozen=True)
class Resource:
    """What can run out: ``kind`` (link, slice, stitch, meter), its ``name`` (the target a
    template changes: a slice's or stitch's name, ``a-b`` for a link), its current
    ``capacity_mbps``, the predictor series of its demand, and the switches it lives on."""

    kind: str
    name: str
    capacity_mbps: float
    series_id: str
    switches: tuple[str, ...] = ()
    limit_mbps: float | None = None  # the most it can be given (a pool's, a port's)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise NeedsError(f"resource {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not (self.capacity_mbps > 0 and math.isfinite(self.capacity_mbps)):
            raise NeedsError(
                f"resource {self.kind}:{self.name}: capacity_mbps must be > 0, got {self.capacity_mbps}"
            )

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Point:
    """One horizon of a resource's forecast: demand quantiles at ``horizon_s`` ahead."""

    horizon_s: float
    mean: float
    quantiles: tuple[tuple[float, float], ...]  # (level, Mbit/s), levels ascending
    model: str = ""


@dataclass(frozen=True)
class Horizon:
    """What one horizon of the forecast says against the capacity."""

    horizon_s: float
    mean_mbps: float
    p_exceed: float
    unmet_mbps: float
    upper_mbps: float  # demand at the service quantile


@dataclass(frozen=True)
class Need:
    """A resource expected to exceed its capacity within reach."""

    resource: Resource
    time: float  # when it was computed (app clock, seconds)
    deadline_s: float  # time to impact from ``time``
    confidence: float  # probability the capacity is exceeded by then
    unmet_mbps: float  # expected demand above capacity at the worst horizon
    need_mbps: float  # capacity covering the service quantile over the horizon
    horizons: tuple[Horizon, ...] = field(default_factory=tuple)
    model: str = ""

    @property
    def crossing(self) -> float:
        """When (app clock) the forecast says the capacity is crossed."""
        return self.time + self.deadline_s

    def reason(self) -> str:
        r = self.resource
        worst = max(self.horizons, key=lambda h: h.p_exceed)
        return (
            f"{r.kind} {r.name}: forecast {worst.upper_mbps:.2f} Mbit/s (service quantile) at "
            f"+{worst.horizon_s:g} s against capacity {r.capacity_mbps:g} Mbit/s; P(exceed) "
            f"{self.confidence:.0%} within {self.deadline_s:.0f} s, expected unmet "
            f"{self.unmet_mbps:.2f} Mbit/s{f' ({self.model})' if self.model else ''}"
        )


def _levels(point: Point, series: str) -> tuple[list[float], list[float]]:
    qs = sorted(point.quantiles)
    if len(qs) < 2:
        raise NeedsError(
            f"series {series!r} +{point.horizon_s:g} s: needs at least two quantiles, got {len(qs)}"
        )
    levels = [q for q, _ in qs]
    values = [v for _, v in qs]
    if any(not 0 < q < 1 for q in levels) or len(set(levels)) != len(levels):
        raise NeedsError(f"series {series!r}: quantile levels must be distinct and in (0, 1), got {levels}")
    if any(not math.isfinite(v) for v in values):
        raise NeedsError(f"series {series!r} +{point.horizon_s:g} s: quantile values must be finite")
    # Quantile crossing (models fit each level separately) is repaired by sorting, as
    # the predictor's calibration does: the distribution function must be monotone.
    values.sort()
    return levels, values


def _quantile_function(levels: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """The quantile function's knots from level 0 to 1, tails extended linearly."""
    lo_slope = (values[1] - values[0]) / (levels[1] - levels[0])
    hi_slope = (values[-1] - values[-2]) / (levels[-1] - levels[-2])
    u = [0.0] + levels + [1.0]
    v = [max(0.0, values[0] - lo_slope * levels[0])] + values + [values[-1] + hi_slope * (1 - levels[-1])]
    return u, v


def p_exceed(point: Point, capacity: float, series: str = "") -> float:
    """P(demand > capacity) from the forecast's quantiles (module docstring)."""
    u, v = _quantile_function(*_levels(point, series))
    if capacity < v[0]:
        return 1.0
    if capacity >= v[-1]:
        return 0.0
    for i in range(len(u) - 1):
        if v[i] <= capacity < v[i + 1] or (v[i] == v[i + 1] == capacity):
            span = v[i + 1] - v[i]
            f = u[i] if span <= 0 else u[i] + (u[i + 1] - u[i]) * (capacity - v[i]) / span
            return max(0.0, min(1.0, 1.0 - f))
    return 0.0


def expected_unmet(point: Point, capacity: float, series: str = "") -> float:
    """E[max(0, demand - capacity)] in Mbit/s: the quantile function above ``capacity``
    integrated over the levels (exact for the piecewise-linear function)."""
    u, v = _quantile_function(*_levels(point, series))
    total = 0.0
    for i in range(len(u) - 1):
        a, b = v[i] - capacity, v[i + 1] - capacity
        du = u[i + 1] - u[i]
        if a >= 0 and b >= 0:
            total += du * (a + b) / 2
        elif a < 0 < b or b < 0 < a:
            frac = max(a, b) / (abs(a) + abs(b))  # the part of the segment above 0
            total += du * frac * max(a, b) / 2
    return total


def value_at(point: Point, level: float, series: str = "") -> float:
    """The forecast's demand at quantile ``level`` (interpolated; tails as above)."""
    u, v = _quantile_function(*_levels(point, series))
    for i in range(len(u) - 1):
        if u[i] <= level <= u[i + 1]:
            return v[i] + (v[i + 1] - v[i]) * (level - u[i]) / (u[i + 1] - u[i])
    return v[-1]


def assess(
    resource: Resource,
    points: Sequence[Point],
    now: float,
    *,
    threshold: float,
    service_quantile: float,
    horizon_s: float,
) -> Need | None:
    """The need of ``resource`` from its forecast ``points`` (any order), or None when no
    horizon up to ``horizon_s`` reaches ``threshold``. The deadline interpolates the
    crossing between the last horizon below and the first at or above the threshold."""
    if not 0 < threshold < 1:
        raise NeedsError(f"threshold must be in (0, 1), got {threshold}")
    if not 0 < service_quantile < 1:
        raise NeedsError(f"service_quantile must be in (0, 1), got {service_quantile}")
    near = sorted((p for p in points if 0 <= p.horizon_s <= horizon_s), key=lambda p: p.horizon_s)
    if not near:
        return None
    cap = resource.capacity_mbps
    rows = tuple(
        Horizon(
            p.horizon_s,
            p.mean,
            p_exceed(p, cap, resource.series_id),
            expected_unmet(p, cap, resource.series_id),
            value_at(p, service_quantile, resource.series_id),
        )
        for p in near
    )
    first = next((i for i, h in enumerate(rows) if h.p_exceed >= threshold), None)
    if first is None:
        return None
    hit = rows[first]
    if first == 0:
        deadline = hit.horizon_s
    else:
        before = rows[first - 1]
        rise = hit.p_exceed - before.p_exceed
        frac = 1.0 if rise <= 0 else (threshold - before.p_exceed) / rise
        deadline = before.horizon_s + frac * (hit.horizon_s - before.horizon_s)
    worst = max(rows, key=lambda h: (h.unmet_mbps, h.p_exceed))
    return Need(
        resource=resource,
        time=now,
        deadline_s=deadline,
        confidence=max(h.p_exceed for h in rows),
        unmet_mbps=worst.unmet_mbps,
        need_mbps=max(h.upper_mbps for h in rows),
        horizons=rows,
        model=next((p.model for p in near if p.model), ""),
    )


def points_from(forecasts: Iterable, series: str) -> list[Point]:
    """``Point``s of one series from predictor ``Forecast`` messages (any with that id)."""
    out = []
    for f in forecasts:
        if f.series_id == series:
            out.append(
                Point(
                    f.horizon_s,
                    f.mean,
                    tuple((q.quantile, q.value) for q in f.quantiles),
                    getattr(f, "model", ""),
                )
            )
    return out


def assess_all(
    resources: Iterable[Resource], forecasts: Mapping[str, Sequence[Point]], now: float, **kw
) -> list[Need]:
    """Every resource's need (those without a forecast or without a need are left out)."""
    out = []
    for r in resources:
        points = forecasts.get(r.series_id)
        if points:
            need = assess(r, points, now, **kw)
            if need is not None:
                out.append(need)
    return out
