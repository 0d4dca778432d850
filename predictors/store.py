"""Series storage for the prediction service: samples on a fixed time grid, kept in
memory for fast panels and in SQLite so a restarted service has its history.

A sample's slot is ``round(timestamp_s / step_s)``; a later sample for the same slot
replaces the earlier one. Each series keeps at most ``retention_slots`` slots.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from pathlib import Path

import numpy as np

from predictors.panel import Panel


class StoreError(ValueError):
    """A sample or query the store cannot accept; the message names the field."""


class Series:
    """One series' values on the grid: a NaN-filled numpy array starting at base_slot."""

    def __init__(self, series_id: str, labels: dict[str, str] | None = None):
        self.series_id = series_id
        self.labels = dict(labels or {})
        self.base_slot = 0
        self.arr = np.empty(0)
        self.last_slot = -1
        self.count = 0

    def set(self, slot: int, value: float) -> None:
        if self.arr.size == 0:
            self.base_slot, self.arr, self.last_slot = slot, np.full(64, np.nan), slot
        if slot < self.base_slot:
            grow = self.base_slot - slot
            self.arr = np.concatenate([np.full(grow, np.nan), self.arr])
            self.base_slot = slot
        idx = slot - self.base_slot
        if idx >= self.arr.size:
            bigger = np.full(max(2 * self.arr.size, idx + 1), np.nan)
            bigger[:self.arr.size] = self.arr
            self.arr = bigger
        if np.isnan(self.arr[idx]):
            self.count += 1
        self.arr[idx] = value
        self.last_slot = max(self.last_slot, slot)

    def trim(self, keep_slots: int) -> int | None:
        """Forget slots older than last_slot - keep_slots; return the floor if any went."""
        floor = self.last_slot - keep_slots
        if floor < self.base_slot:
            return None
        cut = floor - self.base_slot + 1
        self.count -= int(np.count_nonzero(~np.isnan(self.arr[:cut])))
        self.arr = self.arr[cut:].copy()
        self.base_slot = floor + 1
        return floor

    def window(self, first: int, last: int) -> np.ndarray:
        out = np.full(last - first + 1, np.nan)
        lo, hi = max(first, self.base_slot), min(last, self.last_slot)
        if lo <= hi:
            out[lo - first:hi - first + 1] = self.arr[lo - self.base_slot:hi - self.base_slot + 1]
        return out

    @property
    def empty(self) -> bool:
        return self.count == 0


class SeriesStore:
    def __init__(self, step_s: int, path: str | Path | None = None, retention_slots: int = 14 * 288):
        if step_s <= 0:
            raise StoreError(f"step_s must be positive, got {step_s}")
        self.step_s = int(step_s)
        self.retention_slots = int(retention_slots)
        self.lock = threading.RLock()
        self.series: dict[str, Series] = {}
        self.version = 0            # bumped on every add
        self.db = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript("""
                CREATE TABLE IF NOT EXISTS series (series_id TEXT PRIMARY KEY, labels TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS samples (series_id TEXT NOT NULL, slot INTEGER NOT NULL,
                    value REAL NOT NULL, PRIMARY KEY (series_id, slot)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);""")
            row = self.db.execute("SELECT value FROM meta WHERE key='step_s'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('step_s', ?)", (str(self.step_s),))
            elif int(row[0]) != self.step_s:
                raise StoreError(f"{path}: holds samples on a {row[0]} s grid, "
                                 f"service step is {self.step_s} s")
            self._load()

    def _load(self) -> None:
        for series_id, labels in self.db.execute("SELECT series_id, labels FROM series"):
            self.series[series_id] = Series(series_id, json.loads(labels))
        for series_id, slot, value in self.db.execute(
                "SELECT series_id, slot, value FROM samples ORDER BY series_id, slot"):
            if series_id in self.series:
                self.series[series_id].set(slot, value)

    @staticmethod
    def validate(samples: list[tuple[str, float, float, dict]]) -> None:
        """Raise StoreError naming the first bad sample; nothing is stored."""
        for i, (series_id, ts, value, _labels) in enumerate(samples):
            if not series_id or not series_id.strip():
                raise StoreError(f"samples[{i}].series_id: empty")
            if len(series_id) > 256:
                raise StoreError(f"samples[{i}].series_id: longer than 256 characters")
            if not math.isfinite(ts) or ts <= 0:
                raise StoreError(f"samples[{i}].timestamp_s: {ts} for series {series_id!r} "
                                 f"(need a Unix time > 0)")
            if not math.isfinite(value):
                raise StoreError(f"samples[{i}].value: {value} for series {series_id!r} (must be finite)")

    def add(self, samples: list[tuple[str, float, float, dict]]) -> tuple[int, int, float]:
        """Validate then store all samples; returns (accepted, distinct series, newest timestamp)."""
        self.validate(samples)
        rows = []
        new_series = {}
        with self.lock:
            for series_id, ts, value, labels in samples:
                slot = int(round(ts / self.step_s))
                series = self.series.get(series_id)
                if series is None:
                    series = self.series[series_id] = Series(series_id, dict(labels))
                    new_series[series_id] = series
                elif labels and labels != series.labels:
                    series.labels.update(labels)
                    new_series[series_id] = series
                series.set(slot, float(value))
                rows.append((series_id, slot, float(value)))
            touched = {s for s, *_ in samples}
            dropped = []
            for series_id in touched:
                floor = self.series[series_id].trim(self.retention_slots)
                if floor is not None:
                    dropped.append((series_id, floor))
            self.version += 1
            if self.db is not None:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR REPLACE INTO series VALUES (?, ?)",
                                    [(s.series_id, json.dumps(s.labels)) for s in new_series.values()])
                self.db.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?)", rows)
                self.db.executemany("DELETE FROM samples WHERE series_id = ? AND slot <= ?", dropped)
                self.db.execute("COMMIT")
        newest = max(ts for _, ts, _, _ in samples) if samples else 0.0
        return len(samples), len(touched) if samples else 0, newest

    def known(self, series_id: str) -> bool:
        return series_id in self.series

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self.series)

    def panel(self, series_ids: list[str], end_slot: int | None = None, rows: int | None = None) -> Panel:
        """Series side by side on one grid ending at end_slot (default: newest slot
        among them), at most ``rows`` long; missing slots are NaN."""
        with self.lock:
            chosen = [self.series[s] for s in series_ids]
            filled = [s for s in chosen if not s.empty]
            if not filled:
                raise StoreError("series_ids: no samples")
            last = end_slot if end_slot is not None else max(s.last_slot for s in filled)
            first = min(s.base_slot for s in filled)
            if rows is not None:
                first = max(first, last - rows + 1)
            values = np.empty((last - first + 1, len(chosen)))
            for j, series in enumerate(chosen):
                values[:, j] = series.window(first, last)
        times = np.arange(first, last + 1, dtype=np.int64) * self.step_s
        return Panel(values, times, self.step_s, tuple(series_ids))

    def last_slot(self, series_id: str) -> int:
        return self.series[series_id].last_slot

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
