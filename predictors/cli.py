"""``foresight-predictor``: the forecasting command line.

Subcommands:
  backtest  fit on a dataset's fit span, roll origins over its evaluation span,
            print MAE / RMSE / interval coverage per model and horizon, and write
            JSON rows and a PNG (see ``predictors.backtest``).
  serve     the prediction gRPC service (``predictors.server.main``, imported lazily).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _backtest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from predictors import backtest
    from predictors.models.naive import baselines
    from predictors.panel import SPLITS, load_dataset
    from predictors.selection import default_candidates

    if args.models:
        os.environ["FORESIGHT_MODELS"] = args.models
    panel = load_dataset(args.dataset)
    started = time.time()
    bar = tqdm(total=100, desc=f"training on {args.dataset} fit span", unit="%", file=sys.stderr)

    def progress(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message)
        bar.refresh()

    candidates = default_candidates(panel.step_s, recurrent=not args.no_recurrent)
    result = backtest.run(panel, SPLITS[args.dataset], backtest.HORIZONS_S[args.dataset], args.dataset,
                          candidates=candidates, progress=progress)
    bar.close()
    naive = [m.name for m in baselines(panel.step_s)]
    print(f"{args.dataset}: fit span [0, {SPLITS[args.dataset].fit_end}), evaluation "
          f"[{SPLITS[args.dataset].fit_end}, {SPLITS[args.dataset].eval_end}), "
          f"validation {result.report.validation_steps} rows; '*' = served (selector's choice)")
    print(backtest.format_table(result.rows, naive))
    for h, name in result.report.global_best.items():
        counts = result.selection.metadata()["chosen_counts"][str(h)]
        print(f"horizon {h} steps: validation best {name}; served mix {counts}")
    json_path = Path(args.json or f"reports/backtest_{args.dataset}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result.rows, indent=2))
    png_path = Path(args.png or f"reports/backtest_{args.dataset}.png")
    hour = max(1, round(3600 / panel.step_s))
    plot_h = hour if hour in result.served else sorted(result.served)[0]
    backtest.plot(result, panel.slice(0, SPLITS[args.dataset].eval_end), plot_h, png_path,
                  title=f"{args.dataset}: served forecast vs actual, 80% band")
    print(f"wrote {json_path} and {png_path} in {time.time() - started:.0f} s")
    return 0


def _serve(args: argparse.Namespace) -> int:
    # --- serve: owned by predictors/server.py (written separately); only dispatched here ---
    from predictors import server
    return server.main(args) or 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foresight-predictor", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)
    bt = sub.add_parser("backtest", help="fit on the fit span, evaluate on the evaluation span")
    bt.add_argument("--dataset", required=True, choices=["abilene", "geant"])
    bt.add_argument("--json", help="write result rows here (default reports/backtest_<dataset>.json)")
    bt.add_argument("--png", help="write the plot here (default reports/backtest_<dataset>.png)")
    bt.add_argument("--models", help="comma list of candidate names (same as FORESIGHT_MODELS)")
    bt.add_argument("--no-recurrent", action="store_true", help="leave out the LSTM/GRU candidates")
    bt.set_defaults(func=_backtest)
    # --- serve: arguments are the server's; predictors.server may register more via add_arguments ---
    sv = sub.add_parser("serve", help="run the prediction gRPC service")
    if "serve" in (sys.argv[1:] if argv is None else argv):      # lazy: gRPC only when serving
        from predictors import server
        server.add_arguments(sv)
    sv.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
