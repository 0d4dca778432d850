"""The prediction service's domain logic, with no gRPC in it: ingest, forecast,
training jobs, model versions and anomaly scores.

The active model is a ``Selection`` (see ``predictors.selection``) loaded from the
models directory; a training job builds a new one in a child process and the
service swaps it in atomically (one reference assignment, and the ``ACTIVE``
pointer file replaced with ``os.replace``). A restarted service loads the active
version and its sample history at once. Series the model has never seen, too
little history or no model at all are answered by a fallback (persistence with
empirical intervals) and flagged ``degraded``.

Intervals stay calibrated as traffic changes: once an hour of new samples has
arrived (and when a model is activated, which covers a restart) a background
thread feeds the served calibrators the residuals whose targets are now known
(``Selection.recalibrate``). That is recomputed from the stored history, so a
restart loses nothing.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predictors.jobs import Job, TrainingRunner
from predictors.panel import Panel
from predictors.store import SeriesStore, StoreError

LOG = logging.getLogger(__name__)

ANOMALY_QUANTILES = (0.025, 0.5, 0.975)


class InvalidArgument(ValueError):
    """The request names a field with a bad value."""


class NotFound(LookupError):
    """The request names a series, job or model that does not exist."""


class FailedPrecondition(RuntimeError):
    """The request is valid but the service is not in a state to do it."""


@dataclass(frozen=True)
class ForecastResult:
    series_id: str
    horizon_s: float
    origin_s: float
    mean: float
    quantiles: tuple[float, ...]
    model: str
    degraded: bool
    reason: str = ""


def _check_number(value: float, field: str) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{field}: {value} is not a finite number")
    return float(value)


class PredictorService:
    def __init__(self, store: SeriesStore, models_dir: Path,
                 horizons_s: tuple[float, ...] = (300, 3600, 21600, 86400),
                 history_rows: int = 9 * 288, train_rows: int = 14 * 288):
        self.store = store
        self.models_dir = Path(models_dir)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.horizons_s = tuple(horizons_s)
        self.history_rows = history_rows
        self.train_rows = train_rows
        self.lock = threading.RLock()
        self.active = None
        self.runner = TrainingRunner(self.models_dir, self._activate)
        self._threads = _native_pools()
        self._recalibrating = threading.Lock()
        self.recalibrated_slot = -1          # newest slot the served calibrators have caught up with
        self._load_active()

    # ---- models --------------------------------------------------------------------

    def _load_active(self) -> None:
        pointer = self.models_dir / "ACTIVE"
        if not pointer.exists():
            LOG.info("no trained model yet: forecasts are degraded (persistence) until one is trained")
            return
        version = pointer.read_text().strip()
        try:
            self._activate(version)
        except Exception:  # noqa: BLE001 - a broken model directory must not stop the service
            LOG.exception("cannot load active model %s; serving degraded forecasts", version)

    def _activate(self, version: str) -> None:
        from predictors.selection import Selection
        selection = Selection.load(self.models_dir / version)
        if selection.step_s != self.store.step_s:
            raise FailedPrecondition(f"model {version} uses a {selection.step_s} s step, "
                                     f"service {self.store.step_s} s")
        with self.lock:
            self.active = selection
            # A model may have loaded a native library (scikit-learn's OpenMP) that was
            # not there before: the pools to limit are looked up again.
            self._threads = _native_pools()
        tmp = self.models_dir / "ACTIVE.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.models_dir / "ACTIVE")
        LOG.info("serving model %s (horizons %s steps, %d series)", version, selection.horizons_steps,
                 len(selection.names))
        self.recalibrated_slot = -1
        self.recalibrate_soon()

    @property
    def model_version(self) -> str:
        active = self.active
        return active.version if active is not None else ""

    def list_models(self) -> list[dict]:
        from predictors.selection import Selection
        active = self.model_version
        out = []
        for path in sorted(self.models_dir.iterdir(), reverse=True):
            if not (path / "metadata.json").exists():
                continue
            try:
                meta = Selection.read_metadata(path)
            except Exception:  # noqa: BLE001 - list what can be read
                LOG.warning("unreadable model metadata in %s", path)
                continue
            out.append(_model_info(meta, active))
        return sorted(out, key=lambda m: (not m["active"], -m["trained_at_s"]))

    # ---- ingest ------------------------------------------------------------------------

    def ingest(self, samples: list[tuple[str, float, float, dict]]) -> tuple[int, int, float]:
        if not samples:
            raise InvalidArgument("samples: the stream was empty")
        try:
            summary = self.store.add(samples)
        except StoreError as err:
            raise InvalidArgument(str(err)) from None
        self.recalibrate_soon()
        return summary

    # ---- recalibration ---------------------------------------------------------------------

    def recalibrate_soon(self, wait: bool = False) -> None:
        """Start a background recalibration when an hour of samples arrived since the last."""
        active = self.active
        if active is None or not active.names or not self.store.known(active.names[0]):
            return
        newest = max(self.store.last_slot(s) for s in active.names if self.store.known(s))
        hour = max(1, round(3600 / self.store.step_s))
        if newest < self.recalibrated_slot + hour or not self._recalibrating.acquire(blocking=False):
            return
        worker = threading.Thread(target=self._recalibrate, args=(active, newest), daemon=True,
                                  name="recalibrate")
        worker.start()
        if wait:
            worker.join()

    def _recalibrate(self, active, newest: int) -> None:
        try:
            if any(not self.store.known(s) for s in active.names):
                return
            window = max(cal.window or 0 for cal in active.calibrators.values())
            panel = self.store.panel(list(active.names), end_slot=newest,
                                     rows=self.history_rows + window + max(active.horizons_steps))
            with self._threads.limit(limits=1):
                used = active.recalibrate(panel)
            self.recalibrated_slot = newest
            if used:
                LOG.info("recalibrated intervals of model %s on %d new residual rows (through %s)",
                         active.version, used, {h * self.store.step_s: t for h, t in
                                               active.calibrated_through_s.items()})
        except Exception:  # noqa: BLE001 - intervals stay as they were; the next hour tries again
            LOG.exception("recalibration failed; intervals keep their previous calibration")
        finally:
            self._recalibrating.release()

    # ---- forecast ------------------------------------------------------------------------

    def _validate(self, series_ids: list[str], horizons_s: list[float], quantiles: list[float]) -> list[int]:
        if not series_ids:
            raise InvalidArgument("series_ids: empty; name at least one series")
        if not horizons_s:
            raise InvalidArgument("horizons_s: empty; name at least one horizon in seconds")
        for i, series_id in enumerate(series_ids):
            if not self.store.known(series_id):
                raise NotFound(f"series_ids[{i}]: unknown series {series_id!r}")
        steps = []
        for i, horizon in enumerate(horizons_s):
            horizon = _check_number(horizon, f"horizons_s[{i}]")
            if horizon <= 0:
                raise InvalidArgument(f"horizons_s[{i}]: {horizon:g} must be > 0")
            ratio = horizon / self.store.step_s
            if abs(ratio - round(ratio)) > 1e-9:
                raise InvalidArgument(f"horizons_s[{i}]: {horizon:g} is not a multiple of the "
                                      f"{self.store.step_s} s step")
            steps.append(int(round(ratio)))
        for i, q in enumerate(quantiles):
            q = _check_number(q, f"quantiles[{i}]")
            if not 0 < q < 1:
                raise InvalidArgument(f"quantiles[{i}]: {q:g} is not in (0, 1)")
        return steps

    def forecast(self, series_ids: list[str], horizons_s: list[float], quantiles: list[float]
                 ) -> tuple[list[ForecastResult], str]:
        steps = self._validate(series_ids, horizons_s, quantiles)
        # One origin is a tiny batch: OpenMP thread fan-out (scikit-learn) costs more
        # than it saves, and collides with the gRPC worker threads.
        with self._threads.limit(limits=1):
            return self._forecast(series_ids, steps, horizons_s, quantiles)

    def _forecast(self, series_ids, steps, horizons_s, quantiles) -> tuple[list[ForecastResult], str]:
        active = self.active
        results: dict[tuple[str, int], ForecastResult] = {}
        groups: dict[int, list[str]] = {}
        for series_id in dict.fromkeys(series_ids):
            groups.setdefault(self.store.last_slot(series_id), []).append(series_id)
        for end_slot, ids in groups.items():
            origin_s = float(end_slot * self.store.step_s)
            trained = [s for s in ids if active is not None and s in active.index]
            full = None
            for hi, (h_steps, h_s) in enumerate(zip(steps, horizons_s)):
                served = active is not None and h_steps in active.horizons_steps
                if trained and served:
                    if full is None:        # one panel for every horizon of this group
                        full = self.store.panel(list(active.names), end_slot=end_slot, rows=self.history_rows)
                    panel = full
                    cols = [active.index[s] for s in trained]
                    mean, qv, models = active.forecast(panel, cols, h_steps, quantiles)
                    for k, s in enumerate(trained):
                        results[(s, hi)] = ForecastResult(s, h_s, origin_s, float(mean[k]),
                                                          tuple(float(v) for v in qv[k]), models[k], False)
                rest = [s for s in ids if (s, hi) not in results]
                if not rest:
                    continue
                if active is None:
                    reason = "no trained model yet"
                elif not served:
                    reason = f"horizon {h_s:g} s is not one the model was trained for"
                else:
                    reason = "series not in the model's training set"
                panel = self.store.panel(rest, end_slot=end_slot, rows=self.history_rows)
                mean, qv = fallback_forecast(panel, h_steps, quantiles)
                for k, s in enumerate(rest):
                    results[(s, hi)] = ForecastResult(s, h_s, origin_s, float(mean[k]),
                                                      tuple(float(v) for v in qv[k]), "persistence", True,
                                                      reason)
        ordered = [results[(s, hi)] for s in series_ids for hi in range(len(steps))]
        return ordered, active.version if active is not None else ""

    # ---- anomalies ------------------------------------------------------------------------

    def anomalies(self, series_ids: list[str], since_s: float, min_score: float, now: float | None = None
                  ) -> tuple[list[dict], str]:
        for i, series_id in enumerate(series_ids):
            if not self.store.known(series_id):
                raise NotFound(f"series_ids[{i}]: unknown series {series_id!r}")
        _check_number(since_s, "since_s")
        _check_number(min_score, "min_score")
        ids = series_ids or self.store.names()
        if not ids:
            return [], self.model_version
        active = self.active
        out = []
        for series_id in ids:
            last = self.store.last_slot(series_id)
            since = since_s or (last * self.store.step_s - 3600)
            first_slot = int(math.ceil(since / self.store.step_s))
            panel = self.store.panel([series_id], end_slot=last, rows=self.history_rows)
            start = panel.times[0] // self.store.step_s
            targets = np.arange(max(first_slot, start + 1), last + 1) - start
            if targets.size == 0:
                continue
            lo, mid, hi, model = self._one_step(active, series_id, panel, targets)
            for k, t in enumerate(targets):
                y = panel.values[t, 0]
                if not math.isfinite(y) or not math.isfinite(mid[k]):
                    continue
                half = (hi[k] - lo[k]) / 2 or 1e-9
                score = abs(y - mid[k]) / half
                if score >= min_score:
                    out.append({"series_id": series_id, "timestamp_s": float(panel.times[t]),
                                "value": float(y),
                                "expected": float(mid[k]), "lower": float(lo[k]), "upper": float(hi[k]),
                                "score": float(score), "anomalous": bool(y < lo[k] or y > hi[k])})
        return out, active.version if active is not None else ""

    def _one_step(self, active, series_id: str, panel: Panel, targets: np.ndarray):
        if active is not None and series_id in active.index and active.horizons_steps:
            h = min(active.horizons_steps)
            full = self.store.panel(list(active.names), end_slot=int(panel.times[-1] // self.store.step_s),
                                    rows=len(panel))
            origins = targets - h
            ok = origins >= 0
            mean, qv, _ = active.forecast_many(full, origins[ok], h, ANOMALY_QUANTILES)
            col = active.index[series_id]
            lo = np.full(targets.size, np.nan)
            mid, hi = lo.copy(), lo.copy()
            lo[ok], mid[ok], hi[ok] = qv[0][:, col], qv[1][:, col], qv[2][:, col]
            return lo, mid, hi, "model"
        lo, mid, hi = [], [], []
        for t in targets:
            _, qv = fallback_forecast(panel.slice(0, int(t)), 1, ANOMALY_QUANTILES)
            lo.append(qv[0, 0]), mid.append(qv[0, 1]), hi.append(qv[0, 2])
        return np.array(lo), np.array(mid), np.array(hi), "persistence"

    # ---- training ---------------------------------------------------------------------------

    def train(self, horizons_s: list[float], validation_steps: int) -> Job:
        horizons_s = list(horizons_s) or list(self.horizons_s)
        names = self.store.names()
        if not names:
            raise FailedPrecondition("no series ingested yet: nothing to train on")
        steps = self._validate(names[:1], horizons_s, [])
        panel = self.store.panel(names, rows=self.train_rows)
        per_day = max(1, 86400 // self.store.step_s)
        # Enough for one day of features, the longest horizon and the validation slice.
        needed = max(steps) + (validation_steps or per_day) + per_day
        if len(panel) < needed:
            raise FailedPrecondition(f"only {len(panel)} steps of history; training for horizons "
                                     f"{max(steps)} steps needs at least {needed}")
        try:
            return self.runner.start(panel, steps, validation_steps)
        except RuntimeError as err:
            raise FailedPrecondition(str(err)) from None

    def job(self, job_id: str) -> Job:
        job = self.runner.jobs.get(job_id)
        if job is None:
            raise NotFound(f"job_id: unknown job {job_id!r}")
        return job

    def close(self) -> None:
        self.runner.stop()
        self.store.close()


def _native_pools():
    """The native thread pools (OpenMP, BLAS) loaded in this process right now."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def _model_info(meta: dict, active_version: str) -> dict:
    """Flatten a Selection's metadata into the fields ListModels reports."""
    step = meta.get("step_s", 0)
    span = meta.get("training_span", {})
    mae = {f"{model}@{int(h) * step}": float(v)
           for model, by_h in meta.get("validation_mae", {}).items() for h, v in by_h.items()}
    chosen = {f"{model}@{int(h) * step}": int(n)
              for h, counts in meta.get("chosen_counts", {}).items() for model, n in counts.items()}
    return {"version": meta.get("version", ""), "active": meta.get("version") == active_version,
            "trained_at_s": float(meta.get("trained_at_s", 0.0)),
            "span_start_s": float(span.get("start_s", 0.0)), "span_end_s": float(span.get("end_s", 0.0)),
            "horizons_s": [float(h) * step for h in meta.get("horizons_steps", [])],
            "series": len(meta.get("names", [])), "validation_mae": mae, "chosen": chosen}


def fallback_forecast(panel: Panel, horizon: int, quantiles) -> tuple[np.ndarray, np.ndarray]:
    """Persistence, with intervals from the empirical distribution of h-step changes."""
    values = panel.values
    last = np.array([_last_finite(values[:, j]) for j in range(values.shape[1])])
    qv = np.tile(last[:, None], (1, len(quantiles))).astype(float)
    if len(quantiles) and values.shape[0] > horizon + 1:
        diffs = values[horizon:] - values[:-horizon]
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                dq = np.nanquantile(diffs, list(quantiles), axis=0).T     # [N, Q]
        qv = last[:, None] + np.nan_to_num(dq)
    return last, qv


def _last_finite(col: np.ndarray) -> float:
    finite = np.flatnonzero(np.isfinite(col))
    return float(col[finite[-1]]) if finite.size else float("nan")
