"""``foresight``: the operator's command line. The northbound commands come from
``controller.operator_cli`` (topology, hosts, path, watch, status); this entry point
adds the ones that need more than the API:

    foresight lab run SCENARIO    run a lab scenario (needs root): demo, slices, te, stitching, peering,
                                  provisioning
    foresight peering ...         the peering API (apps.peering.cli)
    foresight provision ...       the provisioning API (apps.provisioning.cli)
    foresight lab list            list the scenarios
    foresight te-eval --dataset abilene|geant|all [--k 4] [--json FILE] [--png FILE]
                                  offline TE evaluation (MLU of shortest path, ECMP,
                                  reactive, predictive and oracle TE); no controller
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from controller import operator_cli

SCENARIOS = {
    "demo": ("labs.demo", "Abilene: discovery, pingAll, iperf3, path and link utilisation"),
    "slices": ("labs.slices_lab", "Abilene: two slices scaled ahead of replayed real OD demand"),
    "te": ("labs.te_lab", "Abilene: replayed real traffic matrices, TE off then on: loss, link load"),
    "peering": ("labs.peering_lab", "edge AS: real BGP (GoBGP, FRR), replayed real demand; plain BGP, "
                                    "reactive "
                                    "and predictive peering side by side"),
    "provisioning": ("labs.provisioning_lab", "Abilene: slices provisioned ahead of replayed real demand, "
                                              "every change staged (verified, rehearsed); seeded faults"),
    "stitching": ("labs.stitching_lab", "three sites: an encrypted stitch, an underlay failure, a bandwidth "
                                        "stitch, teardown"),
}


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
    from labs import te_eval as evaluate

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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``lab`` and ``te-eval`` on the operator CLI's subcommands."""
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


def main(argv: list[str] | None = None) -> int:
    from apps.peering import cli as peering_cli
    from apps.provisioning import cli as provisioning_cli

    ap, sub = operator_cli.build_parser()
    add_commands(sub)
    peering_cli.add_commands(sub)
    provisioning_cli.add_commands(sub)
    return operator_cli.run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
