"""``foresight lab run slices``: slices scaled ahead of real Abilene demand.

Two slices on the 12-router Abilene network, each carrying one real Abilene OD
series (5-minute Mbit/s, scaled down) from a client host on the pair's source
router to members on its destination router:

1. **Choosing the demand, from the fit span only** (``timestamp_index < 2880``):
   the OD pairs with the strongest daily swing (amplitude of the mean daily profile
   over the mean, among pairs that are smooth: lag-1 autocorrelation > 0.9, and busy:
   mean > 50 Mbit/s), on routers no other chosen pair uses. Each is scaled so its
   fit-span 99th percentile is ``--peak-mbps``. The replay starts on the first
   evaluation day at the earliest daily trough of the chosen pairs and runs to the
   latest daily peak (both from the fit-span profiles), so it contains the ramps.
2. **The predictor** (its own process) is given each slice's fit-span history as
   series ``slice:<name>``, trained for the scaling horizon on that alone, then given
   the evaluation-span history before the replay start (the past, not trained on).
3. **The controller** runs the slices app with its clock mapping one 5-minute
   sample to ``--step-real-s`` real seconds: the replay's first sample is at the
   clock's origin. Each step it measures the slice's offered load at its VIP meter,
   sends it to the predictor, and sizes the slice from the forecast at the slice's
   SLA quantile ``--horizon-s`` ahead (decisions in the slice's WatchSlice stream).
4. **Mininet** replays the scaled series as paced UDP from the client host to the
   slice VIP, one sample per step.

The report lists every scaling change with the forecast it acted on and the load
measured afterwards, and for every scale-up its **lead time**: from the decision to
the first step whose measured load exceeded the capacity the slice had before it
(virtual minutes of the replayed day, and real seconds). Positive = capacity was
there before the load; 0 = the load was already over (a reactive scale-up).
Printed, and written to reports/slices.txt and reports/slices.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from labs.lab import FAST_MODELS, ROOT, Lab, LabError, PredictorProcess, StreamCollector, write_report
from predictors.panel import SPLITS, Panel, load_dataset

LOG = logging.getLogger(__name__)

PEER = ROOT / "labs" / "tm_peer.py"
UDP_PORT = 9000


@dataclass(frozen=True)
class Demand:
    """One slice and the real series it carries."""

    name: str                   # slice name
    pair: str                   # dataset series, e.g. "WASHng->IPLSng"
    client: str                 # switch (label) its client host is on
    server: str                 # switch (label) its members are on
    scale: float                # lab Mbit/s per dataset Mbit/s
    vip_cidr: str
    per_member_mbps: float
    max_members: int
    bandwidth_mbps: float


@dataclass
class Scenario:
    """Everything a run needs; ``plan`` fills it from the dataset's fit span."""

    topology: str = "abilene"
    bw_scale: float = 0.02
    hosts_per_switch: int = 4
    slices: int = 2
    peak_mbps: float = 16.0             # fit-span p99 of each pair maps to this
    per_member_mbps: float = 4.0
    max_members: int = 4
    sla_quantile: float = 0.9
    horizon_s: float = 900.0            # virtual seconds ahead (a multiple of the 300 s step)
    step_real_s: float = 2.0            # real seconds per 5-minute sample
    samples: int = 0                    # 0: from the earliest trough to the latest peak
    scale_down_after_s: float = 1800.0  # virtual
    setup_s: float = 90.0               # real seconds allowed for the network to come up
    place: dict | None = None           # slice name -> (client switch, server switch) override


# --- choosing the demand (fit span only) ---------------------------------------------------

def daily_profile(panel: Panel, col: int, fit_end: int) -> np.ndarray:
    per_day = panel.period_steps()
    days = fit_end // per_day
    return np.nanmean(panel.values[:days * per_day, col].reshape(days, per_day), axis=0)


def pick_pairs(panel: Panel, fit_end: int, count: int) -> list[str]:
    """The ``count`` smooth, busy pairs with the largest daily swing, on distinct routers."""
    fit = panel.values[:fit_end]
    mean = np.nanmean(fit, axis=0)
    centred = np.nan_to_num(fit - mean)
    lag1 = (centred[1:] * centred[:-1]).sum(0) / np.maximum((centred ** 2).sum(0), 1e-12)
    scores = []
    for j, name in enumerate(panel.names):
        if lag1[j] > 0.9 and mean[j] > 50:
            prof = daily_profile(panel, j, fit_end)
            scores.append(((prof.max() - prof.min()) / mean[j], name))
    chosen, used = [], set()
    for _, name in sorted(scores, reverse=True):
        src, dst = name.split("->")
        if src not in used and dst not in used:
            chosen.append(name)
            used |= {src, dst}
        if len(chosen) == count:
            return chosen
    raise LabError(f"only {len(chosen)} pairs qualify; wanted {count}")


def replay_window(panel: Panel, cols: list[int], fit_end: int, samples: int) -> tuple[int, int]:
    """[start, stop) on the first evaluation day: earliest trough to latest peak."""
    per_day = panel.period_steps()
    profiles = [daily_profile(panel, c, fit_end) for c in cols]
    trough = min(int(p.argmin()) for p in profiles)
    peak = max(int(p.argmax()) for p in profiles)
    day0 = -(-fit_end // per_day) * per_day
    start = day0 + trough
    stop = start + (samples or max(peak - trough + 1, per_day // 4))
    return start, stop


def plan(scn: Scenario, panel: Panel) -> tuple[list[Demand], int, int]:
    split = SPLITS["abilene"]
    pairs = pick_pairs(panel, split.fit_end, scn.slices)
    demands = []
    for k, pair in enumerate(pairs):
        col = panel.names.index(pair)
        p99 = float(np.nanpercentile(panel.values[:split.fit_end, col], 99))
        name = f"od{k + 1}"
        src, dst = pair.split("->")
        client, server = (scn.place or {}).get(name, (src, dst))
        demands.append(Demand(name, pair, client, server, scn.peak_mbps / p99, f"10.0.{110 + k}.0/29",
                              scn.per_member_mbps, scn.max_members,
                              round(1.25 * scn.per_member_mbps * scn.max_members, 3)))
    start, stop = replay_window(panel, [panel.names.index(d.pair) for d in demands], split.fit_end,
                                scn.samples)
    if stop > split.eval_end:
        raise LabError(f"replay [{start}, {stop}) runs past the evaluation span (< {split.eval_end})")
    return demands, start, stop


# --- the run ---------------------------------------------------------------------------------

def series(name: str) -> str:
    return f"slice:{name}"


def prepare_predictor(predictor: PredictorProcess, panel: Panel, demands: list[Demand], fit_end: int,
                      start: int, horizon_s: float) -> dict:
    """Train on the fit span alone; the evaluation history before ``start`` goes in after."""
    def samples(lo, hi):
        for d in demands:
            col = panel.names.index(d.pair)
            for i in range(lo, hi):
                value = panel.values[i, col]
                if math.isfinite(value):
                    yield series(d.name), float(panel.times[i]), float(value * d.scale)
    out = predictor.train_on_fit_span(samples, fit_end, start, horizon_s, kind="slice")
    models = predictor.client.models()
    return dict(out, active=[m.version for m in models.models if m.active])


def run(scn: Scenario, panel: Panel | None = None, workdir: Path | None = None) -> dict:
    from apps.slices.client import SlicesClient
    from proto import slices_pb2 as spb

    panel = panel or load_dataset("abilene")
    split = SPLITS["abilene"]
    demands, start, stop = plan(scn, panel)
    n = stop - start
    report: dict = {"scenario": asdict(scn), "demands": [asdict(d) for d in demands],
                    "replay": {"start_index": start, "stop_index": stop, "samples": n,
                               "start_time": float(panel.times[start]),
                               "time_scale": 300 / scn.step_real_s}}
    own = Path(workdir or tempfile.mkdtemp(prefix="foresight-slices-"))
    lab = predictor = watcher = slices = None
    procs: list = []                    # every process started in a Mininet host
    try:
        predictor = PredictorProcess(own, horizons_s=(scn.horizon_s,), models=FAST_MODELS).start()
        report["predictor"] = prepare_predictor(predictor, panel, demands, split.fit_end, start,
                                                scn.horizon_s)
        real_origin = time.time() + scn.setup_s
        config = {
            "controller": {"providers": ["apps.slices.app:provider"],
                           "telemetry": {"poll_interval_s": 0.5},
                           "predictor": {"address": predictor.address, "timeout_s": 5.0},
                           "clock": {"time_scale": 300 / scn.step_real_s,
                                     "virtual_origin_s": float(panel.times[start]),
                                     "real_origin_s": real_origin}},
            "slices": {"store_path": str(own / "slices.sqlite"), "drain_s": 2 * scn.step_real_s,
                       "scaling": {"enabled": True, "interval_s": scn.step_real_s, "horizon_s": scn.horizon_s,
                                   "scale_down_after_s": scn.scale_down_after_s}},
        }
        lab = Lab(scn.topology, bw_scale=scn.bw_scale, hosts_per_switch=scn.hosts_per_switch,
                  controller_config=config, workdir=own / "lab")
        lab.start()
        lab.wait_discovery(timeout_s=90)
        lab.wait_edges()
        slices = SlicesClient(lab.controller.grpc_address)
        _, stream = slices.watch_started("")          # every slice event from here on, for the report
        watcher = StreamCollector(stream)
        watcher.start()
        by_label = {s.label: s.name for s in lab.spec.switches}
        clients = {}
        receivers = {d.name: [] for d in demands}
        for d in demands:
            hosts = [lab.net.get(h) for h in lab.topo_hosts(by_label[d.server])][:d.max_members]
            for host in hosts:
                slices.register_member("pool-" + d.name, host.name, host.IP())
                host.cmd("ping -c1 -W2 10.0.0.1 >/dev/null")      # the controller sees it
                receivers[d.name].append(host.popen([sys.executable, str(PEER), "recv",
                                                     "--port", str(UDP_PORT)],
                                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
                procs.append(receivers[d.name][-1])
            view = slices.create(d.name, client="lab", vip_cidr=d.vip_cidr, bandwidth_mbps=d.bandwidth_mbps,
                                 per_member_mbps=d.per_member_mbps, pool="pool-" + d.name,
                                 max_members=d.max_members, priority="silver",
                                 sla_quantile=scn.sla_quantile, members=1)
            clients[d.name] = (lab.net.get(lab.topo_hosts(by_label[d.client])[0]), view.service_vip)
        if time.time() > real_origin - scn.step_real_s:
            raise LabError(f"the network took longer than setup_s={scn.setup_s:g} s to come up; raise it")
        senders = {}
        for d in demands:
            host, vip = clients[d.name]
            col = panel.names.index(d.pair)
            rates = [max(0.0, float(np.nan_to_num(v)) * d.scale) for v in panel.values[start:stop, col]]
            plan_file = own / f"plan-{d.name}.json"
            plan_file.write_text(json.dumps({"port": UDP_PORT, "flows": {vip: rates}}))
            # Sample k plays from 0.75 of a step before the k-th scaling step, so the
            # meter polls just before that step measure sample k (see Autoscaler).
            senders[d.name] = host.popen(
                [sys.executable, str(PEER), "send", "--plan", str(plan_file),
                 "--start", f"{real_origin - 0.75 * scn.step_real_s:.3f}", "--step-s", str(scn.step_real_s)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(senders[d.name])
            report.setdefault("replayed_mbps", {})[d.name] = rates
        print(f"replaying {n} samples of {', '.join(d.pair for d in demands)} from "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(panel.times[start]))} UTC, "
              f"{scn.step_real_s:g} s each ({n * scn.step_real_s:.0f} s)", flush=True)
        for d in demands:
            out, err = senders[d.name].communicate(timeout=n * scn.step_real_s + scn.setup_s + 60)
            vip = clients[d.name][1]
            sent_by_vip = json.loads(out.strip().splitlines()[-1])["sent"]
            report.setdefault("sent_bytes", {})[d.name] = sent_by_vip[vip]
        time.sleep(scn.step_real_s)       # the last sample's step
        for d in demands:                 # what reached the members (their replies carry the VIP)
            got = [json.loads(proc.communicate(timeout=10)[0].strip().splitlines()[-1])["received"]
                   for proc in receivers[d.name]]
            report.setdefault("received_bytes", {})[d.name] = sum(b for r in got for by in r.values()
                                                                  for b in by.values())
        report["final"] = {d.name: _slice_summary(slices.get(d.name)) for d in demands}
        status = lab.client.status()
        report["controller"] = {k: int(v) for k, v in sorted(status.counters.items())}
        watcher.stop()
        report["decisions"] = {d.name: [_decision_row(e, spb) for e in watcher.events
                                        if e.slice_name == d.name and e.HasField("decision")]
                               for d in demands}
    finally:
        if watcher is not None and watcher.is_alive():
            watcher.stop()
        for proc in procs:             # whatever is still running after a failure
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        if slices is not None:
            slices.close()
        if lab is not None:
            report["controller_exit_s"] = lab.stop()
        if predictor is not None:
            predictor.stop()
        if workdir is None and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(own, ignore_errors=True)
    report["analysis"] = {d.name: analyse(report["decisions"][d.name], d, scn, float(panel.times[start]))
                          for d in demands} if "decisions" in report else {}
    return report


def _slice_summary(view) -> dict:
    return {"active_members": view.active_members, "members": len(view.members),
            "bytes_in": view.rates.bytes_in, "dropped_bytes_in": view.rates.dropped_bytes_in}


def _decision_row(event, spb) -> dict:
    d = event.decision
    return {"t": d.decided_at_s, "action": spb.ScalingAction.Name(d.action).lower(),
            "basis": spb.DemandBasis.Name(d.basis).lower(), "from": d.current_members, "to": d.target_members,
            "measured": d.measured_mbps, "forecast": d.forecast_mbps if d.HasField("forecast_mbps") else None,
            "horizon_s": d.forecast_horizon_s, "reason": d.reason}


# --- analysis ---------------------------------------------------------------------------------

def analyse(rows: list[dict], demand: Demand, scn: Scenario, origin: float) -> dict:
    """Lead times of scale-ups, what followed each forecast, and capacity shortfalls."""
    rows = sorted((r for r in rows if r["t"] >= origin), key=lambda r: r["t"])
    measured_at = {round(r["t"]): r["measured"] for r in rows}
    scale = 300 / scn.step_real_s
    changes = []
    for i, r in enumerate(rows):
        if r["action"] not in ("scale_up", "scale_down", "dissolve"):
            continue
        row = dict(r, followed=measured_at.get(round(r["t"] + scn.horizon_s)))
        if r["action"] == "scale_up":
            old = r["from"] * demand.per_member_mbps
            if r["measured"] > old:
                row.update(lead_s=0.0, crossed_t=r["t"], outcome="reactive (load already over)")
            else:
                cross = next((x["t"] for x in rows[i + 1:] if x["measured"] > old), None)
                if cross is None:
                    row.update(lead_s=None, crossed_t=None, outcome="load stayed under the old capacity")
                else:
                    row.update(lead_s=cross - r["t"], crossed_t=cross, outcome="ahead")
            row["old_capacity"] = old
            row["lead_real_s"] = None if row["lead_s"] is None else row["lead_s"] / scale
        changes.append(row)
    # The forecast against the load measured horizon_s later, as a quantile forecast
    # (pinball loss at the SLA quantile), beside persistence: "the load now" as the forecast.
    q = scn.sla_quantile
    scored = [(r["forecast"], r["measured"], measured_at.get(round(r["t"] + scn.horizon_s))) for r in rows
              if r["forecast"] is not None]
    scored = [(f, now, then) for f, now, then in scored if then is not None]
    members, short = None, 0
    for r in rows:       # a step is short when the load it measured exceeded the capacity in place
        if members is not None and r["measured"] > members * demand.per_member_mbps:
            short += 1
        members = r["to"] if r["action"] != "dissolve" else 0
    ups = [c for c in changes if c["action"] == "scale_up"]
    leads = [c["lead_s"] for c in ups if c["lead_s"] is not None]
    return {
        "steps": len(rows),
        "changes": changes,
        "scale_ups": len(ups),
        "scale_ups_ahead": sum(1 for c in ups if (c["lead_s"] or 0) > 0),
        "lead_s_median": float(np.median(leads)) if leads else None,
        "forecast_steps": len(scored),
        "covered": (sum(1 for f, _, then in scored if then <= f) / len(scored)) if scored else None,
        "pinball_forecast": (float(np.mean([pinball(q, f, then) for f, _, then in scored]))
                             if scored else None),
        "pinball_persistence": (float(np.mean([pinball(q, now, then) for _, now, then in scored]))
                                if scored else None),
        "short_steps": short,
        "modes": sorted({r["basis"] for r in rows}),
    }


def pinball(q: float, forecast: float, actual: float) -> float:
    """Quantile loss: under-forecasts cost q per Mbit/s, over-forecasts 1 - q."""
    miss = actual - forecast
    return max(q * miss, (q - 1) * miss)


def render(report: dict) -> str:
    scn = report["scenario"]
    rep = report["replay"]
    lines = ["", "Foresight slices lab report", "=" * 72,
             f"replay      {rep['samples']} five-minute samples from "
             f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(rep['start_time']))} UTC (evaluation span, "
             f"index {rep['start_index']}..{rep['stop_index'] - 1}), {scn['step_real_s']:g} s each "
             f"(x{rep['time_scale']:g})",
             f"predictor   trained on the fit span only in "
             f"{report.get('predictor', {}).get('trained_s', '?')} s "
             f"({report.get('predictor', {}).get('candidates', '')}); forecasts q{scn['sla_quantile']:g} "
             f"at +{scn['horizon_s'] / 60:g} min"]
    for d in report["demands"]:
        a = report.get("analysis", {}).get(d["name"])
        lines += ["", f"slice {d['name']}: {d['pair']} x {d['scale']:.4f} "
                      f"(fit-span p99 -> {scn['peak_mbps']:g} Mbit/s), "
                      f"client at {d['client']}, members at {d['server']}, "
                      f"{d['per_member_mbps']:g} Mbit/s per member, 1..{d['max_members']} members, "
                      f"meter {d['bandwidth_mbps']:g} Mbit/s"]
        if not a:
            lines.append("  (no decisions recorded)")
            continue
        lines.append(f"  {'time':>5}  {'change':<16} {'basis':<8} {'forecast':>9} {'measured':>9} "
                     f"{'then':>6}  lead")
        for c in a["changes"]:
            when = time.strftime("%H:%M", time.gmtime(c["t"]))
            fc = "-" if c["forecast"] is None else f"{c['forecast']:.2f}"
            then = "-" if c["followed"] is None else f"{c['followed']:.2f}"
            lead = ""
            if c["action"] == "scale_up":
                lead = (f"{c['lead_s'] / 60:+.0f} min ({c['lead_real_s']:.1f} s real) over "
                        f"{c['old_capacity']:g} Mbit/s "
                        f"at {time.strftime('%H:%M', time.gmtime(c['crossed_t']))}"
                        if c["lead_s"] is not None and c["lead_s"] > 0 else c["outcome"])
            change = f"{c['action']} {c['from']}->{c['to']}"
            lines.append(f"  {when:>5}  {change:<16} {c['basis']:<8} {fc:>9} "
                         f"{c['measured']:>9.2f} {then:>6}  {lead}")
        cov = "n/a" if a["covered"] is None else f"{a['covered']:.0%}"
        loss = "n/a" if a["pinball_forecast"] is None else f"{a['pinball_forecast']:.3f}"
        ploss = "n/a" if a["pinball_persistence"] is None else f"{a['pinball_persistence']:.3f}"
        lines.append(f"  {a['steps']} steps, {a['scale_ups']} scale-ups "
                     f"({a['scale_ups_ahead']} ahead of the load"
                     + (f", median lead {a['lead_s_median'] / 60:.0f} min" if a["lead_s_median"] else "")
                     + "); "
                     f"load under the q{scn['sla_quantile']:g} forecast {cov} "
                     f"of {a['forecast_steps']} steps; "
                     f"q{scn['sla_quantile']:g} loss {loss} vs persistence {ploss}; "
                     f"{a['short_steps']} steps with load over the capacity in place")
        sent = sum(report.get("sent_bytes", {}).get(d["name"], []))
        got = report.get("received_bytes", {}).get(d["name"])
        if sent and got is not None:
            lines.append(f"  members received {got / 1e6:.1f} of the {sent / 1e6:.1f} MB sent "
                         f"({got / sent:.1%})")
    took = report.get("controller_exit_s")
    lines += ["", f"teardown    controller exited in {took:.2f} s" if took is not None else
              "teardown    controller had already exited"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="foresight lab run slices", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Scenario()
    ap.add_argument("--step-real-s", type=float, default=defaults.step_real_s,
                    help="real seconds per 5-minute sample (>= 1.5)")
    ap.add_argument("--samples", type=int, default=0, help="samples to replay (default: trough to peak)")
    ap.add_argument("--horizon-s", type=float, default=defaults.horizon_s)
    ap.add_argument("--peak-mbps", type=float, default=defaults.peak_mbps)
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    if args.step_real_s < 1.5:
        ap.error("--step-real-s must be >= 1.5 (the meters are polled every 0.5 s)")
    if args.horizon_s <= 0 or args.horizon_s % 300:
        ap.error("--horizon-s must be a positive multiple of 300")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scn = Scenario(step_real_s=args.step_real_s, samples=args.samples, horizon_s=args.horizon_s,
                   peak_mbps=args.peak_mbps)
    report = run(scn)
    text = render(report)
    print(text)
    write_report(Path(args.out), "slices", text, report)
    ahead = sum(a["scale_ups_ahead"] for a in report["analysis"].values())
    return 0 if ahead else 1


if __name__ == "__main__":
    sys.exit(main())
