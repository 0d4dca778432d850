"""``foresight lab run peering``: proactive peering over real BGP, three schemes side by side.

An edge network (AS 65000, one border switch ``edge``) sends real Abilene demand,
mapped onto 1,056 prefixes of 132 destination networks (``labs.peering_plan`` says
how, all from the fit span), toward a transit provider and three candidate peers.
Every neighbour is a real FRR ``bgpd`` in its own Mininet host originating its
prefixes; our speaker is a real GoBGP in another, driven by the controller's peering
app over its gRPC API (through a unix-socket relay: the API stays on loopback). Each
neighbour's link to the switch is shaped to its capacity.

The same replay runs three times, each on a fresh network:

- ``plain_bgp``: every session up all the time, every group on BGP's best path;
- ``reactive``: Edge Fabric's allocator: every session up (Edge Fabric steers egress
  over existing peerings), each group on its preferred exit (peers first), moved off
  only when an exit's measured utilisation crosses 80 %, moved back below 65 %;
- ``predictive``: Foresight's plan on the predictor's forecasts (trained on the fit
  span alone), sessions brought up ahead of the demand.

Measured per scheme, per 5-minute step: each exit's offered rate (the shaped link's
qdisc: bytes sent plus bytes dropped, at every step boundary), the exit each prefix
group's fast-failover group points at (``ovs-ofctl dump-groups``), every byte sent and
received (per step, at the senders and at every neighbour); the app's decisions and
session events (its ``decisions_path``). After the predictive replay, the busiest peer
is killed (its bgpd and zebra with SIGKILL, its link down) under a 1 kHz probe.

Printed, and written to reports/peering.txt, .json and .png (``labs.peering_report``).
"""

from __future__ import annotations

import argparse
import json
import logging
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

from labs import peering_report
from labs.lab import FAST_MODELS, ROOT, LabError, PredictorProcess, write_report
from labs.peering_net import PROVIDER, NeighbourSpec, PeeringNetwork, peering_section
from labs.peering_plan import PeeringPlan, Scenario, build, fit_series, group_name
from predictors.panel import SPLITS, load_dataset
from topologies.processes import terminate

LOG = logging.getLogger(__name__)

PEER = ROOT / "labs" / "tm_peer.py"
PROBE = ROOT / "labs" / "udp_probe.py"
UDP_PORT = 9000
PROBE_PORT = 5999
SCHEMES = ("plain_bgp", "reactive", "predictive")
SETUP_S = 45.0
HORIZONS_S = (300.0, 900.0, 1800.0, 3600.0)
# The predictive scheme's quantile, headroom and fit_ahead_s, chosen on held-out fit
# days by `python -m labs.peering_tune` (2026-12-03; docs/peering.md#choosing-the-margins).
TUNED = {"quantile": 0.95, "headroom": 0.85, "fit_ahead_s": 1800.0}


def controller_config(
    scn: Scenario, plan: PeeringPlan, scheme: str, predictor, workdir: Path, real_origin: float
) -> dict:
    return {
        "controller": {
            "providers": [PROVIDER],
            "telemetry": {"poll_interval_s": 0.15},
            "predictor": {"address": predictor.address if predictor else "", "timeout_s": 5.0},
            "clock": {
                "time_scale": 300 / scn.step_real_s,
                "virtual_origin_s": plan.start_time - scn.warmup * 300.0,
                "real_origin_s": real_origin,
            },
        },
        "peering": peering_section(
            neighbour_specs(scn, plan, scheme),
            workdir,
            scheme,
            interval_s=scn.step_real_s,
            step_s=300.0,
            horizons_s=list(HORIZONS_S),
            min_dwell_s=1800.0,
            billing_window_s=scn.samples * 300.0,
            **TUNED,
        ),
    }


def neighbour_specs(scn: Scenario, plan: PeeringPlan, scheme: str = "predictive") -> list[NeighbourSpec]:
    """The neighbours' config entries. Under ``reactive`` every session is kept up, as
    Edge Fabric's peerings are: it steers egress over them and manages no session."""
    specs = [
        NeighbourSpec(n.config(0.0 if n.kind == "transit" else scn.lead_s), n.announces)
        for n in plan.neighbours
    ]
    if scheme == "reactive":
        for spec in specs:
            spec.config["always"] = True
    return specs


class StepSampler(threading.Thread):
    """At each of the ``at`` times (Unix s): every exit's qdisc counters (bytes sent,
    packets dropped, backlog bytes) and the exit of every prefix group on the switch."""

    def __init__(self, intfs: dict[str, str], at: list[float], switch: str = "edge"):
        super().__init__(daemon=True)
        self.intfs = intfs
        self.at = at
        self.switch = switch
        self.samples: list[dict] = []
        self.halt = threading.Event()

    def run(self) -> None:
        for when in self.at:
            if self.halt.wait(max(0.0, when - time.time())):
                return
            self.samples.append(
                {
                    "t": time.time(),
                    "qdisc": {n: qdisc(i) for n, i in self.intfs.items()},
                    "groups": group_exits(self.switch),
                }
            )


def qdisc(intf: str) -> list[int]:
    """[bytes sent, packets dropped, backlog bytes] of an interface's root qdisc."""
    out = subprocess.run(
        ["tc", "-s", "-j", "qdisc", "show", "dev", intf], capture_output=True, text=True
    ).stdout
    try:
        rows = json.loads(out or "[]")
    except ValueError:
        return [0, 0, 0]
    root = next((r for r in rows if r.get("root")), rows[0] if rows else {})
    return [int(root.get("bytes", 0)), int(root.get("drops", 0)), int(root.get("backlog", 0))]


_GROUP = re.compile(r"group_id=(\d+),type=ff,(.*)")
_REG4 = re.compile(r"bucket=.*?set_field:(0x[0-9a-f]+|\d+)->reg4")


def group_exits(switch: str) -> dict[str, int]:
    """Fast-failover group id -> the exit index (reg4) its first bucket sets."""
    out = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", switch], capture_output=True, text=True
    ).stdout
    exits = {}
    for line in out.splitlines():
        m = _GROUP.search(line)
        if m:
            first = _REG4.search(m.group(2))
            if first:
                exits[m.group(1)] = int(first.group(1), 0)
    return exits


def prepare_predictor(predictor: PredictorProcess, scn: Scenario, panel, plan: PeeringPlan) -> dict:
    series = fit_series(scn, panel, plan)
    split = SPLITS[scn.dataset]

    def samples(lo, hi):
        if lo == 0:
            for name, (times, values) in series.items():
                for t, v in zip(times[lo:hi], values[lo:hi]):
                    yield f"peering:{name}", float(t), max(0.0, float(v))
        else:
            for i, g in enumerate(plan.groups):
                for k in range(lo, hi):
                    yield (
                        f"peering:{group_name(g.origin)}",
                        float(panel.times[k]),
                        max(0.0, float(panel.values[k, i]) * plan.demand_scale),
                    )

    info = predictor.client.ingest(samples(0, split.fit_end), labels={"kind": "peering"})
    began = time.monotonic()
    job = predictor.client.wait_trained(predictor.client.train(list(HORIZONS_S)).job_id, timeout_s=900)
    if job is None or job.state != job.SUCCEEDED:
        raise LabError(f"training failed: {job}")
    trained_s = time.monotonic() - began
    predictor.client.ingest(samples(split.fit_end, plan.start - scn.warmup), labels={"kind": "peering"})
    return {
        "trained_s": round(trained_s, 1),
        "model_version": job.model_version,
        "candidates": FAST_MODELS,
        "series": len(series),
        "ingested": int(getattr(info, "accepted", 0)),
    }


def replay(scn: Scenario, plan: PeeringPlan, scheme: str, predictor, workdir: Path, fail_test: bool) -> dict:
    """One fresh network replaying the plan under ``scheme``."""
    n = scn.warmup + scn.samples
    real_origin = time.time() + SETUP_S
    network = PeeringNetwork(
        neighbour_specs(scn, plan),
        workdir,
        controller_config(scn, plan, scheme, predictor, workdir, real_origin),
    )
    out: dict = {"scheme": scheme}
    sampler = None
    procs: list[subprocess.Popen] = []
    began = time.monotonic()
    try:
        network.start()
        net, client = network.net, network.client
        network.wait_established("transit", len(plan.neighbours[0].announces))
        out["setup_s"] = round(time.monotonic() - began, 1)
        if time.time() > real_origin - scn.step_real_s:
            raise LabError(f"the network took {out['setup_s']} s to come up, longer than SETUP_S={SETUP_S:g}")
        receivers = {}
        for nb in plan.neighbours:
            proc = net.get(nb.name).popen(
                [sys.executable, str(PEER), "recv", "--port", str(UDP_PORT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            proc.stdout.readline()
            receivers[nb.name] = proc
        flows = {}
        for g in plan.groups:
            rates = plan.rates[group_name(g.origin)]
            for target in g.targets:
                flows[target] = [r / len(g.targets) for r in rates]
        plan_file = workdir / "flows.json"
        plan_file.write_text(json.dumps({"port": UDP_PORT, "flows": flows, "sockets": 1}))
        send_start = real_origin - 0.75 * scn.step_real_s  # a sample per app step, as the TE lab
        intfs = {nb.name: network.exit_intf(nb.name) for nb in plan.neighbours}
        sampler = StepSampler(intfs, [send_start + i * scn.step_real_s for i in range(n + 1)])
        sampler.start()
        sender = net.get("src1").popen(
            [
                sys.executable,
                str(PEER),
                "send",
                "--plan",
                str(plan_file),
                "--start",
                f"{send_start:.3f}",
                "--step-s",
                str(scn.step_real_s),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(sender)
        print(
            f"{scheme}: replaying {n} steps of {len(plan.groups)} prefix groups from "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(plan.start_time - scn.warmup * 300))} UTC "
            f"({scn.warmup} of them warm-up), {scn.step_real_s:g} s each "
            f"({n * scn.step_real_s:.0f} s)",
            flush=True,
        )
        got, err = sender.communicate(timeout=n * scn.step_real_s + SETUP_S + 60)
        if sender.returncode:
            raise LabError(f"sender failed: {err.strip()[-500:]}")
        sent = json.loads(got.strip().splitlines()[-1])["sent"]
        sampler.join(2 * scn.step_real_s + 5)
        time.sleep(1.0)
        received = {}
        for name, proc in receivers.items():
            rows = json.loads(proc.communicate(timeout=10)[0].strip().splitlines()[-1])["received"]
            per = [0] * n
            for by_interval in rows.values():
                for i, count in by_interval.items():
                    if 0 <= int(i) < n:
                        per[int(i)] += count
            received[name] = per
        out.update(
            sent=sent,
            received=received,
            samples=sampler.samples,
            peerings=[peering_report.session_json(s) for s in client.list()],
            plan=peering_report.plan_json(client.plan(decisions=500)),
        )
        if fail_test:
            out["failover"] = failover_test(network, plan)
        out["metrics"] = metrics_text(network.controller.metrics_port)
    finally:
        if sampler is not None:
            sampler.halt.set()
        for proc in procs:
            terminate(proc, 5.0)
        out["controller_exit_s"] = network.stop()
        out["decisions"] = read_lines(workdir / "peering-decisions.jsonl")
        out["controller_log"] = notable_log_lines(workdir / "controller.log")
        out["run_s"] = round(time.monotonic() - began, 1)
    return out


def failover_test(
    network: PeeringNetwork, plan: PeeringPlan, duration_s: float = 6.0, at_s: float = 2.0
) -> dict:
    """Kill the peer that carries the most groups under a 1 kHz probe toward one of them."""
    load: dict[str, list] = {}
    for g in network.client.plan().groups:
        if g.exit and g.exit != "transit":
            load.setdefault(g.exit, []).append(g.group)
    if not load:
        return {"skipped": "no group is on a peer"}
    victim = max(load, key=lambda e: (len(load[e]), e))
    group = sorted(load[victim])[0]
    target = next(t for g in plan.groups if group_name(g.origin) == group for t in g.targets)
    return dict(probe_kill(network, victim, target, duration_s, at_s), group=group)


def probe_kill(
    network: PeeringNetwork, victim: str, target: str, duration_s: float = 6.0, at_s: float = 2.0
) -> dict:
    """A 1 kHz probe from ``src1`` to ``target``, received by every neighbour; ``victim``
    killed ``at_s`` in. The longest run of probes nobody received is the loss window."""
    net = network.net
    listeners = {
        n.name: net.get(n.name).popen(
            [
                sys.executable,
                str(PROBE),
                "run",
                "--peer",
                "10.0.0.1",
                "--port",
                str(PROBE_PORT),
                "--rate-hz",
                "1",
                "--duration-s",
                f"{duration_s + 2:g}",
                "--linger-s",
                "1.0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in network.neighbours
    }
    time.sleep(0.5)
    probe = net.get("src1").popen(
        [
            sys.executable,
            str(PROBE),
            "run",
            "--peer",
            target,
            "--port",
            str(PROBE_PORT),
            "--rate-hz",
            "1000",
            "--duration-s",
            f"{duration_s:g}",
            "--linger-s",
            "1.0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(at_s)
    killed_at = network.kill(victim)
    sent = json.loads(probe.communicate(timeout=duration_s + 20)[0].strip().splitlines()[-1])
    reports = {}
    for name, proc in listeners.items():
        got = proc.communicate(timeout=duration_s + 20)[0].strip().splitlines()
        reports[name] = json.loads(got[-1]) if got else {}
    return {
        "victim": victim,
        "target": target,
        "killed_at": killed_at,
        **peering_report.merged_loss(sent, reports),
    }


def metrics_text(port: int) -> list[str]:
    import urllib.request

    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError as err:
        return [f"unreachable: {err}"]
    return [line for line in body.splitlines() if line.startswith("foresight_peering_")]


def read_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def notable_log_lines(path: Path, limit: int = 40) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if "WARNING" in line or "ERROR" in line or "Traceback" in line][-limit:]


def run(scn: Scenario, workdir: Path | None = None, schemes: tuple[str, ...] = SCHEMES) -> dict:
    began = time.monotonic()
    panel = load_dataset(scn.dataset)
    plan = build(scn, panel)
    report: dict = {"scenario": asdict(scn), "plan": plan.summary(), "runs": {}}
    print(
        f"plan: {len(plan.groups)} prefix groups, {sum(len(g.prefixes) for g in plan.groups)} prefixes, "
        f"demand "
        f"x{plan.demand_scale:.4g}, window {time.strftime('%H:%M', time.gmtime(plan.start_time))} UTC + "
        f"{scn.samples} steps; capacities "
        + ", ".join(f"{n.name} {n.capacity_mbps:g}" for n in plan.neighbours)
        + " Mbit/s",
        flush=True,
    )
    own = Path(workdir or tempfile.mkdtemp(prefix="foresight-peering-"))
    own.chmod(0o755)  # FRR's daemons run as frr: they must reach their run directories
    predictor = None
    try:
        if "predictive" in schemes:
            predictor = PredictorProcess(own, horizons_s=HORIZONS_S, models=FAST_MODELS).start()
            report["predictor"] = prepare_predictor(predictor, scn, panel, plan)
        for scheme in schemes:
            report["runs"][scheme] = replay(
                scn,
                plan,
                scheme,
                predictor if scheme == "predictive" else None,
                own / scheme,
                fail_test=scheme == "predictive",
            )
    finally:
        if predictor is not None:
            predictor.stop()
        if workdir is None and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(own, ignore_errors=True)
    report["schemes"] = {
        s: peering_report.analyse(run_, plan, scn) for s, run_ in report["runs"].items() if "sent" in run_
    }
    report["run_s"] = round(time.monotonic() - began, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="foresight lab run peering",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Scenario()
    ap.add_argument("--samples", type=int, default=defaults.samples, help="replayed 5-minute steps")
    ap.add_argument(
        "--step-real-s", type=float, default=defaults.step_real_s, help="real seconds per step (>= 0.5)"
    )
    ap.add_argument("--mean-mbps", type=float, default=defaults.mean_mbps, help="fit-span mean total demand")
    ap.add_argument("--only", choices=SCHEMES, action="append", help="run only these schemes (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    if args.step_real_s < 0.5:
        ap.error("--step-real-s must be >= 0.5 (group counters are polled every 0.15 s)")
    if not 12 <= args.samples <= 288:
        ap.error("--samples must be in 12..288 (an hour to a day)")
    if not 0 < args.mean_mbps <= 100:
        ap.error("--mean-mbps must be in (0, 100]: the emulation has two cores")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scn = Scenario(samples=args.samples, step_real_s=args.step_real_s, mean_mbps=args.mean_mbps)
    report = run(scn, schemes=tuple(args.only) if args.only else SCHEMES)
    text = peering_report.render(report)
    print(text)
    out = Path(args.out)
    write_report(
        out,
        "peering",
        text,
        {"schemes": report["schemes"], **{k: v for k, v in report.items() if k != "schemes"}},
    )
    peering_report.plot(report, out / "peering.png")
    return 0 if report["schemes"] else 1


if __name__ == "__main__":
    sys.exit(main())
