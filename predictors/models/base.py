"""The one interface every forecasting model implements (darts-style).

A model is fitted on a ``Panel`` for a set of horizons (in steps), then asked for
point forecasts from many origins at once: ``predict(panel, origins, horizon)``
returns ``[len(origins), N]`` where row ``i`` forecasts ``values[origins[i] + horizon]``
using only ``values[: origins[i] + 1]``. Rolling-origin backtests and the live
service (origin = last sample) use the same call. Intervals are not the model's
business: ``predictors.calibration`` derives them from held-out residuals.

Models must never read values after an origin. ``check_origins`` enforces the
argument contract; ``tests/unit/test_models_*`` prove no look-ahead by perturbing
the future and checking forecasts do not change.
"""

from __future__ import annotations

import json
import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from predictors.panel import Panel


class ModelError(ValueError):
    """Bad arguments to a model (the message names which), or a model used unfitted."""


def check_origins(panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
    origins = np.asarray(origins, dtype=np.int64)
    if origins.ndim != 1:
        raise ModelError(f"origins must be 1-D, got shape {origins.shape}")
    if horizon < 1:
        raise ModelError(f"horizon must be >= 1 step, got {horizon}")
    if origins.size and (origins.min() < 0 or origins.max() >= len(panel)):
        raise ModelError(f"origins must lie in [0, {len(panel) - 1}]")
    return origins


class Forecaster(ABC):
    name: str = "forecaster"
    learned: bool = False       # True for models whose fit learns parameters from data

    def __init__(self):
        self.fitted_horizons: tuple[int, ...] = ()
        self.fit_info: dict = {}

    def fit(self, panel: Panel, horizons: Sequence[int]) -> "Forecaster":
        self.fitted_horizons = tuple(sorted(set(int(h) for h in horizons)))
        self.fit_info = {"train_rows": len(panel), "n_series": panel.n_series, "step_s": panel.step_s}
        return self

    @abstractmethod
    def predict(self, panel: Panel, origins: np.ndarray, horizon: int) -> np.ndarray:
        """[len(origins), N] point forecasts of values[origin + horizon]."""

    def min_history(self, panel: Panel) -> int:
        """Steps of history needed before the first origin this model can serve."""
        return 1

    # -- persistence: pickle by default; models with framework state override --

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "model.pkl", "wb") as fh:
            pickle.dump(self, fh)
        (path / "model.json").write_text(json.dumps(self.metadata(), indent=2, default=str))

    @staticmethod
    def load(path: Path) -> "Forecaster":
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta.get("format") == "keras":
            from predictors.models.recurrent import RecurrentForecaster
            return RecurrentForecaster.load(path)
        with open(path / "model.pkl", "rb") as fh:
            return pickle.load(fh)

    def metadata(self) -> dict:
        return {"name": self.name, "class": type(self).__name__, "learned": self.learned,
                "horizons": list(self.fitted_horizons), "fit_info": self.fit_info, "format": "pickle"}
