"""Global LSTM/GRU forecaster: one network shared by every series of a panel.

The network reads a variable-length window of a series' recent history (padded
on the left and masked; at most ``window`` steps, fewer when less history exists)
plus a few static features of the same origin, and emits, for every fitted horizon
and every quantile, the *residual against persistence* in units of the window's
mean. Starting from persistence (the output layer is zero-initialised) matters:
per-pair traffic is bursty and a network that must learn the level itself loses
to persistence by a wide margin.

- Normalisation: every input and target is divided by the mean of the input
  window (history only), floored at a tenth of the series' mean in the fit panel
  (series are matched by name). Normalising by the long-run series mean instead
  let the network learn reversion to a mean that includes weekends: on the fit
  span's validation slice it forecast weekdays far too low (MAE 12.0 vs 6.1 for
  persistence at 24 h).
- Per step inputs: value / norm, a "present" flag (0 for NaN or padding),
  time-of-day sin/cos; padded steps are all zero and masked.
- Static inputs: log norm (standardised), time of day at the origin, the mean of
  the last period, and per horizon the value at the target's time of day one
  period earlier and its mean over up to 3 periods (all relative to the last value).
- Loss: pinball loss over all (horizon, quantile) outputs, NaN targets masked, each
  sample weighted by its normaliser so the loss tracks MAE in the panel's units.
- Point forecast (``predict``) is the 0.5-quantile output. Quantiles are sorted
  (rearranged) after the forward pass so they never cross, and clipped at 0.
- Early stopping uses a validation slice cut from the END of the panel given to
  ``fit``; training targets never reach into it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from predictors.models.base import Forecaster, ModelError, check_origins
from predictors.panel import Panel

log = logging.getLogger(__name__)

_SEASONAL_PERIODS = 3       # periods averaged for the "seasonal mean" feature
_NORM_FLOOR = 0.1           # normaliser >= this share of the series' fitted mean
_VAL_FRACTION = 0.15        # tail of the fit panel held out for early stopping
_TRUNCATE_PROB = 0.3        # share of training windows cut to a random shorter length
_INPUT_CLIP = 50.0          # normalised inputs are clipped to keep bursts finite
_MAX_VAL_SAMPLES = 30_000
_CHUNK = 8192               # rows per inference call


def _tf():
    """Import TensorFlow lazily (it is slow to import) and keep it to 2 threads."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass    # already initialised by an earlier model in this process
    return tf


def _pinball_loss(quantiles: Sequence[float]):
    from keras import ops
    q = ops.convert_to_tensor(np.asarray(quantiles, dtype=np.float32))

    def loss(y_true, y_pred):                       # [B, H], [B, H, Q]
        ok = ops.logical_not(ops.isnan(y_true))
        err = ops.expand_dims(ops.where(ok, y_true, 0.0), -1) - y_pred
        pin = ops.maximum(q * err, (q - 1.0) * err) * ops.expand_dims(ops.cast(ok, "float32"), -1)
        return ops.mean(pin, axis=(1, 2))
    return loss


class RecurrentForecaster(Forecaster):
    learned = True

    def __init__(self, cell: str = "lstm", window: int | None = None, epochs: int = 8,
                 batch_size: int = 256, units: int = 32, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
                 seed: int = 0, max_train_samples: int | None = 200_000):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ModelError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        quantiles = tuple(sorted(float(q) for q in quantiles))
        if 0.5 not in quantiles or not all(0.0 < q < 1.0 for q in quantiles):
            raise ModelError(f"quantiles must lie in (0, 1) and include 0.5, got {quantiles}")
        if window is not None and window < 1:
            raise ModelError(f"window must be >= 1 step, got {window}")
        self.cell, self.window, self.epochs, self.batch_size = cell, window, int(epochs), int(batch_size)
        self.units, self.quantiles, self.seed = int(units), quantiles, int(seed)
        self.max_train_samples = max_train_samples
        self.name = cell
        self._model = None
        self._infer = None
        self._cache: tuple[bytes, np.ndarray] | None = None
        self._state: dict = {}      # everything besides the weights that forecasts depend on

    # -- features --

    def _window_len(self, step_s: int) -> int:
        # Default: 80 minutes of history, within [8, 32] steps. On Abilene's fit span, 16 steps
        # matched 24 in validation loss and fits in ~60% of the time.
        return self.window or int(np.clip(round(4800 / step_s), 8, 32))

    def _scales(self, panel: Panel) -> np.ndarray:
        names, scale = self._state["names"], np.asarray(self._state["scale"])
        if tuple(panel.names) == tuple(names):
            return scale
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in panel.names if n not in index]
        if missing:
            raise ModelError(f"series not seen in fit: {missing[:5]}")
        return scale[[index[n] for n in panel.names]]

    def _features(self, values: np.ndarray, times: np.ndarray, scale: np.ndarray, origins: np.ndarray,
                  cols: np.ndarray, lengths: np.ndarray):
        """Sequence [S, W, 4], static [S, F], base (last present value, normalised) [S] and the
        normaliser [S] for (origin, series) rows. Everything is relative to the window's mean, so
        the network never sees a series' level against its long-run mean (it would learn to revert
        to a mean that includes weekends)."""
        st = self._state
        w, period, horizons = st["window"], st["period"], st["horizons"]
        idx = origins[:, None] + np.arange(-w + 1, 1)
        in_window = idx >= (origins - lengths + 1)[:, None]
        idx_c = np.maximum(idx, 0)
        raw = values[idx_c, cols[:, None]]
        present = in_window & ~np.isnan(raw)
        n_present = present.sum(axis=1)
        win_mean = np.where(present, np.nan_to_num(raw), 0).sum(axis=1) / np.maximum(n_present, 1)
        norm = np.maximum(win_mean, _NORM_FLOOR * scale[cols])
        z = np.where(present, np.clip(np.nan_to_num(raw) / norm[:, None], 0, _INPUT_CLIP), 0.0)
        angle = 2 * np.pi * (times[idx_c] % 86400) / 86400
        seq = np.stack([z, present, np.sin(angle) * in_window, np.cos(angle) * in_window], axis=-1)
        # Base: the last present value in the window (persistence), 0 if none.
        last = np.where(present, np.arange(w), -1).max(axis=1)
        base_z = np.where(last >= 0, z[np.arange(len(z)), np.maximum(last, 0)], 0.0)

        def rel_mean(index_lists):      # nanmean at each row's indices (< 0 skipped) minus base
            ix = np.stack(index_lists, axis=1)
            v = np.where(ix >= 0, values[np.maximum(ix, 0), cols[:, None]], np.nan)
            ok = ~np.isnan(v)
            n = ok.sum(axis=1)
            mean = np.where(ok, v, 0).sum(axis=1) / np.maximum(n, 1)
            rel = np.clip(mean / norm, 0, _INPUT_CLIP) - base_z
            return np.where(n > 0, rel, 0.0), n > 0

        o_angle = 2 * np.pi * (times[origins] % 86400) / 86400
        stat = [(np.log(norm) - st["log_scale_mean"]) / st["log_scale_std"], np.sin(o_angle), np.cos(o_angle)]
        stat.append(rel_mean([origins - k for k in range(0, period, max(1, period // 48))])[0])
        for h in horizons:
            back = period * int(np.ceil(h / period))
            lags = [origins + h - back - k * period for k in range(_SEASONAL_PERIODS)]
            s1, ok1 = rel_mean(lags[:1])
            stat += [s1, ok1, rel_mean(lags)[0]]
        static = np.stack(stat, axis=1)
        return seq.astype(np.float32), static.astype(np.float32), base_z, norm

    # -- network --

    def _build(self, n_static: int):
        import keras
        w, n_out = self._state["window"], len(self._state["horizons"])
        seq_in = keras.Input((w, 4), name="sequence")
        static_in = keras.Input((n_static,), name="static")
        masked = keras.layers.Masking(mask_value=0.0)(seq_in)
        rnn = keras.layers.LSTM if self.cell == "lstm" else keras.layers.GRU
        hidden = rnn(self.units, unroll=w <= 32, name=self.cell)(masked)
        x = keras.layers.Concatenate()([hidden, static_in])
        x = keras.layers.Dense(64, activation="relu")(x)
        # Zero-initialised output: the untrained network forecasts persistence.
        out = keras.layers.Dense(n_out * len(self.quantiles), kernel_initializer="zeros", name="residual")(x)
        out = keras.layers.Reshape((n_out, len(self.quantiles)))(out)
        return keras.Model([seq_in, static_in], out)

    def _make_infer(self):
        tf = _tf()
        w, model = self._state["window"], self._model
        self._infer = tf.function(
            lambda s, t: model([s, t], training=False), autograph=False,
            input_signature=[tf.TensorSpec([None, w, 4], tf.float32),
                             tf.TensorSpec([None, model.inputs[1].shape[1]], tf.float32)])

    # -- fit --

    def _samples(self, values, times, scale, origins, cols, target_end, rng, truncate):
        w = self._state["window"]
        lengths = np.minimum(origins + 1, w)
        if truncate:
            cut = rng.random(len(origins)) < _TRUNCATE_PROB
            lengths[cut] = rng.integers(1, lengths[cut] + 1)
        seq, static, base_z, norm = self._features(values, times, scale, origins, cols, lengths)
        y = np.full((len(origins), len(self._state["horizons"])), np.nan, dtype=np.float32)
        for j, h in enumerate(self._state["horizons"]):
            ok = origins + h < target_end
            y[ok, j] = values[origins[ok] + h, cols[ok]] / norm[ok] - base_z[ok]
        weight = (norm / scale.mean()).astype(np.float32)
        return [seq, static], y, weight

    def fit(self, panel: Panel, horizons: Sequence[int]) -> "RecurrentForecaster":
        super().fit(panel, horizons)
        if not self.fitted_horizons or self.fitted_horizons[0] < 1:
            raise ModelError(f"horizons must be >= 1 step, got {list(horizons)}")
        _tf()
        import keras
        started = time.monotonic()
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        values, times = panel.values, panel.times
        n_rows, n = values.shape
        h_min = self.fitted_horizons[0]
        val_rows = max(h_min + 1, int(round(_VAL_FRACTION * n_rows)))
        val_start = n_rows - val_rows
        if val_start < h_min + 2:
            raise ModelError(f"panel too short ({n_rows} rows) for horizons {list(self.fitted_horizons)}")
        scale = np.nan_to_num(np.nanmean(values, axis=0))
        scale = np.maximum(scale, max(1e-6, 1e-3 * float(scale.mean())))
        log_scale = np.log(scale)
        self._state = {"window": self._window_len(panel.step_s), "period": panel.period_steps(),
                       "horizons": list(self.fitted_horizons), "names": list(panel.names),
                       "scale": scale.tolist(), "log_scale_mean": float(log_scale.mean()),
                       "log_scale_std": float(log_scale.std() + 1e-6)}

        def grid(o_lo, o_hi, cap):
            o, c = np.meshgrid(np.arange(o_lo, o_hi), np.arange(n), indexing="ij")
            o, c = o.ravel(), c.ravel()
            if cap and len(o) > cap:
                pick = np.sort(rng.choice(len(o), cap, replace=False))
                o, c = o[pick], c[pick]
            return o, c

        o_tr, c_tr = grid(0, val_start - h_min, self.max_train_samples)
        o_va, c_va = grid(val_start, n_rows - h_min, _MAX_VAL_SAMPLES)
        x_tr, y_tr, w_tr = self._samples(values, times, scale, o_tr, c_tr, val_start, rng, truncate=True)
        x_va, y_va, w_va = self._samples(values, times, scale, o_va, c_va, n_rows, rng, truncate=False)
        self._model = self._build(x_tr[1].shape[1])
        self._model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-3),
                            loss=_pinball_loss(self.quantiles))
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        hist = self._model.fit(x_tr, y_tr, sample_weight=w_tr, validation_data=(x_va, y_va, w_va),
                               epochs=self.epochs, batch_size=self.batch_size, shuffle=True,
                               callbacks=[stop], verbose=0)
        self._make_infer()
        self._cache = None
        val_loss = hist.history["val_loss"]
        self.fit_info.update({"window": self._state["window"], "train_samples": len(o_tr),
                              "val_rows": val_rows, "epochs_run": len(val_loss),
                              "best_val_loss": float(np.min(val_loss)),
                              "fit_seconds": round(time.monotonic() - started, 1)})
        log.info("%s fitted: %s", self.name, self.fit_info)
        return self

    # -- forecasts --

    def _forward(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        """[len(origins), N, H, Q] forecasts in the panel's units, quantiles sorted, >= 0."""
        if self._model is None:
            raise ModelError(f"{self.name}: predict before fit")
        if panel.period_steps() != self._state["period"]:
            raise ModelError(f"panel step {panel.step_s}s differs from the fitted one")
        scale = self._scales(panel)
        if not len(origins):
            return np.zeros((0, panel.n_series, len(self._state["horizons"]), len(self.quantiles)))
        # Only rows at or before the last origin (and not too far back) can matter.
        hi = int(origins.max()) + 1
        lo = max(0, int(origins.min()) - (_SEASONAL_PERIODS + 1) * self._state["period"]
                 - self._state["window"])
        key = hashlib.blake2b(b"".join([np.ascontiguousarray(panel.values[lo:hi]).tobytes(),
                                        np.ascontiguousarray(panel.times[lo:hi]).tobytes(),
                                        origins.tobytes(), scale.tobytes(), str(lo).encode()])).digest()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        values, times = panel.values[:hi], panel.times[:hi]
        n = panel.n_series
        o = np.repeat(origins, n)
        c = np.tile(np.arange(n), len(origins))
        seq, static, base_z, norm = self._features(values, times, scale, o, c,
                                                   np.minimum(o + 1, self._state["window"]))
        outs = [self._infer(seq[i:i + _CHUNK], static[i:i + _CHUNK]).numpy()
                for i in range(0, len(o), _CHUNK)]
        resid = np.concatenate(outs).astype(np.float64)
        fc = (base_z[:, None, None] + np.sort(resid, axis=-1)) * norm[:, None, None]
        fc = np.maximum(fc, 0.0).reshape(len(origins), n, *resid.shape[1:])
        self._cache = (key, fc)
        return fc

    def _horizon_index(self, horizon: int) -> int:
        if horizon not in self._state.get("horizons", []):
            raise ModelError(f"{self.name} was fitted for horizons {self._state.get('horizons')}, "
                             f"not {horizon}")
        return self._state["horizons"].index(horizon)

    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Point forecasts: the 0.5-quantile output."""
        origins = check_origins(panel, origins, horizon)
        j = self._horizon_index(int(horizon))
        return self._forward(panel, origins)[:, :, j, self.quantiles.index(0.5)].copy()

    def predict_quantiles(self, panel: Panel, origins: np.ndarray, horizon: int,
                          quantiles: Sequence[float] | None = None) -> np.ndarray:
        """[len(quantiles), len(origins), N] forecasts for quantiles the model was trained on."""
        origins = check_origins(panel, origins, horizon)
        j = self._horizon_index(int(horizon))
        quantiles = self.quantiles if quantiles is None else tuple(float(q) for q in quantiles)
        unknown = [q for q in quantiles if q not in self.quantiles]
        if unknown:
            raise ModelError(f"quantiles {unknown} were not trained; available: {list(self.quantiles)}")
        fc = self._forward(panel, origins)[:, :, j, :]
        return np.stack([fc[:, :, self.quantiles.index(q)] for q in quantiles])

    # -- persistence --

    def _config(self) -> dict:
        return {"cell": self.cell, "window": self.window, "epochs": self.epochs,
                "batch_size": self.batch_size, "units": self.units, "quantiles": list(self.quantiles),
                "seed": self.seed,
                "max_train_samples": self.max_train_samples}

    def metadata(self) -> dict:
        return {**super().metadata(), "format": "keras", "config": self._config()}

    def save(self, path: Path) -> None:
        if self._model is None:
            raise ModelError(f"{self.name}: save before fit")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._model.save(path / "model.keras")
        state = {"config": self._config(), "state": self._state,
                 "fitted_horizons": list(self.fitted_horizons), "fit_info": self.fit_info}
        (path / "recurrent.json").write_text(json.dumps(state, indent=2))
        (path / "model.json").write_text(json.dumps(self.metadata(), indent=2, default=str))

    def __getstate__(self) -> dict:
        # Keras models do not pickle; carry the .keras archive as bytes (for copy.deepcopy too).
        state = {k: v for k, v in self.__dict__.items() if k not in ("_model", "_infer", "_cache")}
        if self._model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                self._model.save(Path(tmp) / "model.keras")
                state["_keras_bytes"] = (Path(tmp) / "model.keras").read_bytes()
        return state

    def __setstate__(self, state: dict) -> None:
        blob = state.pop("_keras_bytes", None)
        self.__dict__.update(state, _model=None, _infer=None, _cache=None)
        if blob is not None:
            _tf()
            import keras
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "model.keras").write_bytes(blob)
                self._model = keras.models.load_model(Path(tmp) / "model.keras", compile=False)
            self._make_infer()

    @staticmethod
    def load(path: Path) -> "RecurrentForecaster":
        _tf()
        import keras
        path = Path(path)
        saved = json.loads((path / "recurrent.json").read_text())
        model = RecurrentForecaster(**saved["config"])
        model._state = saved["state"]
        model.fitted_horizons = tuple(saved["fitted_horizons"])
        model.fit_info = saved["fit_info"]
        model._model = keras.models.load_model(path / "model.keras", compile=False)
        model._make_infer()
        return model
