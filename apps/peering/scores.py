"""What the peering app shows of itself: candidate scores and Prometheus families.

Functions of the manager (``self``), read under its lock, kept apart from the loops
that change it.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apps.peering.billing import hourly_price


def candidate_scores(app, groups: list, decision) -> list[dict]:
    """Every neighbour's candidate score (ListCandidates): what it could carry at the
    upper quantile over the lookahead, what the plan puts on it, its cost against the
    transit cost it saves, the latency gained, the verdict and why."""
    q, far = app.settings.quantile, max(app.settings.horizons_s)
    demand = {
        g.name: max(g.measured_mbps, g.demand_mbps(far, q), *(v.get(q, 0.0) for v in g.forecast.values()))
        for g in groups
    }
    window = app.settings.billing_window_s
    transit = next((n for n in app.neighbours.values() if n.kind == "transit"), None)
    transit_price = hourly_price(transit.cost_per_mbps, window) if transit else 0.0
    rows = []
    for name, n in app.neighbours.items():
        reach = [g.name for g in groups if name in g.reach]
        carried = sum(demand[g] for g, e in decision.assignment.items() if e == name and g in demand)
        reachable = sum(demand[g] for g in reach)
        price = hourly_price(n.cost_per_mbps, window)
        cost = n.hour_cost + price * carried
        saving = (transit_price - price) * carried if n.kind == "peer" else 0.0
        reasons = [r for r in decision.reasons_for(name) if r.action in ("bring_up", "withdraw")]
        s = app.sessions[name]
        verdict = (
            "establish"
            if name in decision.bring_up
            else "withdraw"
            if name in decision.withdraw
            else "torn down"
            if s.state == "TORN_DOWN"
            else f"override {s.override}"
            if s.override != "none"
            else "keep"
            if s.established
            else s.state.lower()
            if s.wanted
            else "not worth it now"
        )
        why = (
            reasons[0].text
            if reasons
            else (
                f"carries {carried:.2f} of {reachable:.2f} Mbit/s it reaches at q{q:g}"
                if s.established
                else f"reaches {reachable:.2f} Mbit/s at q{q:g} over {far:g} s; the plan does not need it"
            )
        )
        rows.append(
            {
                "name": name,
                "kind": n.kind,
                "groups": len(reach),
                "prefixes": app.rib.prefixes_from(name),
                "reachable_mbps": round(reachable, 4),
                "carried_mbps": round(carried, 4),
                "capacity_mbps": n.capacity_mbps,
                "cost_per_hour": round(cost, 6),
                "saving_per_hour": round(saving, 6),
                "net_per_hour": round(saving - cost, 6),
                "latency_gain_ms": round(transit.latency_ms - n.latency_ms, 3)
                if transit and n.kind == "peer"
                else 0.0,
                "overload_risk": round(carried / n.capacity_mbps, 4),
                "verdict": verdict,
                "why": why,
            }
        )
    return rows


def metric_families(app) -> list:
    with app.lock:
        sessions = {n: (s.state, app.rib.prefixes_from(n)) for n, s in app.sessions.items()}
        decisions = dict(app.decision_counts)
        failovers = dict(app.failovers)
        degraded = bool(app.degraded)
    rates = app.exit_rates()
    state = GaugeMetricFamily(
        "foresight_peering_session", "1 for each neighbour's session state", labels=["neighbour", "state"]
    )
    prefixes = GaugeMetricFamily(
        "foresight_peering_prefixes", "Routes learned from a neighbour", labels=["neighbour"]
    )
    rate = GaugeMetricFamily(
        "foresight_peering_exit_rate_mbps", "What an exit carries (last step)", labels=["neighbour"]
    )
    util = GaugeMetricFamily(
        "foresight_peering_exit_utilisation", "Exit rate over its capacity", labels=["neighbour"]
    )
    for name, (st, n_prefixes) in sorted(sessions.items()):
        state.add_metric([name, st], 1.0)
        prefixes.add_metric([name], n_prefixes)
        rate.add_metric([name], rates.get(name, 0.0))
        util.add_metric([name], rates.get(name, 0.0) / app.neighbours[name].capacity_mbps)
    p95 = GaugeMetricFamily(
        "foresight_peering_transit_p95_mbps", "Transit 95th percentile over the billing window so far"
    )
    p95.add_metric([], app.transit_p95())
    count = CounterMetricFamily("foresight_peering_decisions", "Peering decisions by kind", labels=["kind"])
    for kind, n in sorted(decisions.items()):
        count.add_metric([kind], n)
    fo = CounterMetricFamily(
        "foresight_peering_failovers", "Exits lost with traffic on them", labels=["neighbour", "cause"]
    )
    for (name, cause), n in sorted(failovers.items()):
        fo.add_metric([name, cause], n)
    deg = GaugeMetricFamily("foresight_peering_degraded", "1 while the BGP speaker cannot be reached")
    deg.add_metric([], 1.0 if degraded else 0.0)
    return [state, prefixes, rate, util, p95, count, fo, deg]
