"""``foresight lab run te``: traffic engineering on replayed real Abilene traffic.

The 12-router Abilene network with scaled-down capacities carries a span of real
Abilene traffic matrices, one paced UDP flow per OD pair (host on the source router
to host on the destination router), twice on a fresh network each time: once with
TE off (the controller's shortest paths, fast failover only) and once with the TE
app (``apps.te.app:provider``) steering OD pairs over its candidate paths from the
predictor's forecasts. Both runs replay exactly the same flows at the same times.

1. **Choosing scale and window, from the fit span only** (``timestamp_index <
   2880``): every fit-span matrix is routed by the controller's shortest paths and
   by the min-MLU LP over ``k`` candidate paths (``apps.te``). For every time of day
   the ``--samples``-long windows starting then on each fit day are pooled; the
   utilisation scale is set so the LP optimum's 95th percentile over them is
   ``lp_target`` (0.85), and the start whose windows then have shortest-path MLU
   over 1 most often wins. The demand scale makes the mean total offered load over
   those windows ``--load-mbps``; link rates are the capacities times demand scale
   over utilisation scale. OD pairs whose scaled fit-window mean is under
   ``min_flow_mbps`` get no flow (the share of traffic kept is reported).
2. **The replay** is the same time of day on the first evaluation day (2004-03-11),
   5-minute samples played in ``--step-real-s`` real seconds.
3. **The predictor** (its own process, for the TE run) gets the fit span of every
   replayed pair as series ``od:<src>-<dst>`` (scaled), is trained on that alone,
   then gets the evaluation history before the window.
4. **Measured**: bytes each sender sent and each receiver got, per OD pair and
   interval; every directed link's transmitted bytes (the switch port's interface
   counters, after its rate limiter) at every interval boundary; the TE app's decisions
   (its ``te.decisions_path`` file).

Printed, and written to reports/te.txt and reports/te.json (``te_lab_report`` analyses and renders).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from controller import cookies
from labs import te_lab_report as te_report
from labs.lab import FAST_MODELS, ROOT, Lab, LabError, PredictorProcess, write_report
from labs.te_plan import Plan, Scenario, controller_config, plan, replay_reference, series
from predictors.panel import SPLITS, Panel, load_dataset
from topologies.catalog import TopologySpec, load

LOG = logging.getLogger(__name__)

PEER = ROOT / "labs" / "tm_peer.py"
UDP_PORT = 9000
MODES = ("off", "on")


# --- the run ---------------------------------------------------------------------------------

def prepare_predictor(predictor: PredictorProcess, panel: Panel, p: Plan, fit_end: int) -> dict:
    """Train on the fit span alone; the evaluation history before the replay goes in after."""
    cols = {pair: panel.names.index(pair) for pair in p.pairs}

    def samples(lo, hi):
        for pair, col in cols.items():
            for i in range(lo, hi):
                value = panel.values[i, col]
                if math.isfinite(value):
                    yield series(pair), float(panel.times[i]), max(0.0, float(value) * p.demand_scale)
    return dict(predictor.train_on_fit_span(samples, fit_end, p.start, 300.0, kind="od"), series=len(cols))


class LinkSampler(threading.Thread):
    """Reads the transmitted-byte counters of ``intfs`` at each of the ``at`` times
    (Unix s): ``samples`` holds (time read, [bytes per intf])."""

    def __init__(self, intfs: list[str], at: list[float]):
        super().__init__(daemon=True)
        self.paths = [Path(f"/sys/class/net/{name}/statistics/tx_bytes") for name in intfs]
        self.at = at
        self.samples: list[tuple[float, list[int]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        for when in self.at:
            if self.halt.wait(max(0.0, when - time.time())):
                return
            self.samples.append((time.time(), [int(p.read_text()) for p in self.paths]))


def route_group_use(switches: list[str]) -> dict:
    """The TE route groups on the switches (one per labelled route, at its ingress):
    how many there are and how many carried bytes."""
    groups = used = 0
    for sw in switches:
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-group-stats", sw], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            m = re.search(r"group_id=(\d+).*?byte_count=(\d+)", line)
            if m and cookies.id_owner(int(m.group(1))) == "te":
                groups += 1
                used += int(m.group(2)) > 0
    return {"route_groups": groups, "carried_traffic": used}


def switch_links(lab: Lab, spec: TopologySpec) -> list[dict]:
    """Every directed switch-switch link: its name, sending interface and emulated capacity."""
    meta = spec.controller_topology(lab.bw_scale, lab.max_bw_mbps)
    capacity = {frozenset((row["a"], row["b"])): row["capacity_mbps"] for row in meta["links"]}
    label = {sw.name: sw.label for sw in spec.switches}
    out = []
    for link in lab.net.links:
        ends = (link.intf1, link.intf2)
        if not all(i.node.name in label for i in ends):
            continue
        cap = capacity[frozenset(spec.switch(i.node.name).dp_id for i in ends)]
        for a, b in (ends, ends[::-1]):
            out.append({"link": f"{label[a.node.name]}->{label[b.node.name]}", "intf": a.name,
                        "capacity_mbps": cap})
    return sorted(out, key=lambda row: row["link"])


def replay(scn: Scenario, spec: TopologySpec, p: Plan, te_on: bool, predictor, workdir: Path) -> dict:
    """One fresh network replaying the plan, TE on or off; what was sent, received and carried."""
    workdir.mkdir(parents=True, exist_ok=True)
    decisions = workdir / "te-decisions.jsonl"
    n = p.stop - p.start
    real_origin = time.time() + scn.setup_s
    lab = Lab(spec, bw_scale=p.bw_scale, max_bw_mbps=scn.max_bw_mbps, hosts_per_switch=1,
              controller_config=controller_config(scn, p, te_on, predictor, decisions, real_origin),
              workdir=workdir / "lab")
    out: dict = {"te": te_on}
    procs: list = []
    sampler = None
    began = time.monotonic()
    try:
        lab.start()
        lab.wait_discovery(timeout_s=90)
        lab.wait_edges()
        by_label = {sw.label: lab.net.get(lab.topo_hosts(sw.name)[0]) for sw in spec.switches}
        ip_label = {host.IP(): label for label, host in by_label.items()}
        out["ping_loss_pct"] = lab.net.pingAll(timeout=1)     # every host known, every pair's path in
        receivers = {}
        for label in sorted({pair.split("->")[1] for pair in p.pairs}):
            proc = by_label[label].popen([sys.executable, str(PEER), "recv", "--port", str(UDP_PORT)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            proc.stdout.readline()                          # "receiving": the socket is bound
            receivers[label] = proc
        links = switch_links(lab, spec)
        out["setup_s"] = round(time.monotonic() - began, 1)
        if time.time() > real_origin - scn.step_real_s:
            raise LabError(f"the network took longer than setup_s={scn.setup_s:g} s to come up; raise it")
        send_start = real_origin - 0.75 * scn.step_real_s      # as the slices lab: a sample per app step
        sampler = LinkSampler([row["intf"] for row in links], [send_start + i * scn.step_real_s
                                                               for i in range(n + 1)])
        sampler.start()
        senders = {}
        for src in sorted({pair.split("->")[0] for pair in p.pairs}):
            flows = {by_label[pair.split("->")[1]].IP(): p.rates[pair] for pair in p.pairs
                     if pair.split("->")[0] == src}
            plan_file = workdir / f"plan-{src}.json"
            plan_file.write_text(json.dumps({"port": UDP_PORT, "flows": flows, "sockets": scn.sockets}))
            senders[src] = by_label[src].popen(
                [sys.executable, str(PEER), "send", "--plan", str(plan_file), "--start", f"{send_start:.3f}",
                 "--step-s", str(scn.step_real_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(senders[src])
        print(f"TE {'on' if te_on else 'off'}: replaying {n} samples of {len(p.pairs)} OD pairs from "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(p.start_time))} UTC, {scn.step_real_s:g} s each "
              f"({n * scn.step_real_s:.0f} s)", flush=True)
        sent: dict[str, list[int]] = {}
        for src, proc in senders.items():
            got, err = proc.communicate(timeout=n * scn.step_real_s + scn.setup_s + 60)
            if proc.returncode:
                raise LabError(f"sender at {src} failed: {err.strip()[-500:]}")
            for dst_ip, per_interval in json.loads(got.strip().splitlines()[-1])["sent"].items():
                sent[f"{src}->{ip_label[dst_ip]}"] = per_interval
        sampler.join(2 * scn.step_real_s + 5)
        time.sleep(1.0)                     # what is still queued (at most ~1 s of a full link) arrives
        received: dict[str, list[int]] = {pair: [0] * n for pair in p.pairs}
        for dst, proc in receivers.items():
            got = json.loads(proc.communicate(timeout=10)[0].strip().splitlines()[-1])["received"]
            for src_ip, per_interval in got.items():
                pair = f"{ip_label.get(src_ip, src_ip)}->{dst}"
                if pair in received:
                    for i, count in per_interval.items():
                        if 0 <= int(i) < n:
                            received[pair][int(i)] += count
        out.update(sent=sent, received=received, sample_times=[t for t, _ in sampler.samples],
                   links=[dict(row, tx_bytes=[s[1][j] for s in sampler.samples])
                          for j, row in enumerate(links)])
        out["route_groups"] = route_group_use([sw.name for sw in spec.switches])
        status = lab.client.status()
        out["controller"] = {k: int(v) for k, v in sorted(status.counters.items())}
    finally:
        if sampler is not None:
            sampler.halt.set()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        out["controller_exit_s"] = lab.stop()
        out["decisions"] = read_decisions(decisions)
        out["controller_log"] = notable_log_lines(workdir / "lab" / "controller.log")
        out["run_s"] = round(time.monotonic() - began, 1)
    return out


def read_decisions(path: Path) -> list[dict]:
    """The TE app's decision lines (one JSON object per TE step); [] when there are none."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            rows.append({"unparsed": line[:300]})
    return rows


def notable_log_lines(path: Path, limit: int = 40) -> list[str]:
    """Warnings, errors and TE app lines from the controller log (the last ``limit``)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    keep = [line for line in lines if "WARNING" in line or "ERROR" in line or "Traceback" in line
            or "apps.te" in line]
    return keep[-limit:]


def run(scn: Scenario, panel: Panel | None = None, workdir: Path | None = None,
        modes: tuple[str, ...] = MODES) -> dict:
    began = time.monotonic()
    spec = load(scn.topology)
    panel = panel or load_dataset(scn.dataset)
    split = SPLITS[scn.dataset]
    p = plan(scn, spec, panel, split)
    report: dict = {"scenario": asdict(scn), "plan": p.summary(), "replayed_mbps": p.rates,
                    "reference": replay_reference(scn, spec, p), "runs": {}}
    print(f"plan: {len(p.pairs)} OD pairs ({p.fit['kept_share']:.1%} of the fit-window traffic), "
          f"demand x{p.demand_scale:.4g}, links x{p.bw_scale:.4g}, window "
          f"{time.strftime('%H:%M', time.gmtime(p.start_time))} UTC + {p.stop - p.start} samples", flush=True)
    own = Path(workdir or tempfile.mkdtemp(prefix="foresight-te-"))
    predictor = None
    try:
        if "on" in modes:
            predictor = PredictorProcess(own, horizons_s=(scn.horizon_s,), models=FAST_MODELS).start()
            report["predictor"] = prepare_predictor(predictor, panel, p, split.fit_end)
        for mode in modes:
            report["runs"][mode] = replay(scn, spec, p, mode == "on", predictor, own / mode)
    finally:
        if predictor is not None:
            predictor.stop()
        if workdir is None and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(own, ignore_errors=True)
    report["analysis"] = {mode: te_report.analyse(run_, report) for mode, run_ in report["runs"].items()
                          if "sent" in run_}
    report["run_s"] = round(time.monotonic() - began, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="foresight lab run te", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Scenario()
    ap.add_argument("--samples", type=int, default=defaults.samples, help="replayed 5-minute samples")
    ap.add_argument("--step-real-s", type=float, default=defaults.step_real_s,
                    help="real seconds per 5-minute sample (>= 1.5)")
    ap.add_argument("--load-mbps", type=float, default=defaults.load_mbps,
                    help="mean total offered load over the fit-span windows, Mbit/s")
    ap.add_argument("--quantile", type=float, default=defaults.quantile,
                    help="forecast quantile the TE app plans on (te.quantile)")
    ap.add_argument("--only", choices=MODES, help="run only TE off or only TE on")
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    if args.step_real_s < 1.5:
        ap.error("--step-real-s must be >= 1.5 (port and group counters are polled every 0.5 s)")
    if args.samples < 12:
        ap.error("--samples must be at least 12 (an hour)")
    if not 0 < args.quantile < 1:
        ap.error("--quantile must be in (0, 1)")
    if not 0 < args.load_mbps <= 200:
        ap.error("--load-mbps must be in (0, 200]: the emulation has two cores")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scn = Scenario(samples=args.samples, step_real_s=args.step_real_s, load_mbps=args.load_mbps,
                   quantile=args.quantile)
    report = run(scn, modes=(args.only,) if args.only else MODES)
    text = te_report.render(report)
    print(text)
    write_report(Path(args.out), "te", text, report)
    on = report["analysis"].get("on")
    return 1 if on is not None and not on["te"]["steps"] else 0


if __name__ == "__main__":
    sys.exit(main())
