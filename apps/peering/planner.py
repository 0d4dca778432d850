"""Proactive peering (issue 14): which exit each prefix group leaves by, and which
on-demand peering sessions to bring up or withdraw.

The edge switch has one transit provider (reaches every prefix group) and candidate
peers on an exchange fabric that can be brought up on demand. Three schemes share
one call, ``decide(now, groups, exits, state) -> Decision``, pure: no I/O, no clock
(``now`` is passed in), deterministic (candidates sorted by name before any tie-break).
The app that feeds them from GoBGP and OpenFlow counters programs the decision:
``assignment`` (group -> exit, established exits only), ``bring_up``, ``withdraw``
(its groups already moved off), and a ``Reason`` with the numbers for every change.

Cost model (per hour, what the MILP and the session rules weigh):

- an exit's price is per Mbit/s of its 95th percentile over the billing window
  (``billing``); spread over the window's hours, a group of D Mbit/s on exit e
  costs ``hourly_price(e.cost_per_mbps) * D`` per hour, D its largest forecast over
  the lookahead (p95 billing charges the busy samples);
- a peer session costs ``hour_cost`` per hour while up, whatever it carries;
- latency is priced at ``latency_weight`` per ms per Mbit/s per hour;
- a group's move is charged ``min_saving`` per hour (hysteresis) unless capacity forces it;
- overload (Mbit/s above headroom x capacity) is never traded for money: the least
  overload comes first, then the cheapest plan with it (``assign``).

Schemes:

1. ``BestPath`` ("plain_bgp"): every session up, every group on its BGP best path:
   the shortest AS path among established exits, ties to the lowest exit name (the
   router-id-style deterministic tie-break). Blind to capacity and price.
2. ``Reactive`` (Edge Fabric's allocator, Schlinker et al., SIGCOMM 2017, as the
   baseline): groups on their preferred exit (local-pref: peers before transit, then
   price, AS-path length, name), acting only on the last interval's *measured* rates.
   An exit above ``detour`` (80 %) of capacity has its largest groups moved to the
   cheapest alternate that stays at or under 80 % after the move; a detoured group
   returns once its preferred exit would be under ``restore`` (65 %) with it back.
   When no established exit has room, the candidate peer reaching the most of the
   stuck traffic is requested; a peer whose groups could all return to their other
   exits keeping them under 65 % for ``min_dwell_s`` is withdrawn.
3. ``Predictive`` (Foresight): plans on the forecast's upper quantile (q0.9) at every
   horizon up to ``lookahead_s`` (horizon 0 is the measured rate). The assignment is
   a MILP (``assign``) with one capacity row per exit and horizon at ``headroom``
   (85 %) of capacity, over the horizons up to ``fit_ahead_s`` and until the next session
   comes up (then the next decision re-plans with it); groups moved less than ``min_dwell_s`` ago stay
   unless their exit is gone or over its limit. A candidate peer is requested when,
   at the horizons from its ``lead_s`` to one ``interval_s`` later (the last decision
   that still has it up in time), the plan with it overloads less (capacity comes
   before its hour cost), or saves more than ``hour_cost * (1 + hysteresis)``. An
   established peer up for ``min_dwell_s`` is withdrawn when at every horizon the
   plan without it overloads no more and costs less than ``hour_cost * (1 -
   hysteresis)`` extra. Session rules compare fluid plans (the LP relaxation, a group
   may split): exact, fast, and not swayed by which near-equal packing the MIP stops
   at. Reasons carry the transit p95 expected before and after (``billing``), the
   peer's cost, the latency gained and the overload before and after.

Reason actions: place, move, failover, drain (its peer withdrawn), unreachable,
detour, restore, overload, bring_up, withdraw. Modules: ``model`` (the types),
``baselines`` (schemes 1 and 2), ``assign`` (the MILP), ``billing`` (p95).

All three move a group whose exit is no longer established at once, whatever its
dwell, with a "failover" Reason (the data plane's fast-failover groups have already
moved its packets; this makes it the plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

from apps.peering import assign
from apps.peering.baselines import BestPath, Reactive, leave_reason, preference_key, usable_exits
from apps.peering.billing import BILLING_WINDOW_S, SAMPLE_S, expected_p95, hourly_price
from apps.peering.model import (Decision, Exit, Group, PeeringError, Reason, State,
                                check_inputs)

__all__ = ["BestPath", "Decision", "Exit", "Group", "PeeringError", "Predictive", "Reactive",
           "Reason", "State", "preference_key"]

OVERLOAD_TOL_MBPS = 1e-3


# ---- 3. predictive (Foresight) ------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    load_mbps: dict[str, float]  # exit -> Mbit/s
    overload_mbps: float
    cost_per_h: float            # prices and latency, no penalties, no session hour costs
    transit_mbps: float
    latency_mbps_ms: float       # sum of load x latency over the exits


@dataclass(frozen=True)
class Predictive:
    """The MILP assignment on forecast quantiles, sessions by cost/benefit ahead of lead time."""

    quantile: float = 0.9
    lookahead_s: float = 3600.0
    headroom: float = 0.85
    min_saving: float = 0.01           # per hour: what a move not forced by capacity must save
    min_dwell_s: float = 900.0
    hysteresis: float = 0.2
    latency_weight: float = 1e-5       # per hour per ms per Mbit/s
    interval_s: float = 300.0          # between two decisions
    fit_ahead_s: float | None = None   # the assignment applied now fits this far ahead (None: lookahead_s)
    billing_window_s: float = BILLING_WINDOW_S
    time_limit_s: float = 5.0          # per MILP solve
    name: ClassVar[str] = "foresight"

    def __post_init__(self) -> None:
        checks = {"quantile": 0 < self.quantile < 1, "lookahead_s": self.lookahead_s > 0,
                  "headroom": 0 < self.headroom <= 1, "min_saving": self.min_saving >= 0,
                  "min_dwell_s": self.min_dwell_s >= 0, "hysteresis": 0 <= self.hysteresis < 1,
                  "latency_weight": self.latency_weight >= 0, "interval_s": self.interval_s > 0,
                  "billing_window_s": self.billing_window_s > 0, "time_limit_s": self.time_limit_s > 0,
                  "fit_ahead_s": self.fit_ahead_s is None or self.fit_ahead_s > 0}
        for field_name, ok in checks.items():
            if not ok:
                raise PeeringError(f"{field_name} is {getattr(self, field_name)!r}: out of range")

    def decide(self, now: float, groups: Sequence[Group], exits: Sequence[Exit], state: State) -> Decision:
        by_name = check_inputs(groups, exits)
        longest = max((e.lead_s for e in exits if e.kind == "peer"), default=0.0)
        if self.lookahead_s < longest:
            raise PeeringError(f"lookahead_s {self.lookahead_s:g} is shorter than a peer's lead_s "
                               f"{longest:g}: a bring-up could never be on time")
        run = _Run(self, now, sorted(groups, key=lambda g: g.name), by_name, state)
        reasons: list[Reason] = []
        withdraw = run.withdrawals(reasons)
        bring_up = run.bring_ups(withdraw, reasons)
        assignment = run.assign(set(withdraw), bring_up, reasons)
        return Decision(self.name, now, assignment, tuple(bring_up), tuple(withdraw), tuple(reasons))


class _Run:
    """One Predictive decision: the horizons, the demand at each, cached plans."""

    def __init__(self, cfg: Predictive, now: float, groups: list[Group], exits: dict[str, Exit],
                 state: State):
        self.cfg, self.now, self.groups, self.exits, self.state = cfg, now, groups, exits, state
        self.usable = usable_exits(state, exits)
        horizons = {h for g in groups for h in g.forecast if h <= cfg.lookahead_s}
        self.horizons = [0.0] + sorted(horizons)
        self.demand = {g.name: [g.demand_mbps(h, cfg.quantile) for h in self.horizons] for g in groups}
        # When each pending peer will be up, as seconds from now.
        self.ready_in = {p: max(0.0, t + exits[p].lead_s - now) for p, t in sorted(state.pending.items())
                         if p in exits and p not in self.usable}
        self._plans: dict[tuple[int, frozenset], _Plan] = {}

    def price(self, g: str, e: str, mbps: float) -> float:
        ex = self.exits[e]
        return (hourly_price(ex.cost_per_mbps, self.cfg.billing_window_s) * mbps
                + self.cfg.latency_weight * ex.latency_ms * mbps)

    def limit(self, e: str) -> float:
        return self.cfg.headroom * self.exits[e].capacity_mbps

    # ---- plans at one horizon, for the session rules --------------------------------------

    def plan_at(self, hi: int, usable: frozenset) -> _Plan:
        key = (hi, usable)
        if key not in self._plans:
            d = {g.name: self.demand[g.name][hi] for g in self.groups}
            cost = {(g.name, e): self.price(g.name, e, d[g.name]) for g in self.groups
                    for e in g.reach if e in usable}
            # The fluid plan (LP relaxation): exact and fast, and what a session is worth
            # does not hinge on which near-equal packing HiGHS stops at.
            sol = assign.solve(cost, {g: [v] for g, v in d.items()}, {e: self.limit(e) for e in usable},
                               time_limit_s=self.cfg.time_limit_s, relax=True)
            load = {e: v[0] for e, v in sorted(sol.loads_mbps.items())}
            self._plans[key] = _Plan(
                load, sol.overload_mbps, sol.cost,
                sum(v for e, v in load.items() if self.exits[e].kind == "transit"),
                sum(v * self.exits[e].latency_ms for e, v in load.items()))
        return self._plans[key]

    def up_at(self, hi: int, without: set[str], extra: Mapping[str, float]) -> frozenset:
        """Exits with routes by horizon ``hi``: established, pending ones ready by then,
        peers requested in this decision (``extra``: peer -> lead_s) ready by then."""
        h = self.horizons[hi]
        up = (self.usable - without) | {p for p, t in self.ready_in.items() if t <= h}
        return frozenset(up | {p for p, lead in extra.items() if lead <= h})

    def p95_numbers(self, plan_without: _Plan, plan_with: _Plan, from_s: float) -> dict:
        """The transit p95 expected if each plan's transit load held from ``from_s`` to
        the end of the lookahead (history: the state's samples of the transit exits)."""
        history = [sum(v) for v in zip(*self.state.transit_history_mbps.values())] \
            if self.state.transit_history_mbps else []
        n = max(1, int((self.cfg.lookahead_s - from_s) // SAMPLE_S))
        before = expected_p95(history, [plan_without.transit_mbps] * n)
        after = expected_p95(history, [plan_with.transit_mbps] * n)
        return {"transit_p95_before_mbps": before, "transit_p95_after_mbps": after,
                "transit_p95_saved_mbps": before - after}

    # ---- sessions ------------------------------------------------------------------------------

    def withdrawals(self, reasons: list[Reason]) -> list[str]:
        cfg, out = self.cfg, []
        peers = sorted((e for e in self.usable if self.exits[e].kind == "peer"),
                       key=lambda e: (-self.exits[e].hour_cost, e))
        for p in peers:
            up_for = self.now - self.state.session_changed_at.get(p, float("-inf"))
            if up_for < cfg.min_dwell_s:
                continue
            hour_cost = self.exits[p].hour_cost
            worst = None
            for hi in range(len(self.horizons)):
                with_p = self.up_at(hi, set(out), {})
                plan_with, plan_without = self.plan_at(hi, with_p), self.plan_at(hi, with_p - {p})
                extra_overload = plan_without.overload_mbps - plan_with.overload_mbps
                extra_cost = plan_without.cost_per_h - plan_with.cost_per_h
                if extra_overload > OVERLOAD_TOL_MBPS or extra_cost >= hour_cost * (1 - cfg.hysteresis):
                    worst = None
                    break
                if worst is None or extra_cost > worst[0]:
                    worst = (extra_cost, hi, plan_without, plan_with)
            if worst is None:
                continue
            extra_cost, hi, plan_without, plan_with = worst
            out.append(p)
            carried = plan_with.load_mbps.get(p, 0.0)
            reasons.append(Reason(
                "withdraw", p, f"up {up_for:g} s; without it the plan costs at most {extra_cost:.4g}/h more "
                f"over the next {cfg.lookahead_s:g} s, under its {hour_cost:g}/h",
                {"hour_cost": hour_cost, "extra_cost_per_h": extra_cost, "horizon_s": self.horizons[hi],
                 "carried_mbps": carried, "overload_mbps": plan_without.overload_mbps,
                 **self.p95_numbers(plan_with, plan_without, 0.0)}))
        return out

    def due(self, lead_s: float) -> list[int]:
        """Horizons at which a peer requested now is judged: from its lead time to one
        interval later (a later need is the next decision's), else the first after it."""
        window = [i for i, h in enumerate(self.horizons) if lead_s <= h <= lead_s + self.cfg.interval_s]
        if window:
            return window
        later = [i for i, h in enumerate(self.horizons) if h >= lead_s]
        return later[:1]

    def bring_ups(self, withdrawn: list[str], reasons: list[Reason]) -> list[str]:
        cfg = self.cfg
        chosen: dict[str, float] = {}
        candidates = [e for e in sorted(self.exits) if self.exits[e].kind == "peer"
                      and e not in self.usable and e not in self.state.pending]
        while True:
            best = None
            for p in (c for c in candidates if c not in chosen):
                ex = self.exits[p]
                for hi in self.due(ex.lead_s):
                    base = self.up_at(hi, set(withdrawn), chosen)
                    without, with_p = self.plan_at(hi, base), self.plan_at(hi, base | {p})
                    relief = without.overload_mbps - with_p.overload_mbps
                    saving = without.cost_per_h - with_p.cost_per_h
                    if relief <= OVERLOAD_TOL_MBPS and saving <= ex.hour_cost * (1 + cfg.hysteresis):
                        continue
                    score = (relief, saving - ex.hour_cost)
                    if best is None or score > best[0]:     # candidates in name order: ties keep the first
                        best = (score, p, hi, without, with_p)
            if best is None:
                return list(chosen)
            (relief, net), p, hi, without, with_p = best
            ex = self.exits[p]
            chosen[p] = ex.lead_s
            h = self.horizons[hi]
            moved = with_p.load_mbps.get(p, 0.0)
            why = (f"at +{h:g} s the plan without it overloads by {without.overload_mbps:.4g} Mbit/s"
                   if relief > OVERLOAD_TOL_MBPS else
                   f"at +{h:g} s it saves {net + ex.hour_cost:.4g}/h against its {ex.hour_cost:g}/h")
            reasons.append(Reason(
                "bring_up", p, f"{why}; lead {ex.lead_s:g} s, so requested now",
                {"horizon_s": h, "lead_s": ex.lead_s, "hour_cost": ex.hour_cost,
                 "saving_per_h": net + ex.hour_cost, "overload_before_mbps": without.overload_mbps,
                 "overload_after_mbps": with_p.overload_mbps, "moved_mbps": moved,
                 "peer_util_after": moved / ex.capacity_mbps, "quantile": cfg.quantile,
                 "latency_gained_ms": ((without.latency_mbps_ms - with_p.latency_mbps_ms) / moved
                                       if moved > 0 else 0.0),
                 **self.p95_numbers(without, with_p, ex.lead_s)}))

    # ---- the assignment applied now --------------------------------------------------------

    def assign(self, withdrawn: set[str], bring_up: list[str], reasons: list[Reason]) -> dict[str, str]:
        cfg, now, state = self.cfg, self.now, self.state
        usable = self.usable - withdrawn
        # The plan applied now need only hold until the next session comes up (the
        # decision then re-plans with it): horizons after that are left out.
        coming = [*self.ready_in.values(), *(self.exits[p].lead_s for p in bring_up)]
        cutoff = min(coming, default=float("inf"))
        ahead = cfg.lookahead_s if cfg.fit_ahead_s is None else cfg.fit_ahead_s
        hs = [i for i, h in enumerate(self.horizons) if h == 0 or (h < cutoff and h <= ahead)]
        demand = {g: [v[i] for i in hs] for g, v in self.demand.items()}
        horizons = [self.horizons[i] for i in hs]
        current = {g.name: state.assignment[g.name] for g in self.groups
                   if state.assignment.get(g.name) in usable and state.assignment[g.name] in g.reach}
        loads = {e: [0.0] * len(horizons) for e in usable}
        for g, e in current.items():
            loads[e] = [a + b for a, b in zip(loads[e], demand[g])]
        over = {e for e in usable if max(loads[e]) > self.limit(e) + OVERLOAD_TOL_MBPS}
        peak = {g.name: max(demand[g.name]) for g in self.groups}
        fixed = {g: e for g, e in current.items()
                 if now - state.moved_at.get(g, float("-inf")) < cfg.min_dwell_s and e not in over}
        cost = {}
        for g in self.groups:
            for e in sorted(g.reach):
                if e in usable:
                    penalty = cfg.min_saving if g.name in current and current[g.name] != e else 0.0
                    cost[(g.name, e)] = self.price(g.name, e, peak[g.name]) + penalty
        sol = assign.solve(cost, {g: demand[g] for g, _ in cost}, {e: self.limit(e) for e in usable},
                           fixed, cfg.time_limit_s)
        exit_of = dict(sol.exit_of)
        new_loads = {e: [0.0] * len(horizons) for e in usable}
        for g, e in exit_of.items():
            new_loads[e] = [a + b for a, b in zip(new_loads[e], demand[g])]

        def saving(g: str) -> float:
            return self.price(g, current[g], peak[g]) - self.price(g, exit_of[g], peak[g])

        # Undo a move the MIP gap let through: not forced by capacity, saving less than
        # min_saving, and its old exit still has room for it.
        unforced = [g for g in sorted(current) if exit_of.get(g, current[g]) != current[g]
                    and current[g] not in over and saving(g) < cfg.min_saving]
        for g in sorted(unforced, key=lambda g: (saving(g), g)):
            old, new = current[g], exit_of[g]
            if all(v + x <= self.limit(old) + OVERLOAD_TOL_MBPS for v, x in zip(new_loads[old], demand[g])):
                new_loads[old] = [v + x for v, x in zip(new_loads[old], demand[g])]
                new_loads[new] = [v - x for v, x in zip(new_loads[new], demand[g])]
                exit_of[g] = old

        def util(table, e) -> float:
            return max(table[e]) / self.exits[e].capacity_mbps

        for g in self.groups:
            old, new = state.assignment.get(g.name), exit_of.get(g.name)
            if old == new:
                continue
            nums = {"demand_mbps": peak[g.name], "measured_mbps": g.measured_mbps, "quantile": cfg.quantile}
            if new is not None:
                nums.update({"to_util_before": util(loads, new), "to_util_after": util(new_loads, new),
                             "latency_ms_after": self.exits[new].latency_ms})
            if old in self.exits and new is not None:
                nums.update({"saving_per_h": self.price(g.name, old, peak[g.name])
                             - self.price(g.name, new, peak[g.name]),
                             "latency_ms_before": self.exits[old].latency_ms})
            if old in usable and old in g.reach:
                nums.update({"from_util_before": util(loads, old), "from_util_after": util(new_loads, old)})
                cause = (f"{old} over {cfg.headroom:.0%} of capacity at q{cfg.quantile:g}" if old in over
                         else "cheaper")
                reasons.append(Reason("move", g.name, f"{old} -> {new}: {cause}", nums))
            elif old in withdrawn:
                reasons.append(Reason("drain", g.name, f"{old} -> {new}: {old} is withdrawn", nums))
            else:
                reason = leave_reason(g, old, new, usable, "best remaining exit", nums)
                if reason is not None:
                    reasons.append(reason)
        for e in sorted(usable):
            worst = max(new_loads[e])
            if worst > self.limit(e) + OVERLOAD_TOL_MBPS:
                hi = new_loads[e].index(worst)
                reasons.append(Reason("overload", e, f"demand cannot fit: the least overloaded plan keeps "
                                      f"{worst - self.limit(e):.4g} Mbit/s above {cfg.headroom:.0%}",
                                      {"load_mbps": worst, "limit_mbps": self.limit(e),
                                       "capacity_mbps": self.exits[e].capacity_mbps,
                                       "util": util(new_loads, e), "horizon_s": horizons[hi]}))
        return exit_of
