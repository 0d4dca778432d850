"""``foresight``: the operator's command line, a client of the northbound API.

    foresight topology            switches and directed links with utilisation
    foresight hosts               learned hosts
    foresight path SRC DST        the path between two hosts or switches
    foresight watch [KIND ...]    stream topology events until interrupted
    foresight status              mode, counters
    foresight lab run SCENARIO    run a lab scenario (needs root): demo, slices, te, stitching
    foresight lab list            list the scenarios
    foresight te-eval --dataset abilene|geant|all [--k 4] [--json FILE] [--png FILE]
                                  offline TE evaluation (MLU of shortest path, ECMP,
                                  reactive, predictive and oracle TE); no controller

The controller address comes from --controller or $FORESIGHT_CONTROLLER
(default 127.0.0.1:50051).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import grpc

SCENARIOS = {
    "demo": ("labs.demo", "Abilene: discovery, pingAll, iperf3, path and link utilisation"),
    "slices": ("labs.slices_lab", "Abilene: two slices scaled ahead of replayed real OD demand"),
    "te": ("labs.te_lab", "Abilene: replayed real traffic matrices, TE off then on: loss, link load"),
    "stitching": ("labs.stitching_lab", "three sites: an encrypted stitch, an underlay failure, a bandwidth "
                                              "stitch, teardown"),
}


def _client(args):
    from controller.client import ControllerClient
    return ControllerClient(args.controller)


def cmd_topology(args) -> int:
    with _client(args) as client:
        topo = client.topology()
    names = {s.dp_id: s.name for s in topo.switches}
    print(f"{len(topo.switches)} switches, {len(topo.links)} directed links")
    for sw in topo.switches:
        edge = [p.port_no for p in sw.ports if p.is_edge]
        print(f"  {sw.dp_id:>4}  {sw.name:<12} ports={len(sw.ports)} host_ports={edge}")
    print(f"  {'link':<16} {'from':<12} {'to':<12} {'capacity':>12} {'rate':>10} {'util':>6}")
    for link in topo.links:
        print(f"  {link.name:<16} {names.get(link.src_dp_id, ''):<12} {names.get(link.dst_dp_id, ''):<12} "
              f"{link.capacity_mbps:>9.2f} Mb {link.rate_mbps:>7.2f} Mb {link.utilisation:>6.1%}")
    return 0


def cmd_hosts(args) -> int:
    with _client(args) as client:
        hosts = client.hosts(args.dp_id)
    for host in hosts:
        print(f"{host.mac}  {','.join(host.ipv4) or '-':<16} dp={host.dp_id} port={host.port_no}")
    print(f"{len(hosts)} hosts")
    return 0


def cmd_path(args) -> int:
    with _client(args) as client:
        path = client.path(args.src, args.dst)
    hops = " -> ".join(f"{h.name}[{h.in_port}>{h.out_port}]" for h in path.hops)
    print(f"{path.src} -> {path.dst}: {hops}  cost={path.cost:g} installed={path.installed}")
    return 0


def cmd_watch(args) -> int:
    from proto import controller_pb2 as pb
    with _client(args) as client:
        try:
            for event in client.watch(args.kinds):
                what = event.link.name if event.HasField("link") else event.host_mac or event.port_no
                print(f"{event.time:.3f} {pb.EventKind.Name(event.kind):<12} dp={event.dp_id} {what} "
                      f"{event.detail}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_status(args) -> int:
    with _client(args) as client:
        status = client.status()
    print(f"mode={status.mode} uptime={status.uptime_s:.0f}s switches={status.switches} "
          f"links={status.links} hosts={status.hosts}")
    for key in sorted(status.counters):
        print(f"  {key:<28} {status.counters[key]}")
    return 0


def cmd_lab(args) -> int:
    if args.lab_command == "list" or args.scenario is None:
        for name, (_, text) in sorted(SCENARIOS.items()):
            print(f"{name:<10} {text}")
        return 0
    if args.scenario not in SCENARIOS:
        print(f"unknown scenario {args.scenario!r}; known: {', '.join(sorted(SCENARIOS))}", file=sys.stderr)
        return 2
    module = importlib.import_module(SCENARIOS[args.scenario][0])
    return module.main(args.rest)


TE_DATASETS = ("abilene", "geant")


def _te_output(given: str | None, dataset: str, several: bool, suffix: str) -> Path:
    """reports/te_<dataset><suffix> by default; a given FILE gets _<dataset> added when
    several datasets share one command."""
    if given is None:
        return Path("reports") / f"te_{dataset}{suffix}"
    path = Path(given)
    return path.with_name(f"{path.stem}_{dataset}{path.suffix}") if several else path


def cmd_te_eval(args) -> int:
    from apps.te import evaluate

    datasets = []
    for name in args.dataset:
        for dataset in (TE_DATASETS if name == "all" else (name,)):
            if dataset not in datasets:
                datasets.append(dataset)
    several = len(datasets) > 1

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    for dataset in datasets:
        started = time.monotonic()
        try:
            evaluation = evaluate.run(dataset, k=args.k, say=say)
        except ValueError as err:       # TEError, PanelError, TopologyError, ModelError: bad input or data
            print(f"foresight te-eval: {dataset}: {err}", file=sys.stderr)
            return 2
        json_path = _te_output(args.json, dataset, several, ".json")
        png_path = _te_output(args.png, dataset, several, ".png")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(evaluation.rows(), indent=2) + "\n")
        evaluate.plot(evaluation, png_path)
        print(evaluate.format_table(evaluation))
        print(f"wrote {json_path} and {png_path} in {time.monotonic() - started:.0f} s\n", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="foresight", description="Foresight operator CLI")
    ap.add_argument("--controller", default=os.environ.get("FORESIGHT_CONTROLLER", "127.0.0.1:50051"),
                    help="northbound gRPC address (default: %(default)s)")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("topology", help="switches and links").set_defaults(func=cmd_topology)
    hosts = sub.add_parser("hosts", help="learned hosts")
    hosts.add_argument("--dp-id", type=int, default=0)
    hosts.set_defaults(func=cmd_hosts)
    path = sub.add_parser("path", help="path between two hosts or switches")
    path.add_argument("src")
    path.add_argument("dst")
    path.set_defaults(func=cmd_path)
    watch = sub.add_parser("watch", help="stream topology events")
    watch.add_argument("kinds", nargs="*", help="e.g. LINK_ADD LINK_DELETE (default: all)")
    watch.set_defaults(func=cmd_watch)
    sub.add_parser("status", help="controller status").set_defaults(func=cmd_status)
    lab = sub.add_parser("lab", help="lab scenarios in Mininet (root)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    lab_sub.add_parser("list")
    run = lab_sub.add_parser("run")
    run.add_argument("scenario")
    run.add_argument("rest", nargs=argparse.REMAINDER, help="scenario options")
    lab.set_defaults(func=cmd_lab, scenario=None, rest=[])
    te = sub.add_parser("te-eval", help="offline traffic-engineering evaluation on a dataset",
                        description="Route every evaluation-span traffic matrix by shortest path, ECMP, "
                                    "reactive, predictive and oracle TE and compare their MLU. Forecasters "
                                    "are fitted on the fit span only ($FORESIGHT_MODELS restricts them).")
    te.add_argument("--dataset", action="append", required=True, choices=TE_DATASETS + ("all",),
                    help="dataset to evaluate; repeat it or say 'all' for both")
    te.add_argument("--k", type=int, default=4, help="candidate paths per OD pair (default: %(default)s)")
    te.add_argument("--json", help="rows per scheme (default reports/te_<dataset>.json; with several "
                                   "datasets FILE gets _<dataset> before its suffix)")
    te.add_argument("--png", help="MLU over time (default reports/te_<dataset>.png; same naming)")
    te.set_defaults(func=cmd_te_eval)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except grpc.RpcError as err:
        print(f"foresight: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
