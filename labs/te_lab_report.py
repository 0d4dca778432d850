"""The ``foresight lab run te`` report: what each run sent, delivered and carried.

``analyse`` turns one run's raw counters (bytes sent and received per OD pair and
interval, every link's transmitted-byte counter at every interval boundary, the TE
app's decision lines) into loss and utilisation figures; ``render`` sets TE off
beside TE on as text. Pure functions of the report dict, so they run on synthetic
counters in unit tests.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

BUSY = 0.9                  # a link-interval at or above this utilisation counts as busy
LOSSY = 0.01                # an interval losing more than this share counts as lossy

EXPLANATION = """\
What the figures mean
  replay       real Abilene traffic matrices (5-minute samples, evaluation span) replayed as one paced
               UDP stream per OD pair between hosts on the two routers (over several source ports, so a
               switch hashing per flow may split it); scale, window and flows were chosen on the fit span
               alone. Both runs replay the same streams at the same times, each on a fresh network.
  offered      bytes the senders put on the wire (1200-byte frames, headers included), all OD pairs;
  received     bytes the receivers counted; loss = 1 - received / offered. A datagram counts in the
               interval (one 5-minute sample) it was sent in, whenever it arrived.
  lossy        intervals losing more than 1 % of what was offered in them.
  link util    what a switch port transmitted onto its link per interval (interface counters, after the
               link's rate limiter) over the link's emulated capacity; max and p95 over the intervals.
               busy = link-intervals at or above 90 % (a saturated link's switch port queues about
               100 kB, under 0.1 s here, and drops what does not fit: that shows as loss).
  reference    the offline tools on the same replayed matrices: shortest-path MLU (what TE off routes)
               and the min-MLU LP optimum over k candidate paths (the best any split can do, knowing
               each matrix in advance); above 1 means demand exceeds capacity on some link.
  TE decisions the TE app's steps (its decisions file): whether it planned on the forecast or the measured
               traffic matrix, the MLU it predicted and measured, and how many steps changed routing."""


# --- analysis ---------------------------------------------------------------------------------

def link_utilisation(tx_bytes: list[int], times: list[float], capacity_mbps: float) -> np.ndarray:
    """Per interval between consecutive counter readings: Mbit/s sent over capacity."""
    tx = np.asarray(tx_bytes, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    m = min(len(tx), len(t))
    if m < 2:
        return np.zeros(0)
    seconds = np.maximum(np.diff(t[:m]), 1e-6)
    return np.diff(tx[:m]) * 8 / 1e6 / seconds / capacity_mbps


def _pct(lost: float, offered: float) -> float:
    return 100.0 * lost / offered if offered > 0 else 0.0


def summarise_decisions(rows: list[dict]) -> dict:
    """TE steps (``apps.te.engineer.StepRecord`` lines) by TM source and action; a
    reroute is a ``replan`` step (ODs re-split and installed)."""
    steps = [r for r in rows if "unparsed" not in r]
    replans = [r for r in steps if r.get("action") == "replan"]

    def top(key):
        values = [r[key] for r in steps if isinstance(r.get(key), (int, float))]
        return max(values) if values else None

    return {"steps": len(steps), "unparsed": len(rows) - len(steps),
            "sources": dict(sorted(Counter(str(r.get("source", "?")) for r in steps).items())),
            "actions": dict(sorted(Counter(str(r.get("action", "?")) for r in steps).items())),
            "reroutes": len(replans), "od_moves": sum(len(r.get("moved") or {}) for r in replans),
            "split_ods": sum(1 for routes in _final_plan(replans).values() if len(routes) > 1),
            "predicted_mlu_max": top("predicted_mlu"), "measured_mlu_max": top("measured_mlu"),
            "reroute_steps": [{"app_time": r.get("app_time"), "source": r.get("source"),
                               "predicted_mlu": r.get("predicted_mlu"), "measured_mlu": r.get("measured_mlu"),
                               "planned_mlu": r.get("planned_mlu"), "moved": len(r.get("moved") or {})}
                              for r in replans]}


def _final_plan(replans: list[dict]) -> dict:
    """OD -> its routes after the last replan that moved it."""
    plan: dict = {}
    for r in replans:
        plan.update(r.get("moved") or {})
    return plan


def analyse(run: dict, report: dict) -> dict:
    """Loss (overall, per interval, per OD pair), link utilisation and TE decisions of one run."""
    n = report["plan"]["stop"] - report["plan"]["start"]
    pairs = report["plan"]["pairs"]

    def counts(by_pair: dict) -> np.ndarray:
        return np.array([(by_pair.get(p, []) + [0] * n)[:n] for p in pairs], dtype=np.float64).reshape(-1, n)

    sent, got = counts(run["sent"]), counts(run["received"])
    got = np.minimum(got, sent)             # a duplicate never makes up for a loss elsewhere
    offered, received = sent.sum(axis=0), got.sum(axis=0)
    per_interval_loss = [_pct(o - r, o) for o, r in zip(offered, received)]
    util, links = [], []
    for row in run.get("links", []):
        u = link_utilisation(row["tx_bytes"], run.get("sample_times", []), row["capacity_mbps"])
        util.append((u.tolist() + [0.0] * n)[:n])
        links.append({"link": row["link"], "capacity_mbps": row["capacity_mbps"],
                      "max": float(u.max(initial=0.0)), "p95": float(np.percentile(u, 95)) if u.size else 0.0,
                      "busy": int(np.sum(u >= BUSY))})
    util = np.array(util, dtype=np.float64).reshape(-1, n)
    ods = sorted(({"pair": p, "offered_bytes": int(s.sum()), "received_bytes": int(g.sum()),
                   "loss_pct": _pct(s.sum() - g.sum(), s.sum())} for p, s, g in zip(pairs, sent, got)),
                 key=lambda r: (-(r["offered_bytes"] - r["received_bytes"]), r["pair"]))
    worst = int(np.argmax(per_interval_loss)) if n else 0
    return {
        "offered_bytes": int(offered.sum()), "received_bytes": int(received.sum()),
        "loss_pct": _pct(offered.sum() - received.sum(), offered.sum()),
        "per_interval": [{"i": i, "offered_bytes": int(offered[i]), "received_bytes": int(received[i]),
                          "loss_pct": per_interval_loss[i],
                          "max_util": float(util[:, i].max(initial=0.0)),
                          "busy_links": int(np.sum(util[:, i] >= BUSY))} for i in range(n)],
        "lossy_intervals": int(sum(1 for x in per_interval_loss if x > 100 * LOSSY)),
        "worst_interval": {"i": worst, "loss_pct": per_interval_loss[worst] if n else 0.0},
        "ods": ods,
        "links": sorted(links, key=lambda r: r["link"]),
        "busy_link_intervals": int(np.sum(util >= BUSY)),
        "busy_links": int(np.sum(util.max(axis=1, initial=0.0) >= BUSY)) if util.size else 0,
        "link_p95_max": max((r["p95"] for r in links), default=0.0),
        "te": summarise_decisions(run.get("decisions", [])),
    }


# --- rendering ----------------------------------------------------------------------------------

def _clock(report: dict, i: int) -> str:
    return time.strftime("%H:%M", time.gmtime(report["plan"]["start_time"] + 300 * i))


def _mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def render(report: dict) -> str:
    scn, plan = report["scenario"], report["plan"]
    fit = plan["fit"]
    res = report.get("analysis", {})
    modes = [m for m in ("off", "on") if m in res]
    n = plan["stop"] - plan["start"]
    ref = report.get("reference", {})
    lines = ["", "Foresight TE lab report", "=" * 78, EXPLANATION, "",
             f"replay      {n} five-minute samples from "
             f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(plan['start_time']))} UTC (evaluation span, "
             f"index {plan['start']}..{plan['stop'] - 1}), {scn['step_real_s']:g} s each; "
             f"{len(plan['pairs'])} of {fit['od_pairs']} OD pairs as UDP flows, each over "
             f"{scn.get('sockets', 1)} source port(s) ({fit['kept_share']:.1%} of the fit-window traffic; "
             f"pairs under {scn['min_flow_mbps']:g} Mbit/s dropped)",
             f"chosen on   the fit span: {fit['windows']} windows at {_clock(report, 0)} UTC; demand x"
             f"{plan['demand_scale']:.4g} (mean total {fit['total_mbps_mean']:g} Mbit/s, p95 "
             f"{fit['total_mbps_p95']:.1f}), link capacities x{plan['bw_scale']:.4g}; there shortest paths "
             f"had MLU > 1 in {fit['sp_over_1']:.0%} of samples (p95 {fit['sp_mlu_p95']:.2f}), the LP "
             f"optimum p95 {fit['lp_mlu_p95']:.2f}",
             f"TE          apps.te.app, k={scn['k']}, q{scn['quantile']:g} forecast "
             f"+{scn['horizon_s'] / 60:g} min, threshold {scn['threshold']:g}; TE off: the controller's "
             f"shortest paths ({scn['path_metric']})"]
    if report.get("predictor"):
        lines.append(f"predictor   trained on the fit span only in {report['predictor']['trained_s']} s "
                     f"({report['predictor']['candidates']}), {report['predictor']['series']} series")
    if ref.get("sp_mlu"):
        sp, lp = np.array(ref["sp_mlu"]), np.array(ref["lp_mlu"])
        lines.append(f"reference   on the replayed matrices: shortest-path MLU p95 "
                     f"{np.percentile(sp, 95):.2f} max {sp.max():.2f} (> 1 in {int(np.sum(sp > 1))} of "
                     f"{len(sp)} samples); LP optimum "
                     f"p95 {np.percentile(lp, 95):.2f} max {lp.max():.2f} (> 1 in {int(np.sum(lp > 1))})")
    if not modes:
        lines.append("\n(no run completed)")
        return "\n".join(lines)
    head = "".join(f"{'TE ' + m:>16}" for m in modes)
    lines += ["", f"{'':<34}{head}"]

    def row(label, fmt):
        lines.append(f"{label:<34}" + "".join(f"{fmt(res[m]):>16}" for m in modes))

    row("offered", lambda a: _mb(a["offered_bytes"]))
    row("received", lambda a: _mb(a["received_bytes"]))
    row("loss", lambda a: f"{a['loss_pct']:.2f} %")
    row("lossy intervals (> 1 %)", lambda a: f"{a['lossy_intervals']} of {n}")
    row("worst interval loss",
        lambda a: f"{a['worst_interval']['loss_pct']:.1f} % {_clock(report, a['worst_interval']['i'])}")
    row("busy link-intervals (>= 90 %)", lambda a: str(a["busy_link_intervals"]))
    row("links ever busy", lambda a: str(a["busy_links"]))
    row("highest link p95 utilisation", lambda a: f"{a['link_p95_max']:.0%}")
    row("TE steps / reroutes",
        lambda a: f"{a['te']['steps']} / {a['te']['reroutes']}" if a["te"]["steps"] else "-")

    lines += ["", "per hour of the replay (mean of its 5-minute intervals; busy = link-intervals >= 90 %)",
              f"  {'from':>5} {'offered':>9}" + "".join(f"{'loss ' + m:>10}{'busy ' + m:>9}" for m in modes)
              + (f"{'ref SP':>8}{'ref LP':>8}" if ref.get("sp_mlu") else "")]
    for lo in range(0, n, 12):
        hi = min(n, lo + 12)
        first = res[modes[0]]["per_interval"][lo:hi]
        offered = sum(x["offered_bytes"] for x in first) * 8 / 1e6 / ((hi - lo) * scn["step_real_s"])
        text = f"  {_clock(report, lo):>5} {offered:>6.1f} Mb"
        for m in modes:
            part = res[m]["per_interval"][lo:hi]
            o = sum(x["offered_bytes"] for x in part)
            r = sum(x["received_bytes"] for x in part)
            text += f"{_pct(o - r, o):>8.2f} %{sum(x['busy_links'] for x in part):>9d}"
        if ref.get("sp_mlu"):
            text += f"{max(ref['sp_mlu'][lo:hi]):>8.2f}{max(ref['lp_mlu'][lo:hi]):>8.2f}"
        lines.append(text)

    by_link = {m: {r["link"]: r for r in res[m]["links"]} for m in modes}
    shown = sorted({r["link"] for m in modes for r in res[m]["links"] if r["max"] >= 0.5},
                   key=lambda name: -max(by_link[m][name]["p95"] for m in modes if name in by_link[m]))
    lines += ["", "links reaching 50 % in either run (utilisation per interval: max, p95, busy intervals)",
              f"  {'link':<18}{'Mbit/s':>7}"
              + "".join(f"{'max ' + m:>9}{'p95':>6}{'busy':>6}" for m in modes)]
    for name in shown:
        cap = next(by_link[m][name]["capacity_mbps"] for m in modes if name in by_link[m])
        text = f"  {name:<18}{cap:>7.2f}"
        for m in modes:
            r = by_link[m].get(name)
            text += f"{r['max']:>9.0%}{r['p95']:>6.0%}{r['busy']:>6d}" if r else f"{'-':>21}"
        lines.append(text)

    worst = []
    for m in modes:
        for od in res[m]["ods"][:5]:
            if od["offered_bytes"] > od["received_bytes"] and od["pair"] not in worst:
                worst.append(od["pair"])
    if worst:
        by_od = {m: {od["pair"]: od for od in res[m]["ods"]} for m in modes}
        lines += ["", "worst OD pairs (most bytes lost in either run)",
                  f"  {'pair':<20}{'offered':>10}" + "".join(f"{'loss ' + m:>12}" for m in modes)]
        for pair in worst:
            first = by_od[modes[0]][pair]
            lines.append(f"  {pair:<20}{_mb(first['offered_bytes']):>10}"
                         + "".join(f"{by_od[m][pair]['loss_pct']:>10.2f} %" for m in modes))

    if "on" in res:
        te = res["on"]["te"]
        lines += ["", f"TE decisions: {te['steps']} steps, TM source "
                      + (", ".join(f"{k} {v}" for k, v in te["sources"].items()) or "-")
                      + "; actions " + (", ".join(f"{k} {v}" for k, v in te["actions"].items()) or "-")
                      + f"; {te['reroutes']} reroutes moving {te['od_moves']} OD pairs in all"]

        def fmt(v):
            return "-" if v is None else f"{v:.2f}"
        lines.append(f"  highest predicted MLU {fmt(te['predicted_mlu_max'])} (the plan in place on the TM "
                     f"planned for), highest measured {fmt(te['measured_mlu_max'])} (port statistics)")
        if te["reroute_steps"]:
            lines.append(f"  {'time':>5}  {'source':<9}{'predicted':>10}{'measured':>10}{'new plan':>10}"
                         f"{'ODs moved':>11}")
        for r in te["reroute_steps"][:12]:
            when = "-" if r["app_time"] is None else time.strftime("%H:%M", time.gmtime(r["app_time"]))
            lines.append(f"  {when:>5}  {str(r['source']):<9}{fmt(r['predicted_mlu']):>10}"
                         f"{fmt(r['measured_mlu']):>10}{fmt(r['planned_mlu']):>10}{r['moved']:>11d}")
        if len(te["reroute_steps"]) > 12:
            lines.append(f"  ... {len(te['reroute_steps']) - 12} more in the JSON report")
    groups = report["runs"].get("on", {}).get("route_groups")
    te = res.get("on", {}).get("te")
    if groups:
        lines.append(f"  route groups at the end: {groups['route_groups']} on the switches, "
                     f"{groups['carried_traffic']} of them carried traffic; OD pairs split over several "
                     f"routes in the final plan: {te.get('split_ods', 0) if te else 0}")
    exits = [f"TE {m} {report['runs'][m]['controller_exit_s']:.2f} s" for m in modes
             if report["runs"][m].get("controller_exit_s") is not None]
    lines += ["", "teardown    controller exited in " + (", ".join(exits) or "-")
              + (f"; whole lab {report['run_s']:.0f} s" if report.get("run_s") else "")]
    return "\n".join(lines)
