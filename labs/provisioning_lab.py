"""``foresight lab run provisioning``: changes made ahead of real demand, each staged first.

Abilene (12 routers) in Mininet, two hosts per router in two tenants (the first host
of every router in tenant ``a``, the second in ``b``; the provisioning app's
isolation policy keeps them apart), the controller with the slices and provisioning
apps and OpenFlow bundles on, a staging copy for rehearsals (``labs.staging``), and
the predictor in its own process.

1. **Choices on the fit span** (``timestamp_index < 2880``): the slices lab's OD
   pairs (smooth, busy, the largest daily swing, on distinct routers), each scaled so
   its fit-span 99th percentile is ``--peak-mbps``, each carried by one slice whose
   bandwidth starts at the pair's fit-span median (scaled): the daily peaks exceed
   it. The predictor is trained on the fit span alone at the provisioning horizons.
2. **Replay on the evaluation span**: the slices lab's window (the first evaluation
   day from the earliest trough to the latest peak), one 5-minute sample per
   ``--step-real-s``. The controller measures each slice at its meters and sends it to
   the predictor; the provisioning app forecasts each slice's demand, raises a need
   when P(demand > bandwidth) within the hour reaches 0.5, renders
   ``slice_bandwidth`` for it, stages it (in-memory verification, the need covered,
   the rehearsal in the staging copy) and deploys it; the lab only watches. A change
   counts as *deployed before its crossing* when it was in place before the time its
   forecast said the bandwidth would be crossed; the report also gives, from the
   measurements, whether the replayed demand really exceeded the old bandwidth and
   whether that happened after the deployment.
3. **Seeded faults and clean changes** (``--faults``, ``--clean``, seeded by
   ``--seed``): through the provisioning API, faulty changes of five kinds, taking
   turns: the seeded faulty templates ``od_path_wrong_port``, ``od_path_loop``,
   ``od_path_missing_group``, ``od_path_isolation_hole`` (``labs.provisioning_faults``)
   on random same-tenant host pairs and paths, and ``slice_bandwidth`` changes whose
   rate is below the need they say they answer. Each must fail staging with the
   check that fits its fault, and nothing reaches a switch. Clean changes: the real
   ``od_path`` template on random same-tenant pairs and simple paths; each must pass
   staging (a failure is a false alarm), is deployed (bundles) and rolled back
   (``rollback_s``: from the request until every switch confirmed the old state).

Report: text, ``reports/provisioning.json`` (``seeded_faults``, ``faults_caught``,
``clean_changes``, ``false_alarms``, ``deployed_before_crossing``, ``rollback_s``,
and the details behind them) and ``reports/provisioning.png`` (per slice: measured
demand, the forecast need, the bandwidth, and when changes were staged and deployed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from labs.lab import FAST_MODELS, ROOT, Lab, LabError, PredictorProcess, write_report
from labs.slices_lab import pick_pairs, replay_window
from predictors.panel import SPLITS, Panel, load_dataset
from topologies.processes import terminate

LOG = logging.getLogger(__name__)

PEER = ROOT / "labs" / "tm_peer.py"
UDP_PORT = 9000
FAULT_CHECKS = {  # the check a fault's failure must name
    "wrong_port": ("verify",),
    "loop": ("verify",),
    "missing_group": ("verify",),
    "isolation_hole": ("verify",),
    "rate_below_need": ("covers-need",),
}
KINDS = ("wrong_port", "loop", "missing_group", "isolation_hole", "rate_below_need")


@dataclass(frozen=True)
class Demand:
    name: str  # slice name
    pair: str  # dataset series, e.g. "WASHng->IPLSng"
    client: str  # switch label of its client host (tenant a)
    server: str  # switch label of its member (tenant a)
    scale: float  # lab Mbit/s per dataset Mbit/s
    vip_cidr: str
    bandwidth_mbps: float  # the slice's bandwidth at the start


@dataclass
class Scenario:
    topology: str = "abilene"
    bw_scale: float = 0.02
    slices: int = 2
    peak_mbps: float = 12.0
    step_real_s: float = 2.5
    samples: int = 0
    horizons_s: tuple = (900.0, 1800.0, 3600.0)
    faults: int = 55
    clean: int = 55
    seed: int = 1
    rehearsal: bool = True
    setup_s: float = 120.0
    span: str = "evaluation"  # "fit": replay the fit span's last day, trained on the days before
    threshold: float | None = None  # provisioning.threshold (None: the app's default)
    # the link whose capacity is set from the fit span (its thin_quantile of the replayed
    # demand that crosses it, a -> b), so the forecast of its load can cross it (() none)
    thin: tuple = ("ATLAng", "IPLSng")
    thin_quantile: float = 0.5
    spare: tuple = ("WASHng", "IPLSng")  # a spare link cabled between them, out of service (() none)
    spare_mbps: float = 9920.0  # its capacity (dataset Mbit/s, scaled like the others)
    spare_changes: int = 5  # clean spare_link changes in the campaign (brought in, then out)


def host_number(switch_index: int, k: int) -> int:
    """SpecTopo's host number of the ``k``-th host (1-based) of the ``switch_index``-th switch."""
    return switch_index * 2 + k


def train_end(scn: Scenario, panel: Panel) -> int:
    """Rows the choices and the training may read: the fit span, or for ``span="fit"`` the
    fit span less its last day (which is then replayed)."""
    split = SPLITS["abilene"]
    return split.fit_end if scn.span == "evaluation" else split.fit_end - panel.period_steps()


def plan(scn: Scenario, panel: Panel) -> tuple[list[Demand], int, int]:
    split = SPLITS["abilene"]
    if scn.span not in ("evaluation", "fit"):
        raise LabError(f"span {scn.span!r}: 'evaluation' or 'fit'")
    known = train_end(scn, panel)
    pairs = pick_pairs(panel, known, scn.slices)
    demands = []
    for k, pair in enumerate(pairs):
        col = panel.names.index(pair)
        fit = panel.values[:known, col]
        scale = scn.peak_mbps / float(np.nanpercentile(fit, 99))
        src, dst = pair.split("->")
        demands.append(
            Demand(
                f"od{k + 1}",
                pair,
                src,
                dst,
                scale,
                f"10.0.{110 + k}.0/29",
                round(float(np.nanmedian(fit)) * scale, 2),
            )
        )
    start, stop = replay_window(panel, [panel.names.index(d.pair) for d in demands], known, scn.samples)
    limit = split.eval_end if scn.span == "evaluation" else split.fit_end
    if stop > limit:
        raise LabError(f"replay [{start}, {stop}) runs past the {scn.span} span (< {limit})")
    return demands, start, stop


def series(name: str) -> str:
    return f"slice:{name}"


def topology(scn: Scenario, thin: "Thin | None" = None):
    """The catalogue topology, plus the scenario's spare link, with the thin link's capacity."""
    from topologies.catalog import load

    spec = load(scn.topology)
    if thin is not None:
        spec = spec.with_capacity(thin.a, thin.b, thin.capacity_mbps / scn.bw_scale)
    return spec.with_spare(scn.spare[0], scn.spare[1], scn.spare_mbps) if scn.spare else spec


@dataclass(frozen=True)
class Thin:
    """The thin link: ``a -> b`` (switch labels), the lab capacity set from the fit span,
    the slices whose traffic crosses it, and the predictor series of its load."""

    a: str
    b: str
    capacity_mbps: float
    demands: tuple[str, ...]

    @property
    def series(self) -> str:
        return f"link:{self.a}-{self.b}"


def controller_path(spec, src: str, dst: str) -> list[str]:
    """The path the controller forwards ``src`` -> ``dst`` on (switch labels): fewest hops,
    ties to the lexicographically smallest list of dp_ids (``controller.topology``)."""
    graph = nx.Graph()
    graph.add_edges_from(
        (spec.switch(link.a).dp_id, spec.switch(link.b).dp_id) for link in spec.links if not link.spare
    )
    dp = {sw.label: sw.dp_id for sw in spec.switches}
    label = {sw.dp_id: sw.label for sw in spec.switches}
    return [label[n] for n in min(nx.all_shortest_paths(graph, dp[src], dp[dst]))]


def thin_link(scn: Scenario, panel: Panel, demands: list[Demand]) -> Thin | None:
    """The thin link of the scenario: which slices cross it (client -> member) and its
    capacity, the ``thin_quantile`` of their summed demand over the fit span."""
    if not scn.thin:
        return None
    a, b = scn.thin
    spec = topology(Scenario(topology=scn.topology, spare=()))
    crossing = [
        d for d in demands if (a, b) in set(zip(path := controller_path(spec, d.client, d.server), path[1:]))
    ]
    if not crossing:
        raise LabError(f"no slice's traffic crosses {a} -> {b}; pick a thin link on a slice's path")
    known = train_end(scn, panel)
    load = sum(np.nan_to_num(panel.values[:known, panel.names.index(d.pair)]) * d.scale for d in crossing)
    capacity = round(float(np.percentile(load, 100 * scn.thin_quantile)), 2)
    return Thin(a, b, capacity, tuple(d.name for d in crossing))


def spare_name(link) -> str:
    return f"spare-{link.a}-{link.b}"


def links_section(spec, hosts_per_switch: int, own: Path) -> dict:
    """The links app's section: each spare of ``spec`` by dp_id and port (SpecTopo's cabling)."""
    ports = spec.link_ports(hosts_per_switch)
    spares = []
    for link in spec.links:
        if link.spare:
            a_port, b_port = ports[(link.a, link.b)]
            spares.append(
                dict(
                    name=spare_name(link),
                    a=spec.switch(link.a).dp_id,
                    a_port=a_port,
                    b=spec.switch(link.b).dp_id,
                    b_port=b_port,
                )
            )
    return {"spares": spares, "state_path": str(own / "links.sqlite")}


def campaign(
    spec, scn: Scenario, tenants: dict[str, list[dict]], slices: list[str], spares_in: frozenset = frozenset()
) -> list[dict]:
    """The seeded faulty and clean changes, in a seeded random order: (kind, template, params).
    A clean ``spare_link`` change turns a spare over: into service, or out of it for those
    in ``spares_in`` (brought in by a forecast-driven change during the replay).
    ``tenants`` without the slices' members: frames to and from a member are steered and
    rewritten by the slices app's own rules (``apps.slices.dataplane``: transit and
    reply rules in ``classify``, before ``forward``), so a path pinned by MAC does not
    apply to them — staging finds that out (a pinned path whose frames the slices
    rules send back the way they came), but it is not a clean change."""
    rng = random.Random(scn.seed)
    label = {sw.name: sw.label for sw in spec.switches}  # the controller names switches by label
    graph = nx.Graph()
    graph.add_edges_from((label[link.a], label[link.b]) for link in spec.links if not link.spare)

    def path_between(a: dict, b: dict, *, loop: bool) -> list[str] | None:
        paths = list(nx.all_simple_paths(graph, a["switch"], b["switch"], cutoff=6))
        paths = [p for p in paths if len(p) >= 3]
        if loop:  # a link from a later switch back to an earlier one than its predecessor
            paths = [
                p
                for p in paths
                if any(graph.has_edge(p[k], p[j]) for k in range(2, len(p)) for j in range(k - 1))
            ]
        return rng.choice(sorted(paths)) if paths else None

    def od_path(kind: str) -> dict:
        for _ in range(200):
            tenant = rng.choice(sorted(tenants))
            a, b = rng.sample(tenants[tenant], 2)
            path = path_between(a, b, loop=kind == "loop")
            if path is None:
                continue
            params = dict(
                src=a["mac"],
                dst=b["mac"],
                path=path,
                slot=rng.randrange(4096),
                mbps=round(rng.uniform(0.5, 2.0), 2),
            )
            if kind == "isolation_hole":  # copied to a host of another tenant on the path
                others = [
                    h for t in sorted(tenants) if t != tenant for h in tenants[t] if h["switch"] in path
                ]
                if not others:
                    continue
                params["leak"] = rng.choice(others)["mac"]
            template = "od_path" if kind == "clean" else f"od_path_{kind}"
            return dict(kind=kind, template=template, params=params)
        raise LabError(f"no host pair and path for a {kind} change")

    out = []
    for i in range(scn.faults):
        kind = KINDS[i % len(KINDS)]
        if kind == "rate_below_need":
            need = round(rng.uniform(4.0, 20.0), 2)
            out.append(
                dict(
                    kind=kind,
                    template="slice_bandwidth",
                    need_mbps=need,
                    params=dict(
                        slice=rng.choice(slices), bandwidth_mbps=round(need * rng.uniform(0.3, 0.9), 2)
                    ),
                )
            )
        else:
            out.append(od_path(kind))
    out += [od_path("clean") for _ in range(scn.clean)]
    spares = [spare_name(link) for link in spec.links if link.spare]
    out += [
        dict(
            kind="clean",
            template="spare_link",
            params=dict(link=(name := spares[i % len(spares)]), in_service=name not in spares_in),
        )
        for i in range(scn.spare_changes if spares else 0)
    ]
    rng.shuffle(out)
    return out


# --- the run ---------------------------------------------------------------------------------


def tenants_of(spec) -> dict[str, list[dict]]:
    """Tenant ``a``: the first host of every router; ``b``: the second (SpecTopo's numbering)."""
    from topologies.mininet_topo import HOST_NETWORK

    out: dict[str, list[dict]] = {"a": [], "b": []}
    for i, sw in enumerate(spec.switches):
        for k, tenant in ((1, "a"), (2, "b")):
            number = host_number(i, k)
            out[tenant].append(
                dict(
                    switch=sw.label,
                    spec_switch=sw.name,
                    host=f"h{sw.dp_id}x{k}",
                    ip=str(HOST_NETWORK[number]),
                    mac="00:00:00:00:%02x:%02x" % (number >> 8, number & 0xFF),
                )
            )
    return out


def controller_config(
    scn: Scenario,
    own: Path,
    predictor_address: str,
    origin_v: float,
    real_origin: float,
    tenants: dict,
    clients: dict,
    spec=None,
    thin: Thin | None = None,
) -> dict:
    provisioning = {
        "store_path": str(own / "provisioning.sqlite"),
        "interval_s": scn.step_real_s,
        "anomaly_poll_s": scn.step_real_s / 2,
        "horizons_s": list(scn.horizons_s),
        "quantiles": [0.1, 0.5, 0.9, 0.95],
        "service_quantile": 0.95,
        "headroom": 0.9,
        "isolate": [[h["ip"] for h in tenants[t]] for t in sorted(tenants)],
        "template_modules": ["labs.provisioning_faults"],
        "outcome_after_s": 900.0,
        **({"threshold": scn.threshold} if scn.threshold is not None else {}),
        "confirm_timeout_s": 10.0,
    }
    if scn.rehearsal:
        provisioning["rehearsal"] = "labs.staging:rehearsal"
        provisioning["rehearsal_options"] = {
            "topology": scn.topology,
            "bw_scale": scn.bw_scale,
            "hosts_per_switch": 2,
            "spares": [list(scn.spare) + [scn.spare_mbps]] if scn.spare else [],
            "capacities": [[thin.a, thin.b, thin.capacity_mbps / scn.bw_scale]] if thin else [],
            "clients": clients,
            "workdir": str(own / "staging"),
        }
    spec = spec or topology(scn, thin)
    providers = ["apps.slices.app:provider", "apps.provisioning.app:provider"]
    if any(link.spare for link in spec.links):
        providers.insert(1, "apps.links.app:provider")
    return {
        "links": links_section(spec, 2, own),
        "controller": {
            "providers": providers,
            "telemetry": {"poll_interval_s": 0.5},
            "predictor": {"address": predictor_address, "timeout_s": 5.0},
            "sync": {"bundles": True},
            "clock": {
                "time_scale": 300 / scn.step_real_s,
                "virtual_origin_s": origin_v,
                "real_origin_s": real_origin,
            },
        },
        "slices": {
            "store_path": str(own / "slices.sqlite"),
            "drain_s": 2 * scn.step_real_s,
            "scaling": {"enabled": True, "interval_s": scn.step_real_s, "horizon_s": 900.0},
        },
        "provisioning": provisioning,
    }


def run(scn: Scenario, panel: Panel | None = None, workdir: Path | None = None) -> dict:
    from apps.provisioning.client import ProvisioningClient
    from apps.slices.client import SlicesClient

    panel = panel or load_dataset("abilene")
    demands, start, stop = plan(scn, panel)
    thin = thin_link(scn, panel, demands)
    spec = topology(scn, thin)
    tenants = tenants_of(spec)
    first = {h["switch"]: h for h in tenants["a"]}
    clients = {d.name: first[d.client]["ip"] for d in demands}
    # The slices' members serve every client through their VIP: they belong to no tenant.
    members = {first[d.server]["mac"] for d in demands}
    isolated = {t: [h for h in hosts if h["mac"] not in members] for t, hosts in tenants.items()}
    n = stop - start
    origin_v = float(panel.times[start])
    report: dict = {
        "scenario": asdict(scn),
        "demands": [asdict(d) for d in demands],
        "thin": dict(asdict(thin), series=thin.series) if thin else None,
        "replay": {
            "start_index": start,
            "stop_index": stop,
            "samples": n,
            "start_time": origin_v,
            "time_scale": 300 / scn.step_real_s,
        },
    }
    own = Path(workdir or tempfile.mkdtemp(prefix="foresight-provisioning-"))
    lab = predictor = slices = prov = None
    procs: list = []
    try:
        predictor = PredictorProcess(own, horizons_s=tuple(scn.horizons_s), models=FAST_MODELS).start()

        def samples(lo, hi):
            for d in demands:
                col = panel.names.index(d.pair)
                for i in range(lo, hi):
                    value = panel.values[i, col]
                    if np.isfinite(value):
                        yield series(d.name), float(panel.times[i]), float(value * d.scale)
            if thin is not None:  # the thin link's load: the slices that cross it
                cols = [(panel.names.index(d.pair), d.scale) for d in demands if d.name in thin.demands]
                for i in range(lo, hi):
                    load = sum(float(np.nan_to_num(panel.values[i, c])) * k for c, k in cols)
                    yield thin.series, float(panel.times[i]), load

        report["predictor"] = predictor.train_on_fit_span(
            samples, train_end(scn, panel), start, tuple(scn.horizons_s), kind="slice"
        )
        real_origin = time.time() + scn.setup_s
        config = controller_config(
            scn, own, predictor.address, origin_v, real_origin, isolated, clients, spec, thin
        )
        lab = Lab(
            spec,
            bw_scale=scn.bw_scale,
            hosts_per_switch=2,
            controller_config=config,
            workdir=own / "lab",
        )
        lab.start()
        lab.wait_discovery(timeout_s=90)
        lab.wait_edges()
        for tenant in tenants.values():  # hosts are learned; only same-tenant pairs ever talk
            anchor = tenant[0]
            for h in tenant:
                target = tenant[1] if h is anchor else anchor
                lab.net.get(h["host"]).cmd(f"ping -c1 -W2 {target['ip']} >/dev/null")
        slices = SlicesClient(lab.controller.grpc_address)
        prov = ProvisioningClient(lab.controller.grpc_address)
        receivers, senders, vips = {}, {}, {}
        for d in demands:
            member = first[d.server]
            slices.register_member("pool-" + d.name, member["host"], member["ip"])
            receivers[d.name] = lab.net.get(member["host"]).popen(
                [sys.executable, str(PEER), "recv", "--port", str(UDP_PORT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(receivers[d.name])
            view = slices.create(
                d.name,
                client="lab",
                vip_cidr=d.vip_cidr,
                bandwidth_mbps=d.bandwidth_mbps,
                per_member_mbps=scn.peak_mbps * 2,
                pool="pool-" + d.name,
                min_members=1,
                max_members=1,
                priority="silver",
                members=1,
            )
            vips[d.name] = view.service_vip
        if time.time() > real_origin - scn.step_real_s:
            raise LabError(f"the network took longer than setup_s={scn.setup_s:g} s to come up; raise it")
        for d in demands:
            col = panel.names.index(d.pair)
            rates = [max(0.0, float(np.nan_to_num(v)) * d.scale) for v in panel.values[start:stop, col]]
            plan_file = own / f"plan-{d.name}.json"
            plan_file.write_text(json.dumps({"port": UDP_PORT, "flows": {vips[d.name]: rates}}))
            senders[d.name] = lab.net.get(first[d.client]["host"]).popen(
                [
                    sys.executable,
                    str(PEER),
                    "send",
                    "--plan",
                    str(plan_file),
                    "--start",
                    f"{real_origin - 0.75 * scn.step_real_s:.3f}",
                    "--step-s",
                    str(scn.step_real_s),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(senders[d.name])
            report.setdefault("replayed_mbps", {})[d.name] = rates
        print(
            f"replaying {n} samples of {', '.join(d.pair for d in demands)} from "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(origin_v))} UTC, {scn.step_real_s:g} s each "
            f"({n * scn.step_real_s:.0f} s)",
            flush=True,
        )
        watched = {}
        dp = {sw.label: sw.dp_id for sw in spec.switches}
        if thin is not None:
            watched[f"{thin.a}-{thin.b}"] = (dp[thin.a], dp[thin.b])
        for link in spec.links:
            if link.spare:
                a, b = spec.switch(link.a).label, spec.switch(link.b).label
                watched[f"{a}-{b}"] = (dp[a], dp[b])  # the spare, a -> b
                watched[f"{b}-{a}"] = (dp[b], dp[a])
        report["spare_links"] = [k for k in watched if thin is None or k != f"{thin.a}-{thin.b}"]
        report["timeline"] = watch(
            slices,
            prov,
            demands,
            config["controller"]["clock"],
            n,
            scn.step_real_s,
            (lab.client, watched) if watched else None,
        )
        for d in demands:
            out, _ = senders[d.name].communicate(timeout=scn.setup_s + 60)
            report.setdefault("sent_bytes", {})[d.name] = json.loads(out.strip().splitlines()[-1])["sent"][
                vips[d.name]
            ]
        time.sleep(scn.step_real_s)
        for d in demands:  # what reached the member, per interval
            out, _ = receivers[d.name].communicate(timeout=10)
            got = json.loads(out.strip().splitlines()[-1])["received"]
            per = [0] * n
            for by_interval in got.values():
                for i, b in by_interval.items():
                    if 0 <= int(i) < n:
                        per[int(i)] += b
            report.setdefault("received_bytes", {})[d.name] = per
        report["forecast_changes"] = [
            change_row(c) for c in reversed(prov.changes(limit=1000)) if c.recommendation_id
        ]
        print(
            f"replay done; {len(report['forecast_changes'])} forecast-driven change(s). Seeded faults and "
            f"clean changes next ({scn.faults} + {scn.clean})",
            flush=True,
        )
        spares_in = frozenset(
            c["params"]["link"]
            for c in report["forecast_changes"]
            if c["template"].startswith("spare_link@") and c["state"] == "DEPLOYED"
        )
        report["campaign"] = run_campaign(
            prov, campaign(spec, scn, isolated, [d.name for d in demands], spares_in)
        )
        report["controller"] = {k: int(v) for k, v in sorted(lab.client.status().counters.items())}
        report["hosts"] = [
            dict(mac=h.mac, dp_id=h.dp_id, port=h.port_no, ipv4=list(h.ipv4)) for h in lab.client.hosts()
        ]
    finally:
        for proc in procs:  # whatever still runs after a failure, by handle
            terminate(proc, 5.0)
        for client in (slices, prov):
            if client is not None:
                client.close()
        if lab is not None:
            report["controller_exit_s"] = lab.stop()
        if predictor is not None:
            predictor.stop()
        if workdir is None and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(own, ignore_errors=True)
    report.update(summarise(report))
    return report


def watch(slices, prov, demands, clock: dict, n: int, step_s: float, links=None) -> list[dict]:
    """One row per step and slice until the replay ends: measured demand, bandwidth, the
    forecast need (when there is one), and every change's state; with ``links``
    (``(controller client, {name: (src dp, dst dp)})``) one row per step and link too:
    its rate at the last port poll and its capacity (0: not in service)."""
    rows = []
    end = clock["real_origin_s"] + n * step_s + step_s
    while time.time() < clock["real_origin_s"]:
        time.sleep(0.1)
    while time.time() < end:
        now_v = clock["virtual_origin_s"] + (time.time() - clock["real_origin_s"]) * clock["time_scale"]
        recs = {r.resource: r for r in prov.recommendations().recommendations}
        for d in demands:
            view = slices.get(d.name)
            rec = recs.get(f"slice:{d.name}")
            rows.append(
                dict(
                    t=now_v,
                    slice=d.name,
                    bandwidth_mbps=view.bandwidth_mbps,
                    offered_mbps=view.rates.offered_in_mbps,
                    delivered_mbps=view.rates.delivered_in_mbps,
                    need_mbps=rec.need_mbps if rec else None,
                    p_exceed=rec.confidence if rec else None,
                )
            )
        if links is not None:
            client, wanted = links
            seen = {(lk.src_dp_id, lk.dst_dp_id): lk for lk in client.topology().links}
            for name, ends in wanted.items():
                lk = seen.get(ends)
                rec = recs.get(f"link:{name}")
                rows.append(
                    dict(
                        t=now_v,
                        link=name,
                        rate_mbps=lk.rate_mbps if lk else 0.0,
                        capacity_mbps=lk.capacity_mbps if lk else 0.0,
                        need_mbps=rec.need_mbps if rec else None,
                    )
                )
        time.sleep(step_s)
    return rows


def change_row(c) -> dict:
    from proto import provisioning_pb2 as pb

    row = dict(
        id=c.id,
        template=c.template,
        params=json.loads(c.params_json),
        state=pb.ChangeState.Name(c.state),
        detail=c.detail,
        resource=c.resource,
        created_s=c.created_s,
        crossing_s=c.crossing_s,
        confidence=c.confidence,
        checks=[dict(name=k.name, ok=k.ok, detail=k.detail, s=k.duration_s) for k in c.staging.checks],
    )
    if c.HasField("deploy"):
        row.update(
            deployed_at_s=c.deploy.deployed_at_s,
            before_crossing=c.deploy.before_crossing,
            deploy_s=c.deploy.finished_s - c.deploy.started_s,
        )
    if c.HasField("rollback"):
        row.update(rollback_s=c.rollback.duration_s, restored=c.rollback.restored)
    return row


def run_campaign(prov, items: list[dict]) -> list[dict]:
    import grpc

    from proto import provisioning_pb2 as pb

    out = []
    for i, item in enumerate(items):
        row = dict(kind=item["kind"], template=item["template"], params=item["params"])
        t0 = time.perf_counter()
        try:
            c = prov.stage(
                template=item["template"], params=item["params"], need_mbps=item.get("need_mbps", 0.0)
            )
        except grpc.RpcError as err:
            row.update(state="REFUSED", detail=f"{err.code().name}: {err.details()}")
            out.append(row)
            continue
        row.update(
            change=c.id,
            state=pb.ChangeState.Name(c.state),
            detail=c.detail,
            stage_s=time.perf_counter() - t0,
            failed=[k.name for k in c.staging.checks if not k.ok],
            checks=[dict(name=k.name, ok=k.ok, s=k.duration_s) for k in c.staging.checks],
        )
        if item["kind"] == "clean" and c.state == pb.STAGED:
            t1 = time.perf_counter()
            deployed = prov.deploy(c.id)
            row.update(
                deployed=pb.ChangeState.Name(deployed.state),
                deploy_detail=deployed.detail,
                deploy_s=time.perf_counter() - t1,
                deploy_checks={k.name: k.detail for k in deployed.deploy.checks},
            )
            if deployed.state == pb.DEPLOYED:
                t1 = time.perf_counter()
                back = prov.rollback(c.id, "lab: clean change taken back")
                row.update(
                    rollback_s=back.rollback.duration_s,
                    rollback_call_s=time.perf_counter() - t1,
                    restored=back.rollback.restored,
                )
        out.append(row)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(items)} changes staged", flush=True)
    return out


def summarise(report: dict) -> dict:
    rows = report.get("campaign", [])
    faults = [r for r in rows if r["kind"] != "clean"]
    clean = [r for r in rows if r["kind"] == "clean"]
    caught = [
        r
        for r in faults
        if r["state"] == "STAGE_FAILED" and any(f in FAULT_CHECKS[r["kind"]] for f in r.get("failed", []))
    ]
    false_alarms = [r for r in clean if r["state"] != "STAGED"]
    rollbacks = sorted(r["rollback_s"] for r in clean if "rollback_s" in r)
    forecast = report.get("forecast_changes", [])
    answered = [c for c in forecast if c["crossing_s"]]
    before = [c for c in answered if c.get("before_crossing")]
    demand = against_demand(report)
    by_kind = {}
    for r in faults:
        k = by_kind.setdefault(r["kind"], {"seeded": 0, "caught": 0})
        k["seeded"] += 1
        k["caught"] += r in caught
    return {
        "seeded_faults": len(faults),
        "faults_caught": len(caught),
        "faults_by_kind": by_kind,
        "missed_faults": [
            dict(kind=r["kind"], state=r["state"], detail=r.get("detail", ""))
            for r in faults
            if r not in caught
        ],
        "clean_changes": len(clean),
        "false_alarms": len(false_alarms),
        "false_alarm_details": [dict(state=r["state"], detail=r.get("detail", "")) for r in false_alarms],
        "deployed_before_crossing": (len(before) / len(answered)) if answered else None,
        "forecast_changes_deployed": sum(1 for c in forecast if "deployed_at_s" in c),
        **demand,
        **spare_figures(clean),
        **link_against_demand(report),
        "rollback_s": rollbacks[-1] if rollbacks else None,
        "rollback_s_p50": float(np.median(rollbacks)) if rollbacks else None,
        "rollbacks": len(rollbacks),
        "stage_s_p50": float(np.median([r["stage_s"] for r in rows if "stage_s" in r])) if rows else None,
        "verify_s_p99": _pct(
            [k["s"] for r in rows for k in r.get("checks", []) if k["name"] == "verify"], 99
        ),
    }


def link_against_demand(report: dict) -> dict:
    """The thin link's changes against the replayed demand crossing it (the sum of its
    slices' replayed rates, per 5-minute sample): whether it really exceeded the link's
    capacity and whether the change was in place first; and the samples whose demand
    exceeded the capacity with no change in place, against all that did."""
    thin = report.get("thin")
    if not thin:
        return {}
    origin = report["replay"]["start_time"]
    per = [report.get("replayed_mbps", {}).get(name, []) for name in thin["demands"]]
    load = [sum(x) for x in zip(*per)] if per else []
    over = [origin + 300 * i for i, r in enumerate(load) if r > thin["capacity_mbps"]]
    changes = sorted(
        (
            c
            for c in report.get("forecast_changes", [])
            if c["resource"] == f"link:{thin['a']}-{thin['b']}" and "deployed_at_s" in c
        ),
        key=lambda c: c["deployed_at_s"],
    )
    first = changes[0]["deployed_at_s"] if changes else None
    for c in changes:
        c.update(replaced_mbps=thin["capacity_mbps"], demand_crossed_s=over[0] if over else None)
    return {
        "link_changes": len(changes),
        "link_demand_crossed_s": over[0] if over else None,
        "link_deployed_before_demand": None if not (changes and over) else first <= over[0],
        "link_overloaded_samples": sum(1 for t in over if first is None or t < first),
        "link_overloaded_samples_static": len(over),
    }


def spare_figures(clean: list[dict]) -> dict:
    """The spare link brought into service and out again by the campaign's spare_link changes."""
    rows = [r for r in clean if r["template"] == "spare_link"]
    if not rows:
        return {}
    served = [r for r in rows if r.get("deployed") == "DEPLOYED"]
    return {
        "spare_changes": len(rows),
        "spare_in_service": len(served),
        "spare_restored": sum(1 for r in served if r.get("restored")),
        "spare_deploy_s_p50": float(np.median([r["deploy_s"] for r in served])) if served else None,
        "spare_rollback_s_max": max((r["rollback_s"] for r in served), default=None),
    }


def against_demand(report: dict) -> dict:
    """The changes against the replayed demand itself (what was sent, per 5-minute sample):
    for each forecast-driven change, whether the demand really exceeded the bandwidth it
    replaced and whether the change was in place first; and the samples whose demand
    exceeded the bandwidth in force, against those that would have with the starting
    bandwidth kept (no provisioning)."""
    origin = report["replay"]["start_time"]
    out = {"overloaded_samples": 0, "overloaded_samples_static": 0, "samples": 0}
    ahead, late, unneeded = [], [], []
    for d in report["demands"]:
        rates = report.get("replayed_mbps", {}).get(d["name"], [])
        changes = sorted(
            (
                c
                for c in report.get("forecast_changes", [])
                if c["resource"] == f"slice:{d['name']}" and "deployed_at_s" in c
            ),
            key=lambda c: c["deployed_at_s"],
        )
        bw, since = d["bandwidth_mbps"], origin
        for c in changes:
            crossed = next(
                (origin + 300 * i for i, r in enumerate(rates) if origin + 300 * i >= since and r > bw), None
            )
            row = dict(
                id=c["id"],
                slice=d["name"],
                replaced_mbps=bw,
                deployed_at_s=c["deployed_at_s"],
                demand_crossed_s=crossed,
            )
            (unneeded if crossed is None else ahead if crossed >= c["deployed_at_s"] else late).append(row)
            c.update(replaced_mbps=bw, demand_crossed_s=crossed)
            bw, since = c["params"]["bandwidth_mbps"], c["deployed_at_s"]
        for i, r in enumerate(rates):
            t = origin + 300 * i
            in_force = d["bandwidth_mbps"]
            for c in changes:
                if c["deployed_at_s"] <= t:
                    in_force = c["params"]["bandwidth_mbps"]
            out["samples"] += 1
            out["overloaded_samples"] += r > in_force
            out["overloaded_samples_static"] += r > d["bandwidth_mbps"]
    crossed = len(ahead) + len(late)
    out.update(
        deployed_before_demand_crossed=(len(ahead) / crossed) if crossed else None,
        changes_ahead_of_demand=len(ahead),
        changes_after_demand=len(late),
        changes_demand_never_needed=len(unneeded),
    )
    return out


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def render(report: dict) -> str:
    scn = report["scenario"]
    lines = [
        f"provisioning lab: {scn['topology']}, {len(report['demands'])} slices on real OD demand "
        f"({', '.join(d['pair'] for d in report['demands'])}), {report['replay']['samples']} samples, "
        f"{scn['step_real_s']:g} s each; rehearsal {'on' if scn['rehearsal'] else 'off'}",
        "",
    ]
    bc = report.get("deployed_before_crossing")
    lines.append(
        f"forecast-driven changes   {len(report.get('forecast_changes', []))}, deployed before their "
        f"forecast crossing: {'n/a' if bc is None else f'{bc:.0%}'} (goal >= 95 %)"
    )
    for c in report.get("forecast_changes", []):
        if "deployed_at_s" not in c:
            lines.append(f"  {c['id']} {c['resource']:<10} {c['state']:<12} {c['detail']}")
            continue
        lead = (c["crossing_s"] - c["deployed_at_s"]) / 60
        real = c.get("demand_crossed_s")
        what = "capacity" if c["resource"].startswith("link:") else "bandwidth"
        truth = (
            f"the replayed demand never exceeded the old {what}"
            if real is None
            else f"the replayed demand exceeded the old {c['replaced_mbps']:g} Mbit/s {what} "
            f"{(real - c['deployed_at_s']) / 60:+.0f} min from it"
        )
        lines.append(
            f"  {c['id']} {c['resource']:<10} {json.dumps(c['params'])}: in place {lead:+.0f} min "
            f"before the forecast crossing; {truth}"
        )
    db = report.get("deployed_before_demand_crossed")
    lines.append(
        f"against the replayed demand: {report.get('changes_ahead_of_demand', 0)} change(s) in place "
        f"before it exceeded the old bandwidth, {report.get('changes_after_demand', 0)} after"
        + ("" if db is None else f" ({db:.0%} ahead)")
    )
    lines.append(
        f"5-minute samples over the bandwidth in force: {report.get('overloaded_samples', 0)} of "
        f"{report.get('samples', 0)}; with the starting bandwidth kept: "
        f"{report.get('overloaded_samples_static', 0)}"
    )
    thin = report.get("thin")
    if thin:
        crossed = report.get("link_demand_crossed_s")
        ahead = report.get("link_deployed_before_demand")
        if crossed is None:
            truth = "never exceeded it"
        else:
            minutes = (crossed - report["replay"]["start_time"]) / 60
            when = {True: "with the change in place", False: "before the change was in place"}
            truth = f"exceeded it {minutes:.0f} min into the replay, {when.get(ahead, 'with no change')}"
        lines.append(
            f"thin link {thin['a']} -> {thin['b']} ({thin['capacity_mbps']:g} Mbit/s, the fit span's "
            f"q{report['scenario']['thin_quantile']:g} of {', '.join(thin['demands'])}): "
            f"{report.get('link_changes', 0)} change(s); the replayed demand {truth}"
        )
        lines.append(
            f"5-minute samples over the thin link's capacity with nothing in place: "
            f"{report.get('link_overloaded_samples', 0)} of "
            f"{report.get('link_overloaded_samples_static', 0)} that exceeded it"
        )
    sf, fc = report.get("seeded_faults", 0), report.get("faults_caught", 0)
    lines += [
        "",
        f"seeded faults             {fc}/{sf} caught in staging"
        + (f" ({fc / sf:.1%}; goal >= 95 %)" if sf else ""),
    ]
    for kind, k in sorted(report.get("faults_by_kind", {}).items()):
        lines.append(f"  {kind:<16} {k['caught']}/{k['seeded']}")
    for m in report.get("missed_faults", [])[:5]:
        lines.append(f"  MISSED {m['kind']}: {m['state']} {m['detail']}")
    lines.append(
        f"clean changes             {report.get('clean_changes', 0)}, false alarms "
        f"{report.get('false_alarms', 0)} (goal 0)"
    )
    for m in report.get("false_alarm_details", [])[:5]:
        lines.append(f"  FALSE ALARM {m['state']}: {m['detail']}")
    rb = report.get("rollback_s")
    if rb is not None:
        lines.append(
            f"rollback                  {report['rollbacks']} clean changes rolled back: p50 "
            f"{report['rollback_s_p50'] * 1e3:.0f} ms, max {rb * 1e3:.0f} ms (goal < 1 s)"
        )
    if report.get("spare_changes"):
        lines.append(
            f"spare link                {report['spare_in_service']}/{report['spare_changes']} turned over "
            f"(ports up or down, the topology and forwarding following: p50 "
            f"{report['spare_deploy_s_p50'] or 0:.2f} s), {report['spare_restored']} turned back with every "
            f"switch as before (max {(report['spare_rollback_s_max'] or 0) * 1e3:.0f} ms)"
        )
    if report.get("verify_s_p99") is not None:
        lines.append(
            f"staging                   p50 {report['stage_s_p50']:.2f} s per change; in-memory "
            f"verification p99 {report['verify_s_p99'] * 1e3:.1f} ms per change"
        )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d["name"] for d in report["demands"]]
    thin = report.get("thin")
    panels = len(names) + (1 if thin else 0)
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), squeeze=False)
    t0 = report["replay"]["start_time"]
    if thin:
        plot_link(axes[-1, 0], report, thin, t0)
    for ax, name in zip(axes[:, 0], names):
        rows = [r for r in report.get("timeline", []) if r.get("slice") == name]
        t = [(r["t"] - t0) / 3600 for r in rows]
        ax.plot(t, [r["offered_mbps"] for r in rows], label="measured at the slice's meter", color="tab:blue")
        sent = report.get("replayed_mbps", {}).get(name, [])
        got = report.get("received_bytes", {}).get(name, [])
        step_h = 300 / 3600
        ax.plot(
            [i * step_h for i in range(len(sent))], sent, label="replayed demand", color="tab:gray", lw=0.8
        )
        if got:
            ax.plot(
                [i * step_h for i in range(len(got))],
                [b * 8 / 1e6 / report["scenario"]["step_real_s"] for b in got],
                label="delivered to the member",
                color="tab:purple",
                lw=0.8,
            )
        ax.step(t, [r["bandwidth_mbps"] for r in rows], where="post", label="bandwidth", color="tab:green")
        _need_and_changes(ax, report, rows, t, t0, f"slice:{name}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_link(ax, report: dict, thin: dict, t0: float) -> None:
    """The thin link: its load and capacity, the spare's load, the forecast need, the changes."""
    name = f"{thin['a']}-{thin['b']}"
    rows = [r for r in report.get("timeline", []) if r.get("link") == name]
    t = [(r["t"] - t0) / 3600 for r in rows]
    ax.plot(t, [r["rate_mbps"] for r in rows], label=f"{name} measured", color="tab:blue")
    ax.step(t, [r["capacity_mbps"] for r in rows], where="post", label=f"{name} capacity", color="tab:green")
    spare = {}
    for r in report.get("timeline", []):
        if "link" in r and r["link"] != name and r["link"] in report.get("spare_links", []):
            spare[r["t"]] = spare.get(r["t"], 0.0) + r["rate_mbps"]
    if spare:
        ts = sorted(spare)
        ax.plot([(x - t0) / 3600 for x in ts], [spare[x] for x in ts], label="spare link", color="tab:purple")
    _need_and_changes(ax, report, rows, t, t0, f"link:{name}")


def _need_and_changes(ax, report: dict, rows: list[dict], t: list[float], t0: float, resource: str) -> None:
    """A panel's forecast need, its changes (staged, deployed, forecast crossing), labels."""
    need = [(x, r["need_mbps"]) for x, r in zip(t, rows) if r["need_mbps"] is not None]
    if need:
        ax.scatter(*zip(*need), s=10, label="forecast need (q0.95)", color="tab:orange")
    for c in report.get("forecast_changes", []):
        if c["resource"] != resource:
            continue
        ax.axvline((c["created_s"] - t0) / 3600, color="tab:gray", ls=":", lw=1)
        if "deployed_at_s" in c:
            ax.axvline((c["deployed_at_s"] - t0) / 3600, color="tab:green", ls="--", lw=1)
        if c["crossing_s"]:
            ax.axvline((c["crossing_s"] - t0) / 3600, color="tab:red", ls="-.", lw=1)
    kind, _, name = resource.partition(":")
    ax.set_title(f"{kind} {name}: staged (dotted), deployed (dashed), forecast crossing (dash-dot)")
    ax.set_xlabel("hours into the replay")
    ax.set_ylabel("Mbit/s")
    ax.legend(loc="upper left", fontsize=8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="foresight lab run provisioning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = Scenario()
    ap.add_argument(
        "--step-real-s", type=float, default=d.step_real_s, help="real seconds per 5-minute sample"
    )
    ap.add_argument("--samples", type=int, default=0, help="samples to replay (default: trough to peak)")
    ap.add_argument("--peak-mbps", type=float, default=d.peak_mbps)
    ap.add_argument("--faults", type=int, default=d.faults, help="seeded faulty changes")
    ap.add_argument(
        "--clean", type=int, default=d.clean, help="clean changes (staged, deployed, rolled back)"
    )
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--no-rehearsal", action="store_true", help="verification only (no staging copy)")
    ap.add_argument(
        "--span",
        choices=("evaluation", "fit"),
        default="evaluation",
        help="replay the evaluation span (default) or the fit span's last day, trained on the "
        "days before it (for choosing settings)",
    )
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="P(exceed) that raises a need (default: the app's, 1 - service quantile)",
    )
    ap.add_argument(
        "--spare",
        nargs=2,
        metavar=("A", "B"),
        default=list(d.spare),
        help="switches (names or labels) a spare link is cabled between, held out of service "
        f"(default: {' '.join(d.spare)})",
    )
    ap.add_argument("--no-spare", action="store_true", help="no spare link")
    ap.add_argument(
        "--spare-changes",
        type=int,
        default=d.spare_changes,
        help="clean spare_link changes in the campaign (staged, deployed, rolled back)",
    )
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    if args.step_real_s < 1.5:
        ap.error("--step-real-s must be >= 1.5 (the meters are polled every 0.5 s)")
    for name in ("faults", "clean", "samples", "spare_changes"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scn = Scenario(
        step_real_s=args.step_real_s,
        samples=args.samples,
        peak_mbps=args.peak_mbps,
        faults=args.faults,
        clean=args.clean,
        seed=args.seed,
        rehearsal=not args.no_rehearsal,
        span=args.span,
        threshold=args.threshold,
        spare=() if args.no_spare else tuple(args.spare),
        spare_changes=args.spare_changes,
    )
    report = run(scn)
    text = render(report)
    print(text)
    out = Path(args.out)
    write_report(out, "provisioning", text, report)
    plot(report, out / "provisioning.png")
    slipped = report["seeded_faults"] - report["faults_caught"]
    return 0 if report.get("forecast_changes") and not slipped else 1


if __name__ == "__main__":
    sys.exit(main())
