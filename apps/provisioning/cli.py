"""``foresight provision ...``: the provisioning API from the command line.

    foresight provision recommendations          the queue of needs, highest priority first
    foresight provision queue                    changes not yet deployed, in working order
    foresight provision templates                the template library, modes and accuracy
    foresight provision stage REC_ID             render a recommendation and stage it
    foresight provision stage --template T --params JSON [--crossing S]
    foresight provision stage CHANGE_ID          stage a queued or failed change again
    foresight provision deploy CHANGE_ID         deploy a staged change (approval)
    foresight provision rollback CHANGE_ID [--reason TEXT]
    foresight provision show CHANGE_ID           render, staging report, deploy, rollback, outcome
    foresight provision list [--limit N]         changes, newest first
    foresight provision watch [CHANGE_ID]        stream transitions and evaluations

The controller address is the operator CLI's (--controller / $FORESIGHT_CONTROLLER).
"""

from __future__ import annotations

import argparse
import json

from proto import provisioning_pb2 as pb


def _client(args):
    from apps.provisioning.client import ProvisioningClient

    return ProvisioningClient(args.controller)


def _state(c) -> str:
    return pb.ChangeState.Name(c.state)


def _change_line(c) -> str:
    crossing = f" crossing {c.crossing_s:.0f}" if c.crossing_s else ""
    return f"{c.id}  {_state(c):<12} {c.template:<20} {c.summary}{crossing}  ({c.detail})"


def _checks(title: str, checks) -> list[str]:
    lines = [f"  {title}:"]
    for k in checks:
        lines.append(
            f"    {'ok  ' if k.ok else 'FAIL'} {k.name:<18} {k.detail}  [{k.duration_s * 1e3:.1f} ms]"
        )
    return lines


def show(c) -> str:
    lines = [
        _change_line(c),
        f"  params {c.params_json}  mode {c.mode}  resource {c.resource or '-'}"
        f"  confidence {c.confidence:.0%}",
    ]
    if c.HasField("staging"):
        lines += _checks(f"staging ({c.staging.updates} rule updates)", c.staging.checks)
    if c.HasField("deploy"):
        d = c.deploy
        lines += _checks(
            f"deploy on {', '.join(d.switches)} in {d.finished_s - d.started_s:.2f} s"
            f"{' before its crossing' if d.before_crossing else ''}",
            d.checks,
        )
    if c.HasField("rollback"):
        r = c.rollback
        lines.append(
            f"  rollback in {r.duration_s * 1e3:.0f} ms ({r.reason}); "
            f"{'previous state restored' if r.restored else 'switches differ from before'}"
        )
    if c.HasField("outcome"):
        o = c.outcome
        lines.append(
            f"  outcome: peak {o.measured_peak_mbps:.2f} Mbit/s against previous {o.previous_mbps:g}, "
            f"promised {o.promised_mbps:g}, forecast need {o.forecast_mbps:.2f}: "
            f"{'needed' if o.needed else 'not needed'}, {'held' if o.held else 'exceeded'}"
        )
    return "\n".join(lines)


def cmd_recommendations(args) -> int:
    with _client(args) as client:
        r = client.recommendations()
    print(f"basis {r.basis}; evaluated at {r.evaluated_s:.0f} ({r.trigger or 'never'})")
    if not r.recommendations:
        print("no recommendation: no resource is forecast to exceed its capacity")
    for x in r.recommendations:
        print(
            f"{x.priority:>8.3f}  {x.id:<32} {x.action}\n          confidence {x.confidence:.0%}, "
            f"deadline {x.deadline_s:.0f} s; {x.reason}{'; change ' + x.change_id if x.change_id else ''}"
        )
    return 0


def cmd_queue(args) -> int:
    with _client(args) as client:
        changes = client.queue()
    if not changes:
        print("the queue is empty")
    for c in changes:
        print(_change_line(c))
    return 0


def cmd_templates(args) -> int:
    with _client(args) as client:
        for t in client.templates():
            latest = " (latest)" if t.latest else ""
            params = ", ".join(json.loads(t.params_schema_json).get("properties", {}))
            print(
                f"{t.name}@{t.version}{latest:<9} {t.mode:<8} accuracy {t.accuracy:.0%} of {t.outcomes} "
                f"outcome(s)  {t.summary}\n    params: {params}"
            )
    return 0


def cmd_stage(args) -> int:
    with _client(args) as client:
        if args.template:
            try:
                params = json.loads(args.params or "{}")
            except ValueError as err:
                raise SystemExit(f"--params: not JSON: {err}") from None
            c = client.stage(template=args.template, params=params, crossing_s=args.crossing)
        elif args.id and args.id[0] == "c" and args.id[1:].isdigit():
            c = client.stage(change_id=args.id)
        elif args.id:
            c = client.stage(recommendation_id=args.id)
        else:
            raise SystemExit("stage: give a recommendation id, a change id, or --template and --params")
    print(show(c))
    return 0 if c.state != pb.STAGE_FAILED else 1


def cmd_deploy(args) -> int:
    with _client(args) as client:
        c = client.deploy(args.id)
    print(show(c))
    return 0 if c.state == pb.DEPLOYED else 1


def cmd_rollback(args) -> int:
    with _client(args) as client:
        print(show(client.rollback(args.id, args.reason)))
    return 0


def cmd_show(args) -> int:
    with _client(args) as client:
        print(show(client.change(args.id)))
    return 0


def cmd_list(args) -> int:
    with _client(args) as client:
        for c in client.changes(args.limit):
            print(_change_line(c))
    return 0


def cmd_watch(args) -> int:
    with _client(args) as client:
        stream = client.watch(args.id)
        try:
            for e in stream:
                print(
                    f"{pb.EventKind.Name(e.kind):<10} {e.time_s:.0f} {e.change_id:<7} {e.detail}", flush=True
                )
        except KeyboardInterrupt:
            stream.cancel()
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    prov = sub.add_parser("provision", help="predictive provisioning: recommendations, staging, deploys")
    psub = prov.add_subparsers(dest="provision_command", required=True)
    psub.add_parser("recommendations", help="the queue of needs").set_defaults(func=cmd_recommendations)
    psub.add_parser("queue", help="changes not yet deployed").set_defaults(func=cmd_queue)
    psub.add_parser("templates", help="the template library").set_defaults(func=cmd_templates)
    stage = psub.add_parser("stage", help="render and stage a recommendation, a template, or a change again")
    stage.add_argument("id", nargs="?", default="", help="recommendation id or change id")
    stage.add_argument("--template", default="", help="template name or name@version")
    stage.add_argument("--params", default="", help="the template's parameters, a JSON object")
    stage.add_argument("--crossing", type=float, default=0.0, help="app-clock time of the need it answers")
    stage.set_defaults(func=cmd_stage)
    for name, func, text in (
        ("deploy", cmd_deploy, "deploy a staged change"),
        ("show", cmd_show, "one change in full"),
    ):
        cmd = psub.add_parser(name, help=text)
        cmd.add_argument("id")
        cmd.set_defaults(func=func)
    rb = psub.add_parser("rollback", help="roll a deployed change back")
    rb.add_argument("id")
    rb.add_argument("--reason", default="operator")
    rb.set_defaults(func=cmd_rollback)
    ls = psub.add_parser("list", help="changes, newest first")
    ls.add_argument("--limit", type=int, default=0)
    ls.set_defaults(func=cmd_list)
    watch = psub.add_parser("watch", help="stream transitions and evaluations")
    watch.add_argument("id", nargs="?", default="")
    watch.set_defaults(func=cmd_watch)
