"""A panel: many equally spaced series sharing one time axis (e.g. 132 OD pairs).

``values`` is ``[T, N]`` (time by series), float64, NaN where a value is missing;
``times`` is ``[T]`` Unix seconds at a constant ``step_s``. Loaders for the
datasets in ../shared/data live here too, with the fit/evaluate split of its README.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topologies.catalog import data_dir


class PanelError(ValueError):
    """Malformed panel data; the message names what is wrong."""


@dataclass(frozen=True)
class Panel:
    values: np.ndarray          # [T, N]
    times: np.ndarray           # [T] Unix seconds
    step_s: int
    names: tuple[str, ...]      # N series ids

    def __post_init__(self):
        if self.values.ndim != 2:
            raise PanelError(f"values must be [T, N], got shape {self.values.shape}")
        if self.times.shape != (self.values.shape[0],):
            raise PanelError(f"times has {self.times.shape} entries for {self.values.shape[0]} rows")
        if len(self.names) != self.values.shape[1]:
            raise PanelError(f"{len(self.names)} names for {self.values.shape[1]} series")
        if self.step_s <= 0:
            raise PanelError(f"step_s must be positive, got {self.step_s}")

    @property
    def n_series(self) -> int:
        return self.values.shape[1]

    def __len__(self) -> int:
        return self.values.shape[0]

    def slice(self, start: int, stop: int) -> "Panel":
        return Panel(self.values[start:stop], self.times[start:stop], self.step_s, self.names)

    def select(self, columns: list[int]) -> "Panel":
        return Panel(self.values[:, columns], self.times, self.step_s,
                     tuple(self.names[c] for c in columns))

    def period_steps(self, period_s: int = 86400) -> int:
        return max(1, round(period_s / self.step_s))


@dataclass(frozen=True)
class Split:
    """Fit on [0, fit_end), evaluate on [fit_end, eval_end); never tune on the latter."""
    fit_end: int
    eval_end: int


# From ../shared/data/README.md: fit and tune only on the past.
SPLITS = {
    "abilene": Split(fit_end=2880, eval_end=4032),
    "geant": Split(fit_end=216, eval_end=324),
}

_FILES = {
    "abilene": ("abilene/tm_5min_mbps.csv", "abilene/nodes.csv", 300, 1078099200),   # 2004-03-01 UTC
    "geant": ("geant/tm_sndlib_15min_mbps.csv", "geant/nodes.csv", 900, 1115218800),  # 2005-05-04 15:00 UTC
}


def load_dataset(name: str, root: Path | None = None) -> Panel:
    """The dataset's traffic matrix as a panel of OD pairs (diagonal dropped), Mbit/s.

    Series ids are ``"<src>-><dst>"`` with the dataset's node labels. Times are
    reconstructed from the contiguous index (Abilene's segment 1 after index 4032
    is a later span; callers stay below ``SPLITS[name].eval_end``)."""
    if name not in _FILES:
        raise PanelError(f"unknown dataset {name!r}; known: {sorted(_FILES)}")
    tm_file, nodes_file, step_s, t0 = _FILES[name]
    root = root or data_dir()
    with open(root / nodes_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = [r["node_id"] for r in sorted(rows, key=lambda r: int(r["node_index"]))]
    n = len(labels)
    raw = np.loadtxt(root / tm_file, delimiter=",", skiprows=1, usecols=3, dtype=np.float64)
    if raw.size % (n * n):
        raise PanelError(f"{tm_file}: {raw.size} values is not a multiple of {n}x{n}")
    cube = raw.reshape(-1, n, n)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    values = np.stack([cube[:, i, j] for i, j in pairs], axis=1)
    times = t0 + step_s * np.arange(values.shape[0], dtype=np.int64)
    names = tuple(f"{labels[i]}->{labels[j]}" for i, j in pairs)
    return Panel(values, times, step_s, names)
