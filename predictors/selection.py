"""Model selection: fit every candidate, score it on held-out data, serve the best.

``train(panel, horizons)`` holds out the last ``validation_steps`` rows, fits each
candidate on the rest, and scores every candidate at every horizon on validation
targets (origins ``o`` with ``o + h`` in the held-out rows, so every horizon is
scored on the same targets). Every series gets, per horizon, the option with the
lowest validation MAE averaged over all series.

Two refinements exist but are off by default. ``pairs=True`` also scores the
equal-weight mean of each pair among the three best models ("a+b").
``per_series=True`` lets a series switch to its own winner when that is at least
``SERIES_MARGIN`` (10%) better on that series, and only at horizons where a
two-fold check inside the validation rows (choose on one half, score on the
other) says switching helps.

Defaults: a nested backtest inside Abilene's fit span alone (fit on days 1–8 with
the last of them as validation, scored on days 9–10) found that both refinements
made the served forecast worse than the plain per-horizon best. With one day of
validation, per-series and pair choices fit noise.
Intervals come from a ``Calibrator`` per (option, horizon) fitted on that option's
validation residuals, scaled by ``calibration.local_scale``, and kept up to date
with realised residuals by ``recalibrate`` (live) or ``walk_forward`` (backtests);
see ``predictors.calibration``. Finally the learned
models are refitted on the whole panel (validation rows included: they are the
most recent data). All candidates are kept, so backtests can report every model
through ``forecast_many(..., option=name)``; the served forecast uses the choice.

Candidates default to the naive baselines, exponential smoothing, gradient
boosting, a random (quantile regression) forest and, when importable, the LSTM/GRU
``RecurrentForecaster``; the ``FORESIGHT_MODELS`` environment variable (comma list
of names) restricts them.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from predictors.calibration import Calibrator, local_scale, walk_forward
from predictors.models.base import Forecaster, ModelError
from predictors.panel import Panel

log = logging.getLogger(__name__)

SERIES_MARGIN = 0.10
RECALIBRATION_DAYS = 2          # realised residuals the calibrators keep (see calibration.py)
DEFAULT_QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
_FORMAT = 2


@dataclass
class TrainReport:
    validation_mae: dict[str, dict[int, float]]     # option name -> horizon steps -> MAE over series
    chosen: dict[int, list[str]]                     # horizon steps -> option name per series
    global_best: dict[int, str]                      # horizon steps -> best option over all series
    train_start_s: float
    train_end_s: float                               # time of the last training row
    validation_steps: int
    seconds: float
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def default_candidates(step_s: int, recurrent: bool = True) -> list[Forecaster]:
    from predictors.models.boosting import BoostingForecaster
    from predictors.models.forest import ForestForecaster
    from predictors.models.naive import baselines
    from predictors.models.smoothing import SmoothingForecaster

    out = baselines(step_s) + [SmoothingForecaster(), BoostingForecaster(), ForestForecaster()]
    if recurrent:
        try:
            from predictors.models.recurrent import RecurrentForecaster
            out += [RecurrentForecaster(cell="lstm"), RecurrentForecaster(cell="gru")]
        except Exception as exc:          # optional: TensorFlow or the module may be missing
            log.warning("recurrent models unavailable (%s); skipping them", exc)
    wanted = os.environ.get("FORESIGHT_MODELS", "").strip()
    if wanted:
        names = {w.strip() for w in wanted.split(",") if w.strip()}
        out = [m for m in out if m.name in names]
        if not out:
            raise ModelError(f"FORESIGHT_MODELS={wanted!r} matches no candidate")
    return out


class Selection:
    """Fitted candidates, the option chosen per (series, horizon) and its calibrators."""

    def __init__(self, models: list[Forecaster], options: dict[int, list[tuple[int, ...]]],
                 choice: dict[int, np.ndarray], calibrators: dict[tuple[int, int], Calibrator],
                 step_s: int, names: Sequence[str], meta: dict):
        self.models = models
        self.options = options                  # horizon -> list of member-index tuples
        self.choice = choice                    # horizon -> [N] index into options[horizon]
        self.calibrators = calibrators          # (horizon, option index) -> Calibrator
        self.step_s = int(step_s)
        self.names = tuple(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.horizons_steps = tuple(sorted(options))
        self.meta = meta
        self.version = meta["version"]
        # horizon -> time of the last origin whose residual the calibrators have seen
        self.calibrated_through_s = {int(h): float(t) for h, t in meta["calibrated_through_s"].items()}

    def option_names(self, horizon_steps: int) -> list[str]:
        return ["+".join(self.models[i].name for i in members) for members in self.options[horizon_steps]]

    def _check(self, panel: Panel, horizon_steps: int) -> None:
        if horizon_steps not in self.options:
            raise ModelError(f"horizon_steps {horizon_steps} was not trained; "
                             f"trained: {list(self.horizons_steps)}")
        if panel.n_series != len(self.names):
            raise ModelError(f"panel has {panel.n_series} series, the model was trained on {len(self.names)}")
        if panel.step_s != self.step_s:
            raise ModelError(f"panel step {panel.step_s} s differs from the model's {self.step_s} s")

    def forecast_many(self, panel: Panel, origins: np.ndarray, horizon_steps: int,
                      quantiles: Sequence[float], option: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean [M, N], quantiles [Q, M, N] and option index per series [N] at many origins.

        With ``option`` (a name from ``option_names``) every series uses that option
        instead of the served choice: backtests report each model this way."""
        horizon_steps = int(horizon_steps)
        self._check(panel, horizon_steps)
        origins = np.asarray(origins, dtype=np.int64)
        names = self.option_names(horizon_steps)
        choice = (self.choice[horizon_steps] if option is None
                  else np.full(len(self.names), self._option_index(names, option, horizon_steps)))
        cache: dict[int, np.ndarray] = {}
        mean = np.full((len(origins), panel.n_series), np.nan)
        qs = np.full((len(quantiles), len(origins), panel.n_series), np.nan)
        scale = local_scale(panel, origins)
        for k in np.unique(choice):
            cols = np.flatnonzero(choice == k)
            members = self.options[horizon_steps][k]
            for i in members:
                if i not in cache:
                    cache[i] = self.models[i].predict(panel, origins, horizon_steps)
            point = np.mean([cache[i] for i in members], axis=0)
            mean[:, cols] = point[:, cols]
            cal = self.calibrators[(horizon_steps, int(k))]
            for j, q in enumerate(quantiles):
                qs[j][:, cols] = np.maximum(cal.interval(point, scale, q)[:, cols], 0.0)
        return mean, qs, choice.copy()

    def _points(self, panel: Panel, origins: np.ndarray, horizon_steps: int, option: int) -> np.ndarray:
        return np.mean([self.models[i].predict(panel, origins, horizon_steps)
                        for i in self.options[horizon_steps][option]], axis=0)

    def walk_forward(self, panel: Panel, origins: np.ndarray, horizon_steps: int, quantiles: Sequence[float],
                     option: str | None = None, every: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like ``forecast_many`` over consecutive origins, with the intervals the live
        service would have given: recalibrated every ``every`` steps (default an hour)
        on the residuals known by then. ``panel`` must hold the targets; the
        selection itself is not changed."""
        horizon_steps = int(horizon_steps)
        self._check(panel, horizon_steps)
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size and np.any(np.diff(origins) != 1):
            raise ModelError("walk_forward needs consecutive origins")
        if origins.size and origins[-1] + horizon_steps >= len(panel):
            raise ModelError("walk_forward needs the targets of every origin in the panel")
        every = every or max(1, round(3600 / self.step_s))
        names = self.option_names(horizon_steps)
        choice = (self.choice[horizon_steps] if option is None
                  else np.full(len(self.names), self._option_index(names, option, horizon_steps)))
        mean = np.full((len(origins), panel.n_series), np.nan)
        qs = np.full((len(quantiles), len(origins), panel.n_series), np.nan)
        scale = local_scale(panel, origins)
        actual = panel.values[origins + horizon_steps]
        for k in np.unique(choice):
            cols = np.flatnonzero(choice == k)
            point = self._points(panel, origins, horizon_steps, int(k))
            q = walk_forward(self.calibrators[(horizon_steps, int(k))], point, scale, actual, horizon_steps,
                             quantiles, every)
            mean[:, cols] = point[:, cols]
            qs[:, :, cols] = np.maximum(q[:, :, cols], 0.0)
        return mean, qs, choice.copy()

    def recalibrate(self, panel: Panel, all_options: bool = False) -> int:
        """Feed the calibrators the residuals that became known since the last call.

        ``panel`` is recent history with this selection's series. Only the served
        options are updated unless ``all_options``. Returns the residual rows used."""
        used = 0
        for h in self.horizons_steps:
            self._check(panel, h)
            last = len(panel) - 1 - h                       # newest origin with a known target
            first = int(np.searchsorted(panel.times, self.calibrated_through_s[h], side="right"))
            window = self.calibrators[(h, int(self.choice[h][0]))].window or 1
            first = max(first, last - window + 1, 0)
            if last < first:
                continue
            origins = np.arange(first, last + 1)
            scale = local_scale(panel, origins)
            actual = panel.values[origins + h]
            options = range(len(self.options[h])) if all_options else np.unique(self.choice[h])
            for k in options:
                point = self._points(panel, origins, h, int(k))
                self.calibrators[(h, int(k))].observe(actual - point, scale)
            self.calibrated_through_s[h] = float(panel.times[last])
            used += len(origins)
        return used

    @staticmethod
    def _option_index(names: list[str], option: str, horizon_steps: int) -> int:
        if option not in names:
            raise ModelError(f"option {option!r} unknown for horizon {horizon_steps}; known: {names}")
        return names.index(option)

    def forecast(self, panel: Panel, series: list[int], horizon_steps: int, quantiles: Sequence[float]
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Mean [S], quantile values [S, Q] and the option name per series, at the last row."""
        origin = np.array([len(panel) - 1])
        mean, qs, choice = self.forecast_many(panel, origin, horizon_steps, quantiles)
        names = self.option_names(int(horizon_steps))
        cols = list(series)
        return mean[0, cols], qs[:, 0, cols].T.copy(), [names[choice[c]] for c in cols]

    def metadata(self) -> dict:
        return {**self.meta,
                "calibrated_through_s": {str(h): t for h, t in self.calibrated_through_s.items()}}

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, model in enumerate(self.models):
            model.save(path / "models" / f"{i:02d}_{model.name}")
        state = {"options": {str(h): [list(m) for m in o] for h, o in self.options.items()},
                 "choice": {str(h): c.tolist() for h, c in self.choice.items()},
                 "models": [f"{i:02d}_{m.name}" for i, m in enumerate(self.models)]}
        (path / "state.json").write_text(json.dumps(state))
        with open(path / "calibrators.pkl", "wb") as fh:
            pickle.dump(self.calibrators, fh)
        (path / "metadata.json").write_text(json.dumps(self.metadata(), indent=2, default=str))

    @staticmethod
    def read_metadata(path: Path) -> dict:
        return json.loads((Path(path) / "metadata.json").read_text())

    @staticmethod
    def load(path: Path) -> "Selection":
        path = Path(path)
        meta = Selection.read_metadata(path)
        if meta.get("format") != _FORMAT:
            raise ModelError(f"{path}: unsupported selection format {meta.get('format')!r}")
        state = json.loads((path / "state.json").read_text())
        models = [Forecaster.load(path / "models" / d) for d in state["models"]]
        with open(path / "calibrators.pkl", "rb") as fh:
            calibrators = pickle.load(fh)
        options = {int(h): [tuple(m) for m in o] for h, o in state["options"].items()}
        choice = {int(h): np.asarray(c, dtype=np.int64) for h, c in state["choice"].items()}
        return Selection(models, options, choice, calibrators, meta["step_s"], meta["names"], meta)


def default_validation_steps(panel: Panel) -> int:
    """One day, or a third of the panel when that is shorter (GÉANT: 72 of 216 rows)."""
    return max(1, min(panel.period_steps(), len(panel) // 3))


def train(panel: Panel, horizons_steps: Sequence[int], candidates: list[Forecaster] | None = None,
          validation_steps: int | None = None, quantiles: Sequence[float] = DEFAULT_QUANTILES,
          progress: Callable[[float, str], None] | None = None, refit: bool = True,
          per_series: bool = False, pairs: bool = False) -> tuple[Selection, TrainReport]:
    """Fit, score, choose and calibrate; see the module docstring.

    ``per_series`` and ``pairs`` are off by default: see "Defaults" there."""
    started = time.time()
    say = progress or (lambda fraction, message: None)
    horizons = tuple(sorted({int(h) for h in horizons_steps}))
    if not horizons or horizons[0] < 1:
        raise ModelError(f"horizons_steps must be positive, got {list(horizons_steps)}")
    candidates = list(candidates) if candidates is not None else default_candidates(panel.step_s)
    if not candidates:
        raise ModelError("no candidate models")
    val = int(validation_steps or default_validation_steps(panel))
    split = len(panel) - val
    if val < 1 or split < 2 or split - horizons[-1] < 1:
        raise ModelError(f"validation_steps {val} leaves too little training data in {len(panel)} rows "
                         f"for horizon {horizons[-1]}")
    train_panel = panel.slice(0, split)
    learned_share = 0.6 if refit else 0.9
    fitted, skipped = [], []
    for i, model in enumerate(candidates):
        say(learned_share * i / len(candidates), f"fitting {model.name}")
        try:
            fitted.append(model.fit(train_panel, horizons))
        except Exception as exc:       # one failing candidate must not sink the selection
            log.exception("candidate %s failed to fit; skipping it", model.name)
            skipped.append(f"{model.name}: {type(exc).__name__}: {exc}")
    if not fitted:
        raise ModelError(f"every candidate failed: {skipped}")
    say(learned_share, "scoring on validation")
    options, choice, calibrators = {}, {}, {}
    scores: dict[str, dict[int, float]] = {}
    chosen, global_best = {}, {}
    for h in horizons:
        origins = np.arange(split - h, len(panel) - h)
        actual = panel.values[origins + h]
        preds = [m.predict(panel, origins, h) for m in fitted]
        opts = [(i,) for i in range(len(fitted))]
        if pairs:
            top = sorted(range(len(fitted)), key=lambda i: _mae(preds[i], actual).mean())[:3]
            opts += [tuple(sorted((a, b))) for k, a in enumerate(top) for b in top[k + 1:]]
        points = [np.mean([preds[i] for i in o], axis=0) for o in opts]
        option_mae = np.stack([_mae(p, actual) for p in points])         # [options, N]
        best = int(np.argmin(option_mae.mean(axis=1)))
        choice[h] = np.full(panel.n_series, best, dtype=np.int64)
        if per_series and _switching_helps(points, actual):
            choice[h] = _choose(option_mae, best)
        switch = choice[h] != best
        options[h] = opts
        scale = local_scale(panel, origins)
        window = max(val, RECALIBRATION_DAYS * panel.period_steps())
        for k, p in enumerate(points):
            calibrators[(h, k)] = Calibrator(window=window).fit(actual - p, scale, quantiles)
        names = ["+".join(fitted[i].name for i in o) for o in opts]
        for name, s in zip(names, option_mae.mean(axis=1)):
            scores.setdefault(name, {})[h] = float(s)
        chosen[h] = [names[k] for k in choice[h]]
        global_best[h] = names[best]
        log.info("horizon %d: best %s (MAE %.3f); %d series use their own winner", h, names[best],
                 option_mae[best].mean(), int(switch.sum()))
    if refit:
        learned = [m for m in fitted if m.learned]
        for i, model in enumerate(learned):
            say(learned_share + (1 - learned_share) * i / max(1, len(learned)), f"refitting {model.name}")
            model.fit(panel, horizons)
    seconds = time.time() - started
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f"-{int(started * 1000) % 1000:03d}"
    report = TrainReport(scores, chosen, global_best, float(panel.times[0]), float(panel.times[-1]),
                         val, seconds, skipped)
    meta = {"format": _FORMAT, "version": version, "trained_at_s": started, "step_s": panel.step_s,
            "names": list(panel.names), "horizons_steps": list(horizons),
            "training_span": {"start_s": float(panel.times[0]), "end_s": float(panel.times[-1]),
                              "rows": len(panel)},
            "validation_steps": val,
            "validation_mae": {n: {str(h): v for h, v in s.items()} for n, s in scores.items()},
            "global_best": {str(h): n for h, n in global_best.items()},
            "chosen_counts": {str(h): _counts(c) for h, c in chosen.items()},
            "chosen": {str(h): c for h, c in chosen.items()},
            "models": [m.name for m in fitted], "skipped": skipped, "seconds": seconds,
            "quantiles": list(quantiles),
            "calibrated_through_s": {str(h): float(panel.times[len(panel) - 1 - h]) for h in horizons}}
    say(1.0, "done")
    return Selection(fitted, options, choice, calibrators, panel.step_s, panel.names, meta), report


def _choose(per_series: np.ndarray, best: int) -> np.ndarray:
    """Per series: its own winner if that beats option ``best`` by SERIES_MARGIN, else ``best``."""
    own = np.argmin(per_series, axis=0)
    cols = np.arange(per_series.shape[1])
    switch = per_series[own, cols] < (1 - SERIES_MARGIN) * per_series[best, cols]
    return np.where(switch, own, best).astype(np.int64)


def _switching_helps(points: list[np.ndarray], actual: np.ndarray) -> bool:
    """Two-fold check on the validation rows: choose on one half, score on the other.

    Per-series winners picked on a day of data can be noise; switching is kept only
    when, chosen on one half and scored on the other (both ways), it lowers the MAE."""
    half = len(actual) // 2
    if half < 4:
        return False
    gain = 0.0
    for a, b in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
        per_a = np.stack([_mae(p[a], actual[a]) for p in points])
        per_b = np.stack([_mae(p[b], actual[b]) for p in points])
        best = int(np.argmin(per_a.mean(axis=1)))
        chosen = _choose(per_a, best)
        cols = np.arange(per_b.shape[1])
        gain += per_b[best].mean() - per_b[chosen, cols].mean()
    return bool(gain > 0)


def _mae(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-series MAE, NaN-aware; a forecast that is NaN where the actual is not counts as unusable."""
    err = np.abs(pred - actual)
    err = np.where(np.isnan(actual), np.nan, np.where(np.isnan(err), np.inf, err))
    with np.errstate(all="ignore"):
        out = np.nanmean(err, axis=0)
    return np.where(np.isnan(out), np.inf, out)


def _counts(names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out
