"""How many members a slice should have: a pure, forecast-driven scaling decision.

``ScalingPolicy.decide`` is called on every tick with ``now``, the slice, its current
member count, the predictor's forecast of the slice's demand at its SLA quantile
(``Forecast``, or None when the predictor is unavailable) and the measured load.
It returns a ``ScalingDecision`` saying what to do and why, with the numbers.

Demand. The demand the slice is sized for is the larger of the forecast and the
measured load: members must carry the traffic that is here now as well as the
traffic predicted at the horizon, so a forecast below the present load never
shrinks the slice while that load lasts. ``basis`` says which one decided;
with basis "forecast", ``lead_time_s`` is the forecast horizon (the capacity is
there that long before it is needed). Without a usable forecast the measured load
is used and the reason says so.

Sizing. ``needed = ceil(demand / per_member_mbps)`` clamped to
[min_members, max_members].

Hysteresis (the rule that keeps a slice from flapping):

* Scale up at once to ``needed`` when it exceeds the current count; capacity that
  arrives late breaks the SLA, capacity that arrives early only costs.
* Scale down only to a count that would still have ``down_margin`` headroom:
  ``down_target = ceil(demand / ((1 - down_margin) * per_member_mbps))``, clamped.
  With n members and the default margin of 0.2, the slice grows when demand
  exceeds ``n * per_member_mbps`` but shrinks only once demand is at most
  ``0.8 * (n - 1) * per_member_mbps``: a dead band 20% wide below every member
  boundary. Demand wobbling around a boundary by less than that (+-5%, +-15%)
  scales up once and then holds.
* And only after ``down_target`` has stayed below the current count continuously
  for ``scale_down_after_s``; the slice then goes to the highest ``down_target``
  seen during that time. Any tick that needs the current count again restarts
  the wait.
* A count above ``max_members`` (the slice was edited) is cut to the maximum at once.

Dissolve. When the demand (forecast and measured alike) stays below ``zero_mbps``
continuously for the slice's ``dissolve_after_s`` (if that is > 0), the decision
is "dissolve" with target 0; any tick with demand restarts that wait.

Timers count ``now`` between ticks, assuming demand stayed as last observed. The
policy's timers are its only state; ``to_dict``/``from_dict`` carry them across a
controller restart, so a restored policy makes the same next decision. If ``now``
goes backwards past a stored timer, that timer restarts at ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from apps.slices.model import InvalidSlice, Slice, check_count, check_number

Action = Literal["scale_up", "scale_down", "hold", "dissolve"]
Basis = Literal["forecast", "measured"]

STATE_VERSION = 1
_CEIL_TOLERANCE = 1e-9      # 30.000000000000004 / 10 still needs 3 members, not 4


SERIES_PREFIX = "slice:"            # the predictor series of a slice's demand: slice:<name>


def series_id(slice_name: str) -> str:
    return SERIES_PREFIX + slice_name


@dataclass(frozen=True)
class Forecast:
    """The slice's predicted demand at its SLA quantile, ``horizon_s`` from now."""

    demand_mbps: float
    horizon_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizon_s", check_number("horizon_s", self.horizon_s, ge=0))
        if isinstance(self.demand_mbps, bool) or not isinstance(self.demand_mbps, (int, float)):
            raise InvalidSlice("demand_mbps", f"must be a number, got {type(self.demand_mbps).__name__}")
        object.__setattr__(self, "demand_mbps", float(self.demand_mbps))


@dataclass(frozen=True)
class ScalingDecision:
    """What to do with a slice now, and the numbers behind it."""

    slice_name: str
    current_members: int
    target_members: int         # 0 only with action "dissolve"
    action: Action
    basis: Basis                # which demand decided: the forecast or the measured load
    demand_mbps: float          # the demand the slice was sized for
    lead_time_s: float          # forecast horizon when basis is "forecast", else 0
    reason: str
    decided_at_s: float = 0.0   # app time of the decision
    measured_mbps: float = 0.0  # the measured load it saw
    forecast_mbps: float | None = None   # the forecast it saw (None: there was none)
    forecast_horizon_s: float = 0.0      # how far ahead that forecast looked


@dataclass
class _Timers:
    down_since: float | None = None     # start of the current run of lower targets
    down_target: int | None = None      # highest lower target seen in that run
    zero_since: float | None = None     # start of the current run of ~zero demand

    def is_idle(self) -> bool:
        return self.down_since is None and self.zero_since is None


def _fmt(value: float) -> str:
    return f"{round(value, 3):.10g}"


def _members_for(demand_mbps: float, per_member_mbps: float) -> int:
    return max(0, math.ceil(demand_mbps / per_member_mbps - _CEIL_TOLERANCE))


class ScalingPolicy:
    """Per-slice scaling decisions with hysteresis; see the module docstring for the rule."""

    def __init__(self, scale_down_after_s: float = 60.0, down_margin: float = 0.2, zero_mbps: float = 0.01):
        self.scale_down_after_s = check_number("scale_down_after_s", scale_down_after_s, ge=0)
        self.down_margin = check_number("down_margin", down_margin, ge=0, lt=1)
        self.zero_mbps = check_number("zero_mbps", zero_mbps, ge=0)
        self._timers: dict[str, _Timers] = {}

    def decide(self, now: float, slice_: Slice, current_members: int, forecast: Forecast | None,
               measured_mbps: float) -> ScalingDecision:
        """Decide the slice's member count at ``now``; updates the slice's timers."""
        now = check_number("now", now)
        current = check_count("current_members", current_members, ge=0)
        measured = check_number("measured_mbps", measured_mbps, ge=0)
        timers = self._timers.setdefault(slice_.name, _Timers())
        self._rewind(timers, now)

        basis, demand, lead_time_s, head = self._demand(slice_, forecast, measured)
        usable = forecast is not None and math.isfinite(forecast.demand_mbps)
        seen = max(0.0, forecast.demand_mbps) if usable else None
        seen_horizon = forecast.horizon_s if usable else 0.0

        def decision(action: Action, target: int, reason: str) -> ScalingDecision:
            if timers.is_idle():
                self._timers.pop(slice_.name, None)
            return ScalingDecision(slice_.name, current, target, action, basis, demand, lead_time_s,
                                   f"{head} -> {reason}", now, measured, seen, seen_horizon)

        # Dissolve: demand ~0 for long enough.
        if slice_.dissolve_after_s > 0 and demand < self.zero_mbps:
            if timers.zero_since is None:
                timers.zero_since = now
        else:
            timers.zero_since = None
        if timers.zero_since is not None:
            quiet_s = now - timers.zero_since
            if quiet_s >= slice_.dissolve_after_s:
                timers.down_since = timers.down_target = None
                return decision("dissolve", 0,
                                f"below {_fmt(self.zero_mbps)} Mbit/s for {_fmt(quiet_s)} s "
                                f"(dissolve_after_s {_fmt(slice_.dissolve_after_s)}): dissolve")

        per = slice_.per_member_mbps
        needed = _members_for(demand, per)
        target = min(max(needed, slice_.min_members), slice_.max_members)
        clamped = f" -> {target}" if target != needed else ""
        sizing = (f"ceil({_fmt(demand)}/{_fmt(per)})={needed}{clamped} member(s) "
                  f"(min {slice_.min_members}, max {slice_.max_members})")

        if target > current:
            timers.down_since = timers.down_target = None
            return decision("scale_up", target, f"{sizing}; scale up from {current} to {target}")
        if current > slice_.max_members:
            timers.down_since = timers.down_target = None
            return decision("scale_down", slice_.max_members,
                            f"{sizing}; {current} exceeds max_members: scale down to {slice_.max_members}")

        keep = 1.0 - self.down_margin
        down_needed = _members_for(demand, per * keep)
        down_target = min(max(down_needed, slice_.min_members), slice_.max_members)
        if down_target >= current:
            timers.down_since = timers.down_target = None
            if target < current:
                load_pct = 100.0 * demand / slice_.capacity_mbps(target)
                return decision("hold", current,
                                f"{sizing}; hold at {current}: {target} member(s) would run at "
                                f"{_fmt(load_pct)}% of capacity, a scale-down needs <= {_fmt(100 * keep)}%")
            return decision("hold", current, f"{sizing}; hold at {current}")

        if timers.down_since is None:
            timers.down_since, timers.down_target = now, down_target
        else:
            timers.down_target = max(timers.down_target or 0, down_target)
        held_s = now - timers.down_since
        lower = timers.down_target
        if held_s >= self.scale_down_after_s:
            timers.down_since = timers.down_target = None
            return decision("scale_down", lower,
                            f"{sizing}; {lower} member(s) had {_fmt(100 * self.down_margin)}% headroom "
                            f"for {_fmt(held_s)} s (>= {_fmt(self.scale_down_after_s)} s): scale down "
                            f"from {current} to {lower}")
        return decision("hold", current,
                        f"{sizing}; {lower} member(s) would do with "
                        f"{_fmt(100 * self.down_margin)}% headroom, held {_fmt(held_s)} s "
                        f"of {_fmt(self.scale_down_after_s)} s: hold at {current}")

    def forget(self, slice_name: str) -> None:
        """Drop a slice's timers (it was deleted or dissolved)."""
        self._timers.pop(slice_name, None)

    # --- demand ---------------------------------------------------------------------

    @staticmethod
    def _demand(slice_: Slice, forecast: Forecast | None,
                measured: float) -> tuple[Basis, float, float, str]:
        """(basis, demand_mbps, lead_time_s, how the demand was chosen)."""
        if forecast is None or not math.isfinite(forecast.demand_mbps):
            why = "no forecast" if forecast is None else f"forecast unusable ({forecast.demand_mbps})"
            return "measured", measured, 0.0, f"{why}: using measured load = {_fmt(measured)} Mbit/s"
        predicted = max(0.0, forecast.demand_mbps)
        said = (f"forecast q{slice_.sla_quantile:g} at +{_fmt(forecast.horizon_s)} s = "
                f"{_fmt(predicted)} Mbit/s")
        if measured > predicted:
            return "measured", measured, 0.0, f"measured load {_fmt(measured)} Mbit/s exceeds {said}"
        return "forecast", predicted, forecast.horizon_s, f"{said} (measured now {_fmt(measured)} Mbit/s)"

    @staticmethod
    def _rewind(timers: _Timers, now: float) -> None:
        if timers.down_since is not None and timers.down_since > now:
            timers.down_since = timers.down_target = None
        if timers.zero_since is not None and timers.zero_since > now:
            timers.zero_since = None

    # --- state ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Parameters and per-slice timers, JSON-friendly; changes only when a timer starts or stops."""
        return {
            "version": STATE_VERSION,
            "scale_down_after_s": self.scale_down_after_s,
            "down_margin": self.down_margin,
            "zero_mbps": self.zero_mbps,
            "slices": {name: {"down_since": t.down_since, "down_target": t.down_target,
                              "zero_since": t.zero_since}
                       for name, t in sorted(self._timers.items()) if not t.is_idle()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: float) -> "ScalingPolicy":
        """Rebuild a policy from ``to_dict()``; ``overrides`` replace stored parameters
        (e.g. a changed configuration) while the timers are kept."""
        if not isinstance(data, dict):
            raise InvalidSlice("policy", f"must be a mapping, got {type(data).__name__}")
        version = data.get("version")
        if version != STATE_VERSION:
            raise InvalidSlice("policy.version", f"expected {STATE_VERSION}, got {version!r}")
        params = {key: data.get(key) for key in ("scale_down_after_s", "down_margin", "zero_mbps")}
        unknown = set(overrides) - set(params)
        if unknown:
            raise InvalidSlice(sorted(unknown)[0], "not a scaling policy parameter")
        params.update(overrides)
        policy = cls(**params)
        slices = data.get("slices", {})
        if not isinstance(slices, dict):
            raise InvalidSlice("policy.slices", f"must be a mapping, got {type(slices).__name__}")
        for name, entry in slices.items():
            where = f"policy.slices.{name}"
            if not isinstance(entry, dict):
                raise InvalidSlice(where, f"must be a mapping, got {type(entry).__name__}")
            timers = _Timers(
                down_since=_optional(entry.get("down_since"), f"{where}.down_since", check_number),
                down_target=_optional(entry.get("down_target"), f"{where}.down_target",
                                      lambda f, v: check_count(f, v, ge=0)),
                zero_since=_optional(entry.get("zero_since"), f"{where}.zero_since", check_number))
            if (timers.down_since is None) != (timers.down_target is None):
                raise InvalidSlice(where, "down_since and down_target must be set together")
            if not timers.is_idle():
                policy._timers[name] = timers
        return policy


def _optional(value: Any, field: str, check) -> Any:
    return None if value is None else check(field, value)
