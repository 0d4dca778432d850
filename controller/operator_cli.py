"""``foresight``: the operator's command line, a client of the northbound API.

    foresight topology            switches and directed links with utilisation
    foresight hosts               learned hosts
    foresight path SRC DST        the path between two hosts or switches
    foresight watch [KIND ...]    stream topology events until interrupted
    foresight status              mode, counters
    foresight lab run SCENARIO    run a lab scenario (needs root): demo, slices
    foresight lab list            list the scenarios

The controller address comes from --controller or $FORESIGHT_CONTROLLER
(default 127.0.0.1:50051).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import grpc

SCENARIOS = {
    "demo": ("topologies.demo", "Abilene: discovery, pingAll, iperf3, path and link utilisation"),
    "slices": ("topologies.slices_lab", "Abilene: two slices scaled ahead of replayed real OD demand"),
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
