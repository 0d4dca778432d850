"""Rolling-origin backtest on a dataset's evaluation span, fitted on its fit span only.

``run(panel, split, horizons)`` trains a ``Selection`` on ``[0, fit_end)`` (its own
validation carved from the end of that span), then forecasts from every origin
``o`` in ``[fit_end - 1, eval_end - h)``: the first forecast is made at the end of
the fit span and every target lies in the evaluation span. Evaluation values only
ever enter as history before an origin, and the intervals are recalibrated
walking forward exactly as the live service does (``Selection.walk_forward``: a
residual is used only once its target lies at or before the origin); nothing
else is fitted or tuned on them. This
origin convention reproduces the yardsticks of ../shared/data/README.md (Abilene
persistence 2.51 / 4.43 / 7.35 / 9.77, GÉANT 8.70 / 14.07 / 25.57 Mbit/s).

Each result row is ``{dataset, model, horizon_s, mae, rmse, coverage_80,
coverage_95, width_80, width_95, served}``: one row per single candidate model
(every series forecast by that model, with its own calibrated intervals), a row for
any model pair that was the best option of a horizon on validation, and one row
with ``model == "served"`` and ``served == true``: the forecast the service would
give, i.e. the selector's choice per (series, horizon). ``served`` is false on all
other rows. MAE is over all OD pairs (diagonal excluded), mean over origins and
series, Mbit/s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from predictors.models.base import Forecaster
from predictors.panel import Panel, Split
from predictors.selection import Selection, TrainReport, train

log = logging.getLogger(__name__)

HORIZONS_S = {"abilene": (300, 3600, 21600, 86400), "geant": (900, 3600, 21600)}
_QUANTILES = (0.025, 0.1, 0.9, 0.975)


@dataclass
class BacktestResult:
    rows: list[dict]
    selection: Selection
    report: TrainReport
    served: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]   # horizon -> (origins, mean, q [4, M, N])


def _score(mean: np.ndarray, qs: np.ndarray, actual: np.ndarray) -> dict:
    ok = np.isfinite(actual) & np.isfinite(mean)
    err = (mean - actual)[ok]
    lo95, lo80, hi80, hi95 = (q[ok] for q in qs)
    y = actual[ok]
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "coverage_80": float(np.mean((y >= lo80) & (y <= hi80))),
            "coverage_95": float(np.mean((y >= lo95) & (y <= hi95))),
            "width_80": float(np.mean(hi80 - lo80)), "width_95": float(np.mean(hi95 - lo95))}


def run(panel: Panel, split: Split, horizons_s: Sequence[int], dataset: str = "",
        candidates: list[Forecaster] | None = None, validation_steps: int | None = None,
        progress: Callable[[float, str], None] | None = None) -> BacktestResult:
    horizons = [max(1, round(h / panel.step_s)) for h in horizons_s]
    fit_panel = panel.slice(0, split.fit_end)
    selection, report = train(fit_panel, horizons, candidates=candidates,
                              validation_steps=validation_steps, progress=progress)
    history = panel.slice(0, split.eval_end)
    rows, served = [], {}
    for h in horizons:
        origins = np.arange(split.fit_end - 1, split.eval_end - h)
        actual = history.values[origins + h]
        names = selection.option_names(h)
        listed = [n for n in names if "+" not in n]
        if "+" in report.global_best[h]:
            listed.append(report.global_best[h])
        for name in listed:
            mean, qs, _ = selection.walk_forward(history, origins, h, _QUANTILES, option=name)
            rows.append({"dataset": dataset, "model": name, "horizon_s": h * panel.step_s,
                         **_score(mean, qs, actual), "served": False})
        mean, qs, _ = selection.walk_forward(history, origins, h, _QUANTILES)
        rows.append({"dataset": dataset, "model": "served", "horizon_s": h * panel.step_s,
                     **_score(mean, qs, actual), "served": True})
        served[h] = (origins, mean, qs)
    return BacktestResult(rows, selection, report, served)


def format_table(rows: list[dict], naive_names: Sequence[str] = ()) -> str:
    """A plain-text table per horizon; '*' marks the served row, compared with the best naive row."""
    lines = [f"{'':2}{'model':<38}{'horizon':>8}{'MAE':>9}{'RMSE':>9}{'cov80':>7}{'cov95':>7}"
             f"{'width80':>9}{'width95':>9}"]
    for h_s in sorted({r["horizon_s"] for r in rows}):
        group = [r for r in rows if r["horizon_s"] == h_s]
        naive = [r["mae"] for r in group if r["model"] in naive_names]
        for r in sorted(group, key=lambda r: (r["served"], -r["mae"])):
            mark = "*" if r["served"] else " "
            label = r["model"]
            if r["served"] and naive:
                label += f" ({100 * (r['mae'] / min(naive) - 1):+.1f}% vs best naive)"
            lines.append(f"{mark:2}{label:<38}{_h(h_s):>8}{r['mae']:9.3f}{r['rmse']:9.3f}"
                         f"{100 * r['coverage_80']:6.1f}%{100 * r['coverage_95']:6.1f}%"
                         f"{r['width_80']:9.2f}{r['width_95']:9.2f}")
        lines.append("")
    return "\n".join(lines)


def _h(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds / 60:g}min"


def plot(result: BacktestResult, panel: Panel, horizon_steps: int, path: Path, n_panels: int = 4,
         title: str = "") -> None:
    """Predicted vs actual with the 80% band for the busiest series at one horizon."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origins, mean, qs = result.served[horizon_steps]
    targets = origins + horizon_steps
    busiest = np.argsort(-np.nanmean(panel.values[targets], axis=0))[:n_panels]
    t_hours = (panel.times[targets] - panel.times[0]) / 3600.0
    fig, axes = plt.subplots(len(busiest), 1, figsize=(11, 2.6 * len(busiest)), sharex=True)
    for ax, col in zip(np.atleast_1d(axes), busiest):
        ax.fill_between(t_hours, qs[1][:, col], qs[2][:, col], color="tab:blue", alpha=0.25,
                        label="80% interval")
        ax.plot(t_hours, panel.values[targets, col], color="black", lw=0.8, label="actual")
        ax.plot(t_hours, mean[:, col], color="tab:blue", lw=0.9, label="forecast")
        ax.set_ylabel("Mbit/s")
        ax.set_title(panel.names[col], fontsize=9)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("hours since the start of the data")
    fig.suptitle(title or f"served forecast, horizon {_h(horizon_steps * panel.step_s)}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
