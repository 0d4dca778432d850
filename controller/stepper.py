"""Periodic app work on the app clock's grid, in a thread of its own.

    steps = GridStepper("te-steps", clock, interval_s=30.0, step=engineer.step)
    steps.start()
    ...
    steps.stop()

Steps run at ``clock.real_origin_s + k * interval_s`` (wall seconds), so a lab that
replays a dataset faster than real time (``controller.clock``) gets one step per
replayed sample, and two apps with the same interval step together. Before
``real_origin_s`` (a replay that has not begun) the first step waits for it. A step
that raises is logged (and ``on_error`` called) and the next one runs as planned.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

from controller.config import ClockConfig

LOG = logging.getLogger(__name__)


class GridStepper:
    def __init__(self, name: str, clock: ClockConfig, interval_s: float, step: Callable[[], object],
                 wall: Callable[[], float] = time.time, on_error: Callable[[], None] | None = None):
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be positive, got {interval_s}")
        self.name = name
        self.clock = clock
        self.interval_s = interval_s
        self.step = step
        self.wall = wall
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def next_step_at(self, now: float) -> float:
        """The first grid time (real_origin_s + k * interval_s) after ``now``."""
        k = math.floor((now - self.clock.real_origin_s) / self.interval_s) + 1
        return self.clock.real_origin_s + max(k, 0) * self.interval_s

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """No step starts after this (one running finishes); does not wait."""
        self._stop.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Halt and wait up to ``timeout_s`` for a running step to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(max(0.0, self.next_step_at(self.wall()) - self.wall())):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the loop must survive a bad step
                if self.on_error is not None:
                    self.on_error()
                LOG.exception("%s: step failed", self.name)
