"""``foresight peering ...``: the peering API from the command line.

    foresight peering list                  every neighbour's session, rate, slice
    foresight peering candidates            scores and the numbers behind them
    foresight peering plan [--decisions N]  each prefix group's exit, the last decisions
    foresight peering establish NAME        operator override: bring up, keep up
    foresight peering withdraw NAME         operator override: take down, keep down
    foresight peering release NAME          end an override
    foresight peering watch [NAME]          stream session events and decisions

The controller address is the operator CLI's (--controller / $FORESIGHT_CONTROLLER).
"""

from __future__ import annotations

import argparse
import time

from proto import peering_pb2 as pb


def _client(args):
    from apps.peering.client import PeeringClient

    return PeeringClient(args.controller)


def _state(value: int) -> str:
    return pb.SessionState.Name(value)


def _session_line(s) -> str:
    override = {pb.FORCE_UP: " [override up]", pb.FORCE_DOWN: " [override down]"}.get(s.override, "")
    slice_ = f" slice {s.slice_mbps:g} Mbit/s {s.slice_priority}" if s.slice_mbps else ""
    return (
        f"{s.name:<10} AS{s.asn:<6} {s.kind:<7} {_state(s.state):<11} {s.prefixes:>6} prefixes "
        f"{s.groups:>4} groups {s.rate_mbps:>7.2f}/{s.capacity_mbps:g} Mbit/s ({s.utilisation:.0%})"
        f"{slice_}{override}  {s.detail}"
    )


def cmd_list(args) -> int:
    with _client(args) as client:
        for s in client.list():
            print(_session_line(s))
    return 0


def cmd_candidates(args) -> int:
    with _client(args) as client:
        rows = client.candidates()
    if not rows:
        print("no candidates scored yet (the planner scores them at each step)")
    for c in rows:
        print(
            f"{c.name:<10} {c.kind:<7} {c.verdict:<14} carries {c.carried_mbps:.2f} of "
            f"{c.reachable_mbps:.2f} "
            f"Mbit/s reachable, capacity {c.capacity_mbps:g}; saves {c.saving_per_hour:.4f}/h, costs "
            f"{c.cost_per_hour:.4f}/h, net {c.net_per_hour:+.4f}/h; latency -{c.latency_gain_ms:.1f} ms; "
            f"risk {c.overload_risk:.0%}\n           {c.why}"
        )
    return 0


def cmd_plan(args) -> int:
    with _client(args) as client:
        plan = client.plan(decisions=args.decisions)
    state = f"degraded: {plan.degraded_reason}" if plan.degraded else "speaker connected"
    print(f"scheme {plan.scheme} ({plan.basis}), transit p95 {plan.transit_p95_mbps:.2f} Mbit/s, {state}")
    by_exit: dict[str, list] = {}
    for g in plan.groups:
        by_exit.setdefault(g.exit or "(no route)", []).append(g)
    for exit_, groups in sorted(by_exit.items()):
        mbps = sum(g.measured_mbps for g in groups)
        print(
            f"  {exit_:<10} {len(groups):>4} groups {sum(g.prefixes for g in groups):>6} prefixes "
            f"{mbps:>8.2f} Mbit/s measured"
        )
    for d in plan.decisions:
        print(f"  {time.strftime('%m-%d %H:%M', time.gmtime(d.time))} {d.kind:<10} {d.target:<10} {d.detail}")
    return 0


def _override(method: str):
    def run(args) -> int:
        with _client(args) as client:
            print(_session_line(getattr(client, method)(args.name)))
        return 0

    return run


def cmd_watch(args) -> int:
    with _client(args) as client:
        stream = client.watch(args.name)
        try:
            for event in stream:
                print(f"{pb.EventKind.Name(event.kind):<9} {event.name:<10} {event.detail}", flush=True)
        except KeyboardInterrupt:
            stream.cancel()
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    peering = sub.add_parser("peering", help="proactive peering: sessions, candidates, plan, overrides")
    psub = peering.add_subparsers(dest="peering_command", required=True)
    psub.add_parser("list", help="every neighbour's session").set_defaults(func=cmd_list)
    psub.add_parser("candidates", help="candidate scores").set_defaults(func=cmd_candidates)
    plan = psub.add_parser("plan", help="the plan in force and the last decisions")
    plan.add_argument("--decisions", type=int, default=20)
    plan.set_defaults(func=cmd_plan)
    for name, text in (
        ("establish", "bring a session up and keep it up"),
        ("withdraw", "take a session down and keep it down"),
        ("release", "end an override: the planner decides again"),
    ):
        cmd = psub.add_parser(name, help=text)
        cmd.add_argument("name")
        cmd.set_defaults(func=_override(name))
    watch = psub.add_parser("watch", help="stream session events and decisions")
    watch.add_argument("name", nargs="?", default="")
    watch.set_defaults(func=cmd_watch)
