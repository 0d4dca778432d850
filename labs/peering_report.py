"""The ``foresight lab run peering`` report: what each scheme cost, overloaded and lost.

Pure functions of the raw run (counters at every step boundary, bytes sent and
received per step, the app's decision and session lines), so they run on synthetic
counters in unit tests. ``analyse`` gives, per scheme, the figures
``reports/peering.json`` holds under ``schemes``; ``render`` sets them side by side.
"""

from __future__ import annotations

import time

import numpy as np

from apps.peering.billing import p95

FRAME = 1200  # bytes per datagram on the wire (labs/tm_peer.py)
OVERLOAD = 0.95  # an exit at or above this share of its capacity in a step is overloaded
ARRIVED = 0.8  # a session's demand has arrived when its exit carries this share of the SLA

EXPLANATION = """\
What the figures mean
  offered       per exit and 5-minute step: what the switch handed to the neighbour's shaped link (its
                qdisc's bytes sent, plus drops, plus the change in its backlog), in Mbit/s.
  transit p95   95th percentile of transit's offered rate over the replayed steps (burstable billing:
                the top 5 % of steps dropped, the highest left), lab Mbit/s.
  overload      steps in which any exit was offered at least 95 % of its capacity.
  lost          bytes sent by the senders that no neighbour received (queues overflowing at a full exit,
                packets with no route while a session changes).
  changes       exit changes per prefix per day: how often a prefix group's fast-failover group pointed at
                another exit between two steps (read from the switch), times its prefixes, per prefix,
                scaled to 24 h of replayed time.
  bring-up      per session the plan asked for: request -> BGP established -> first traffic steered onto
                it (wall seconds).
  lead          per session: app-clock minutes between the session being established and its demand
                arriving (the exit first carrying 80 % of the committed rate the request asked for).
  failover      a peer carrying traffic killed (bgpd and zebra SIGKILL, its link down) under a 1 kHz probe
                toward one of its prefixes: the longest run of probes no neighbour received, in ms.
"""


def session_json(s) -> dict:
    return {
        "name": s.name,
        "state": s.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number[s.state].name,
        "detail": s.detail,
        "prefixes": s.prefixes,
        "capacity_mbps": s.capacity_mbps,
        "slice_mbps": s.slice_mbps,
        "groups": s.groups,
        "committed_mbps": s.sla.committed_mbps,
    }


def plan_json(p) -> dict:
    return {
        "scheme": p.scheme,
        "basis": p.basis,
        "transit_p95_mbps": p.transit_p95_mbps,
        "degraded": p.degraded,
        "groups": {g.group: g.exit for g in p.groups},
        "decisions": [
            {"time": d.time, "kind": d.kind, "target": d.target, "detail": d.detail} for d in p.decisions
        ],
    }


def offered(samples: list[dict], capacities: dict[str, float]) -> dict[str, list[float]]:
    """Exit -> offered Mbit/s per step, from the qdisc counters at the step boundaries."""
    out: dict[str, list[float]] = {name: [] for name in capacities}
    for a, b in zip(samples, samples[1:]):
        dt = b["t"] - a["t"]
        for name in capacities:
            (s0, d0, q0), (s1, d1, q1) = a["qdisc"].get(name, [0, 0, 0]), b["qdisc"].get(name, [0, 0, 0])
            got = max(0, s1 - s0) + max(0, d1 - d0) * FRAME + (q1 - q0)
            out[name].append(max(0.0, got * 8 / dt / 1e6) if dt > 0 else 0.0)
    return out


def exit_changes(samples: list[dict]) -> int:
    """How many times a group's first live exit differed from the step before."""
    changes = 0
    for a, b in zip(samples, samples[1:]):
        for group, exit_ in b["groups"].items():
            before = a["groups"].get(group)
            if before is not None and before != exit_:
                changes += 1
    return changes


def merged_loss(sent: dict, reports: dict[str, dict]) -> dict:
    """The longest run of probe datagrams no receiver got, from the sender's report and
    every receiver's (``labs.udp_probe`` reports: gaps, last sequence number)."""
    total = int(sent.get("sent", 0))
    interval = float(sent.get("interval_s", 0.001))
    got = np.zeros(total, dtype=bool)
    for report in reports.values():
        if not report or not report.get("received"):
            continue
        last = int(report["last_seq"])
        covered = np.zeros(total, dtype=bool)
        first = 0
        gaps = report.get("gaps", [])
        if gaps and gaps[0][0] == -1:
            first = int(gaps[0][1])
        covered[first : last + 1] = True
        for before, after, *_ in gaps:
            if before >= 0:
                covered[before + 1 : after] = False
        got |= covered
    lost = int((~got).sum())
    run = longest = 0
    for ok in got:
        run = 0 if ok else run + 1
        longest = max(longest, run)
    return {"probes": total, "lost": lost, "failover_loss_ms": round(longest * interval * 1000.0, 1)}


def _sessions(decisions: list[dict]) -> list[dict]:
    """Per session the plan (or an operator) asked for: request, established, first steered (wall s)."""
    out, open_ = [], {}
    for d in decisions:
        if d.get("kind") == "session" and d.get("numbers", {}).get("requested") and "the plan" in d["detail"]:
            open_[d["target"]] = {"name": d["target"], "requested": d["wall"], "requested_app": d["time"]}
        elif d.get("kind") == "session" and d.get("numbers", {}).get("established") and d["target"] in open_:
            open_[d["target"]].setdefault("established", d["wall"])
            open_[d["target"]].setdefault("established_app", d["time"])
            open_[d["target"]]["committed_mbps"] = d.get("numbers", {}).get("committed_mbps", 0.0)
        elif d.get("kind") == "steer" and d["target"] in open_ and "established" in open_[d["target"]]:
            row = open_.pop(d["target"])
            row["steered"] = d["wall"]
            out.append(row)
    return out + list(open_.values())


def analyse(run: dict, plan, scn) -> dict:
    """The figures of one scheme over the measured steps (the warm-up steps left out)."""
    caps = {n.name: n.capacity_mbps for n in plan.neighbours}
    warm = scn.warmup
    samples = run.get("samples", [])[warm:]
    rates = offered(samples, caps)
    steps = len(next(iter(rates.values()), []))
    over = [i for i in range(steps) if any(rates[n][i] >= OVERLOAD * caps[n] for n in caps)]
    sent = sum(sum(v[warm:]) for v in run.get("sent", {}).values())
    received = sum(sum(v[warm:]) for v in run.get("received", {}).values())
    days = max(steps, 1) * 300.0 / 86400.0
    prefixes_per_group = scn.prefixes_per_group
    n_prefixes = sum(len(g.prefixes) for g in plan.groups)
    changes = exit_changes(samples) * prefixes_per_group
    out = {
        "transit_p95_mbps": round(p95(rates.get("transit", [])), 3) if steps else None,
        "overload_intervals": len(over),
        "lost_bytes": int(max(0, sent - received)),
        "changes_per_prefix_day": round(changes / n_prefixes / days, 3) if n_prefixes else 0.0,
        "steps": steps,
        "sent_bytes": int(sent),
        "received_bytes": int(received),
        "exit_p95_mbps": {n: round(p95(v), 3) for n, v in rates.items() if v},
        "exit_peak_utilisation": {n: round(max(v) / caps[n], 3) for n, v in rates.items() if v},
        "overloaded_steps_by_exit": {
            n: sum(1 for x in v if x >= OVERLOAD * caps[n]) for n, v in rates.items()
        },
        "offered_mbps": {n: [round(x, 3) for x in v] for n, v in rates.items()},
        "sessions_up_at_end": [p["name"] for p in run.get("peerings", []) if p["state"] == "ESTABLISHED"],
        "decisions": sum(1 for d in run.get("decisions", []) if d.get("kind") != "session"),
    }
    if run.get("scheme") == "predictive":
        bringups = _sessions(run.get("decisions", []))
        t0 = samples[0]["t"] if samples else 0.0
        step_real = (samples[-1]["t"] - t0) / max(steps, 1) if steps else 1.0
        leads = []
        for b in bringups:
            if "steered" in b:
                b["bringup_s"] = round(b["steered"] - b["requested"], 2)
                b["established_s"] = round(b["established"] - b["requested"], 2)
            committed = b.get("committed_mbps", 0.0)
            series = rates.get(b["name"], [])
            if "established" in b and committed > 0 and series:
                first = int(max(0, (b["established"] - t0) // step_real))
                arrival = next((i for i in range(first, steps) if series[i] >= ARRIVED * committed), None)
                if arrival is not None:
                    b["lead_min"] = round((arrival * step_real + t0 - b["established"]) / step_real * 5.0, 1)
                    leads.append(b["lead_min"])
        timed = [b["bringup_s"] for b in bringups if "bringup_s" in b]
        out["bringup_s"] = round(max(timed), 2) if timed else None
        out["bringups"] = bringups
        out["lead_min"] = leads
        fo = run.get("failover", {})
        out["failover_loss_ms"] = fo.get("failover_loss_ms")
        out["failover"] = {k: v for k, v in fo.items() if k != "killed_at"}
    return out


def render(report: dict) -> str:
    plan = report["plan"]
    lines = [
        f"Peering lab: {plan['groups']} prefix groups, {plan['prefixes']} prefixes, replay from "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(plan['start_time']))} UTC, "
        f"{report['scenario']['samples']} steps of 5 min ({report['scenario']['step_real_s']:g} s each)",
        "neighbours: "
        + ", ".join(
            f"{n['name']} AS{n['asn']} {n['kind']} {n['capacity_mbps']:g} Mbit/s ({n['announces']} prefixes)"
            for n in plan["neighbours"]
        ),
        "",
    ]
    schemes = report.get("schemes", {})
    head = f"{'':28}" + "".join(f"{s:>14}" for s in schemes)
    lines.append(head)
    for key, label in (
        ("transit_p95_mbps", "transit p95 (Mbit/s)"),
        ("overload_intervals", "overload steps (>=95%)"),
        ("lost_bytes", "lost bytes"),
        ("changes_per_prefix_day", "changes/prefix/day"),
        ("decisions", "decisions"),
    ):
        lines.append(f"{label:28}" + "".join(f"{_fmt(schemes[s].get(key)):>14}" for s in schemes))
    for s, a in schemes.items():
        lines.append(
            f"  {s}: exit peak utilisation "
            + ", ".join(f"{k} {v:.0%}" for k, v in a["exit_peak_utilisation"].items())
            + "; up at the end: "
            + ", ".join(a["sessions_up_at_end"])
        )
    pred = schemes.get("predictive")
    plain = schemes.get("plain_bgp")
    reactive = schemes.get("reactive")
    if pred:
        lines += ["", "predictive:"]
        for b in pred.get("bringups", []):
            lines.append(
                f"  {b['name']}: requested -> established {b.get('established_s', '-')} s -> steered "
                f"{b.get('bringup_s', '-')} s; lead {b.get('lead_min', '-')} min"
            )
        lines.append(f"  failover: {pred.get('failover')}")
        lines += ["", "goals (measured in this run):"]
        if reactive is not None:
            ratio = (
                pred["overload_intervals"] / reactive["overload_intervals"]
                if reactive["overload_intervals"]
                else (0.0 if not pred["overload_intervals"] else float("inf"))
            )
            lines.append(
                f"  overload steps predictive/reactive {pred['overload_intervals']}/"
                f"{reactive['overload_intervals']} = {ratio:.2f} (goal <= 0.10)"
            )
        if plain is not None and plain["transit_p95_mbps"]:
            cut = 1 - pred["transit_p95_mbps"] / plain["transit_p95_mbps"]
            lines.append(
                f"  transit p95 {pred['transit_p95_mbps']:.2f} vs plain BGP {plain['transit_p95_mbps']:.2f} "
                f"Mbit/s: {cut:.1%} lower (goal >= 10 %)"
            )
        lines.append(f"  changes per prefix per day {pred['changes_per_prefix_day']} (goal <= 6)")
        lines.append(
            f"  bring-up (decision -> routes -> steered) worst {pred.get('bringup_s')} s (goal < 5 s)"
        )
        lines.append(f"  failover loss window {pred.get('failover_loss_ms')} ms (goal < 1000 ms)")
    lines += ["", EXPLANATION]
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def plot(report: dict, path) -> None:
    """Exit utilisation over the replay per scheme, with the decisions as ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = report.get("schemes", {})
    if not schemes:
        return
    caps = {n["name"]: n["capacity_mbps"] for n in report["plan"]["neighbours"]}
    fig, axes = plt.subplots(len(schemes), 1, figsize=(11, 3.2 * len(schemes)), sharex=True, squeeze=False)
    for ax, (scheme, a) in zip(axes[:, 0], schemes.items()):
        for name, series in a["offered_mbps"].items():
            ax.plot([5 * i / 60 for i in range(len(series))], [x / caps[name] for x in series], label=name)
        ax.axhline(OVERLOAD, color="red", linestyle=":", linewidth=1)
        run = report["runs"].get(scheme, {})
        measured = run.get("samples", [])[report["scenario"].get("warmup", 0):]
        t0 = measured[0]["t"] if measured else 0.0
        step = report["scenario"]["step_real_s"]
        for d in run.get("decisions", []):
            if d.get("kind") in ("steer", "establish", "withdraw", "failover", "request", "move"):
                ax.axvline((d["wall"] - t0) / step * 5 / 60, color="grey", alpha=0.15, linewidth=0.8)
        ax.set_ylabel("utilisation")
        ax.set_title(
            f"{scheme}: transit p95 {a['transit_p95_mbps']} Mbit/s, {a['overload_intervals']} overload steps"
        )
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("hours into the replay")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
