"""The baselines proactive peering is judged against: plain BGP and a reactive
allocator in the manner of Edge Fabric (Schlinker et al., "Engineering Egress with
Edge Fabric", SIGCOMM 2017), whose 80 % detour and 65 % restore thresholds are kept.
Both work on the last interval's measured rates only; see ``planner`` for the
shared contract and the predictive scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

from apps.peering.model import Decision, Exit, Group, PeeringError, Reason, State, check_inputs

def preference_key(exit_: Exit, as_path_len: int) -> tuple:
    """Local-pref order: peers before transit, cheaper first, shorter AS path, name."""
    return (exit_.kind != "peer", exit_.cost_per_mbps, as_path_len, exit_.name)


def usable_exits(state: State, exits: Mapping[str, Exit]) -> set[str]:
    return {e for e in state.established if e in exits}


def _ratio(load: float, capacity: float) -> float:
    return load / capacity


def leave_reason(group: Group, old: str | None, new: str | None, usable: set[str], why_new: str,
           numbers: dict) -> Reason | None:
    """The Reason for a group whose exit changed from ``old`` to ``new``."""
    if old == new:
        return None
    if new is None:
        return Reason("unreachable", group.name, f"no established exit reaches it (was on {old})",
                      numbers)
    if old is None:
        return Reason("place", group.name, f"new group to {new}: {why_new}", numbers)
    if old not in usable or old not in group.reach:
        return Reason("failover", group.name, f"{old} is gone: to {new}, {why_new}", numbers)
    return None


# ---- 1. plain BGP ------------------------------------------------------------------------


@dataclass(frozen=True)
class BestPath:
    """Every session up; every group on the shortest AS path (ties: lowest exit name)."""

    name: ClassVar[str] = "plain_bgp"

    def decide(self, now: float, groups: Sequence[Group], exits: Sequence[Exit], state: State) -> Decision:
        by_name = check_inputs(groups, exits)
        usable = usable_exits(state, by_name)
        bring_up = tuple(sorted(e.name for e in exits if e.kind == "peer"
                                and e.name not in usable and e.name not in state.pending))
        reasons = [Reason("bring_up", p, "plain BGP keeps every session up") for p in bring_up]
        assignment = {}
        for g in sorted(groups, key=lambda g: g.name):
            options = sorted((g.reach[e], e) for e in g.reach if e in usable)
            old = state.assignment.get(g.name)
            new = options[0][1] if options else None
            if new is not None:
                assignment[g.name] = new
            nums = {"as_path_len": options[0][0]} if options else {}
            if old in g.reach:
                nums["as_path_len_before"] = g.reach[old]
            reason = leave_reason(g, old, new, usable, "its shortest AS path", nums)
            if reason is None and old != new:
                reason = Reason("move", g.name, f"{old} -> {new}: shorter AS path", nums)
            if reason is not None:
                reasons.append(reason)
        return Decision(self.name, now, assignment, bring_up, (), tuple(reasons))


# ---- 2. reactive (Edge Fabric) --------------------------------------------------------------


@dataclass(frozen=True)
class Reactive:
    """Preferred exits, detours above ``detour`` of capacity, back below ``restore``."""

    detour: float = 0.80
    restore: float = 0.65
    min_dwell_s: float = 900.0
    name: ClassVar[str] = "reactive"

    def __post_init__(self) -> None:
        if not 0 < self.restore < self.detour <= 1:
            raise PeeringError(f"need 0 < restore < detour <= 1, got restore={self.restore!r}, "
                               f"detour={self.detour!r}")
        if not self.min_dwell_s >= 0:
            raise PeeringError(f"min_dwell_s is {self.min_dwell_s!r}; it must be >= 0")

    def decide(self, now: float, groups: Sequence[Group], exits: Sequence[Exit], state: State) -> Decision:
        by_name = check_inputs(groups, exits)
        usable = usable_exits(state, by_name)
        gs = {g.name: g for g in groups}
        rate = {g.name: g.measured_mbps for g in groups}
        reasons: list[Reason] = []

        def preferred(g: Group, without: str | None = None) -> str | None:
            options = [e for e in g.reach if e in usable and e != without]
            return min(options, key=lambda e: preference_key(by_name[e], g.reach[e]), default=None)

        assignment: dict[str, str] = {}
        load = {e: 0.0 for e in usable}
        for name in sorted(gs):
            g, old = gs[name], state.assignment.get(name)
            new = old if old in usable and old in g.reach else preferred(g)
            reason = leave_reason(g, old, new, usable, "its preferred exit", {"measured_mbps": rate[name]})
            if reason is not None:
                reasons.append(reason)
            if new is not None:
                assignment[name] = new
                load[new] += rate[name]

        def util(e: str, extra: float = 0.0) -> float:
            return _ratio(load[e] + extra, by_name[e].capacity_mbps)

        def move(name: str, to: str) -> None:
            load[assignment[name]] -= rate[name]
            load[to] += rate[name]
            assignment[name] = to

        # Restore: detoured groups back to their preferred exit when it stays under `restore`.
        detoured = [n for n in assignment if preferred(gs[n]) not in (None, assignment[n])]
        for name in sorted(detoured, key=lambda n: (-rate[n], n)):
            home = preferred(gs[name])
            after = util(home, rate[name])
            if after < self.restore:
                reasons.append(Reason("restore", name,
                                      f"{assignment[name]} -> {home}: its preferred exit has room",
                                      {"measured_mbps": rate[name], "util_after": after,
                                       "restore": self.restore}))
                move(name, home)

        # Detour: largest groups off an exit over `detour`, to the cheapest alternate with room.
        for e in sorted(usable):
            on_e = sorted((n for n in assignment if assignment[n] == e), key=lambda n: (-rate[n], n))
            for name in on_e:
                if util(e) <= self.detour:
                    break
                if rate[name] <= 0:
                    continue
                g = gs[name]
                alternates = sorted((a for a in g.reach if a in usable and a != e),
                                    key=lambda a: preference_key(by_name[a], g.reach[a]))
                to = next((a for a in alternates if util(a, rate[name]) <= self.detour), None)
                if to is None:
                    continue
                before = util(e)
                move(name, to)
                reasons.append(Reason("detour", name, f"{e} -> {to}: {e} over {self.detour:.0%} of capacity",
                                      {"measured_mbps": rate[name], "util_before": before,
                                       "util_after": util(e), "to_util_after": util(to),
                                       "detour": self.detour}))

        bring_up = self._request(groups, by_name, usable, state, assignment, rate, util, reasons)
        withdraw, since = self._withdraw(now, gs, by_name, usable, state, assignment, rate, load,
                                         preferred, move, reasons)
        return Decision(self.name, now, assignment, bring_up, withdraw, tuple(reasons), since)

    def _request(self, groups, by_name, usable, state, assignment, rate, util, reasons) -> tuple[str, ...]:
        """The candidate peer reaching the most traffic stuck on an overloaded exit."""
        hot = sorted(e for e in usable if util(e) > self.detour)
        if not hot:
            return ()
        pending = [p for p in state.pending if p in by_name and p not in usable]
        stuck = [g for g in groups if assignment.get(g.name) in hot
                 and not any(p in g.reach for p in pending)]
        candidates = [e for e in sorted(by_name) if by_name[e].kind == "peer"
                      and e not in usable and e not in state.pending]
        reached = {p: sum(rate[g.name] for g in stuck if p in g.reach) for p in candidates}
        best = min((p for p in candidates if reached[p] > 0), key=lambda p: (-reached[p], p), default=None)
        if best is None:
            return ()
        worst = max(hot, key=lambda e: (util(e), e))
        reasons.append(Reason("bring_up", best, f"{', '.join(hot)} over {self.detour:.0%} with no room "
                              f"elsewhere; {best} reaches the most of that traffic",
                              {"util": util(worst), "reached_mbps": reached[best],
                               "capacity_mbps": by_name[best].capacity_mbps, "detour": self.detour}))
        return (best,)

    def _withdraw(self, now, gs, by_name, usable, state, assignment, rate, load, preferred, move, reasons):
        """Peers whose traffic has fitted elsewhere under `restore` for `min_dwell_s`."""
        since: dict[str, float] = {}
        withdraw = []
        for p in sorted(e for e in usable if by_name[e].kind == "peer"):
            on_p = sorted(n for n in assignment if assignment[n] == p)
            homes = {n: preferred(gs[n], without=p) for n in on_p}
            if any(h is None for h in homes.values()):
                continue
            extra: dict[str, float] = {}
            for n, h in homes.items():
                extra[h] = extra.get(h, 0.0) + rate[n]
            after = {h: _ratio(load[h] + x, by_name[h].capacity_mbps) for h, x in extra.items()}
            if any(u >= self.restore for u in after.values()):
                continue
            start = state.withdrawable_since.get(p, now)
            if now - start < self.min_dwell_s:
                since[p] = start
                continue
            withdraw.append(p)
            reasons.append(Reason("withdraw", p, f"its traffic has fitted elsewhere under "
                                  f"{self.restore:.0%} for {now - start:g} s",
                                  {"moved_mbps": sum(extra.values()),
                                   "max_util_after": max(after.values(), default=0.0),
                                   "restore": self.restore, "hour_cost": by_name[p].hour_cost}))
            for n, h in homes.items():
                move(n, h)
                reasons.append(Reason("drain", n, f"{p} -> {h}: {p} is withdrawn",
                                      {"measured_mbps": rate[n]}))
            usable.discard(p)
        return tuple(withdraw), since
