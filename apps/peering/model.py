"""The data of proactive peering: exits, prefix groups, what is up, and decisions.

All frozen, all validated on construction (a bad value raises ``PeeringError``
naming the field), mappings stored read-only. Times are seconds on the caller's
clock (``now``); rates Mbit/s; prices in the operator's currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Mapping, Sequence

Kind = Literal["transit", "peer"]
KINDS = ("transit", "peer")


class PeeringError(ValueError):
    """Bad input to the peering planner; the message names the field."""


@dataclass(frozen=True)
class Exit:
    """One neighbour of the edge switch."""

    name: str
    kind: Kind
    capacity_mbps: float
    cost_per_mbps: float          # per Mbit/s of this exit's p95 over the billing window
    hour_cost: float = 0.0        # per hour while the session is up (peers; transit 0)
    latency_ms: float = 0.0
    lead_s: float = 0.0           # request to routes learned (peers)

    def __post_init__(self) -> None:
        _name(self.name, "exit name")
        if self.kind not in KINDS:
            raise PeeringError(f"exit {self.name!r}: kind is {self.kind!r}, expected one of {KINDS}")
        if not (_finite(self.capacity_mbps) and self.capacity_mbps > 0):
            raise PeeringError(f"exit {self.name!r}: capacity_mbps is {self.capacity_mbps!r}; "
                               "it must be finite and > 0")
        for attr in ("cost_per_mbps", "hour_cost", "latency_ms", "lead_s"):
            value = getattr(self, attr)
            if not (_finite(value) and value >= 0):
                raise PeeringError(f"exit {self.name!r}: {attr} is {value!r}; it must be finite and >= 0")


@dataclass(frozen=True)
class Group:
    """The prefixes of one origin AS, with their demand and the exits that reach them."""

    name: str
    prefixes: int
    reach: Mapping[str, int]                            # exit name -> AS-path length
    measured_mbps: float                                # the last interval
    forecast: Mapping[float, Mapping[float, float]] = field(default_factory=dict)
    # horizon_s -> quantile -> Mbit/s; empty: the measured rate stands for every horizon

    def __post_init__(self) -> None:
        _name(self.name, "group name")
        who = f"group {self.name!r}"
        if isinstance(self.prefixes, bool) or not isinstance(self.prefixes, int) or self.prefixes < 0:
            raise PeeringError(f"{who}: prefixes is {self.prefixes!r}; it must be an integer >= 0")
        reach = {}
        for exit_name, length in dict(self.reach).items():
            _name(exit_name, f"{who}: reach exit name")
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise PeeringError(f"{who}: reach[{exit_name!r}] (AS-path length) is {length!r}; "
                                   "it must be an integer >= 0")
            reach[exit_name] = length
        if not (_finite(self.measured_mbps) and self.measured_mbps >= 0):
            raise PeeringError(f"{who}: measured_mbps is {self.measured_mbps!r}; it must be finite and >= 0")
        forecast = {}
        for horizon, quantiles in dict(self.forecast).items():
            if not (_finite(horizon) and horizon > 0):
                raise PeeringError(f"{who}: forecast horizon {horizon!r}; horizons must be > 0 seconds")
            qs = {}
            for q, value in dict(quantiles).items():
                if not (_finite(q) and 0 < q < 1):
                    raise PeeringError(f"{who}: forecast[{horizon!r}] quantile {q!r} is not in (0, 1)")
                if not (_finite(value) and value >= 0):
                    raise PeeringError(f"{who}: forecast[{horizon!r}][{q!r}] is {value!r}; "
                                       "rates must be finite and >= 0")
                qs[float(q)] = float(value)
            if not qs:
                raise PeeringError(f"{who}: forecast[{horizon!r}] has no quantiles")
            forecast[float(horizon)] = MappingProxyType(qs)
        object.__setattr__(self, "reach", MappingProxyType(reach))
        object.__setattr__(self, "forecast", MappingProxyType(forecast))

    def demand_mbps(self, horizon_s: float, quantile: float) -> float:
        """The rate to plan for ``horizon_s`` ahead: at 0 (or with no forecast) the
        measured rate; else the forecast at the nearest horizon given (a tie takes the
        earlier one), at ``quantile`` if given, else the smallest quantile above it,
        else the largest (never a quantile below the one asked for when a higher exists)."""
        if horizon_s <= 0 or not self.forecast:
            return float(self.measured_mbps)
        nearest = min(self.forecast, key=lambda h: (abs(h - horizon_s), h))
        qs = self.forecast[nearest]
        if quantile in qs:
            return qs[quantile]
        above = sorted(q for q in qs if q > quantile)
        return qs[above[0]] if above else qs[max(qs)]


@dataclass(frozen=True)
class Reason:
    """Why one thing changed, with the numbers behind it, the way a log line says it."""

    action: str               # place, move, failover, drain, detour, restore, overload,
    target: str               # unreachable, bring_up, withdraw; target: a group or exit
    text: str
    numbers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", MappingProxyType(
            {k: _rounded(v) for k, v in sorted(dict(self.numbers).items())}))

    def __str__(self) -> str:
        nums = " ".join(f"{k}={v:g}" for k, v in self.numbers.items())
        return f"{self.action} {self.target}: {self.text}" + (f" [{nums}]" if nums else "")

    def as_json(self) -> dict:
        return {"action": self.action, "target": self.target, "text": self.text,
                "numbers": dict(self.numbers)}


@dataclass(frozen=True)
class Decision:
    scheme: str
    now: float
    assignment: Mapping[str, str]                 # group -> exit (established exits only)
    bring_up: tuple[str, ...] = ()                # peers to request, in order
    withdraw: tuple[str, ...] = ()                # sessions to take down (their groups already moved)
    reasons: tuple[Reason, ...] = ()
    withdrawable_since: Mapping[str, float] = field(default_factory=dict)   # memo for the next call

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignment", MappingProxyType(dict(sorted(self.assignment.items()))))
        object.__setattr__(self, "withdrawable_since", MappingProxyType(dict(self.withdrawable_since)))

    def reasons_for(self, target: str) -> list[Reason]:
        return [r for r in self.reasons if r.target == target]

    def as_json(self) -> dict:
        return {"scheme": self.scheme, "now": self.now, "assignment": dict(self.assignment),
                "bring_up": list(self.bring_up), "withdraw": list(self.withdraw),
                "reasons": [r.as_json() for r in self.reasons]}


@dataclass(frozen=True)
class State:
    """What is up and where traffic goes, as the app last applied it."""

    established: frozenset[str] = frozenset()           # exits whose sessions are up (transit too)
    pending: Mapping[str, float] = field(default_factory=dict)      # peer -> when requested
    assignment: Mapping[str, str] = field(default_factory=dict)     # group -> exit
    moved_at: Mapping[str, float] = field(default_factory=dict)     # group -> last change of exit
    session_changed_at: Mapping[str, float] = field(default_factory=dict)
    # exit -> when its session last came up, was requested or withdrawn (missing: long ago)
    transit_history_mbps: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # transit exit -> its 5-minute rate samples so far in the billing window
    withdrawable_since: Mapping[str, float] = field(default_factory=dict)
    # peer -> since when Reactive has found it withdrawable (Decision.withdrawable_since)

    def __post_init__(self) -> None:
        object.__setattr__(self, "established", frozenset(self.established))
        for attr in ("pending", "assignment", "moved_at", "session_changed_at", "withdrawable_since"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        object.__setattr__(self, "transit_history_mbps", MappingProxyType(
            {k: tuple(float(v) for v in vs) for k, vs in dict(self.transit_history_mbps).items()}))

    def after(self, decision: Decision, now: float) -> State:
        """The state once ``decision`` is applied at ``now`` (bring-ups pending)."""
        # A move starts the group's dwell; its first placement does not (nothing to flap back to).
        moved = {g: now for g, e in decision.assignment.items()
                 if g in self.assignment and self.assignment[g] != e}
        gone = set(decision.withdraw)
        pending = {p: t for p, t in self.pending.items() if p not in gone}
        pending.update({p: now for p in decision.bring_up})
        changed = dict(self.session_changed_at)
        changed.update({p: now for p in (*decision.bring_up, *decision.withdraw)})
        return State(self.established - gone, pending, decision.assignment, {**self.moved_at, **moved},
                     changed, self.transit_history_mbps, decision.withdrawable_since)

    def establish(self, name: str, now: float) -> State:
        """The state once ``name``'s session is up and its routes learned."""
        return State(self.established | {name}, {p: t for p, t in self.pending.items() if p != name},
                     self.assignment, self.moved_at, {**self.session_changed_at, name: now},
                     self.transit_history_mbps, self.withdrawable_since)


def check_inputs(groups: Sequence[Group], exits: Sequence[Exit]) -> dict[str, Exit]:
    """Exits by name; raises when names repeat or a group's reach names an unknown exit."""
    by_name: dict[str, Exit] = {}
    for e in exits:
        if not isinstance(e, Exit):
            raise PeeringError(f"exits: {e!r} is not an Exit")
        if e.name in by_name:
            raise PeeringError(f"exits: name {e.name!r} is given twice")
        by_name[e.name] = e
    seen = set()
    for g in groups:
        if not isinstance(g, Group):
            raise PeeringError(f"groups: {g!r} is not a Group")
        if g.name in seen:
            raise PeeringError(f"groups: name {g.name!r} is given twice")
        seen.add(g.name)
        unknown = sorted(set(g.reach) - set(by_name))
        if unknown:
            raise PeeringError(f"group {g.name!r}: reach names unknown exit(s) {unknown}")
    return by_name


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _name(value, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise PeeringError(f"{what} {value!r} must be a non-empty string")


def _rounded(value: float) -> float:
    return round(float(value), 6)
