"""``foresight``: the operator's command line, a client of the northbound API.

    foresight topology            switches and directed links with utilisation
    foresight hosts               learned hosts
    foresight path SRC DST        the path between two hosts or switches
    foresight watch [KIND ...]    stream topology events until interrupted
    foresight status              mode, counters

The controller address comes from --controller or $FORESIGHT_CONTROLLER
(default 127.0.0.1:50051).

Only commands that are clients of the northbound API live here. ``build_parser``
returns the parser and its subcommands so that the ``foresight`` entry point can add
commands that need more (lab scenarios, offline evaluation) without this module
naming them; ``run`` runs whichever command was parsed.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc


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


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``foresight`` parser with the northbound commands, and its subcommands
    (``add_parser`` more on them; each sets ``func``, called with the parsed args)."""
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
    return ap, sub


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; a refused or failed northbound call is exit code 1."""
    try:
        return args.func(args)
    except grpc.RpcError as err:
        print(f"foresight: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    ap, _ = build_parser()
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
