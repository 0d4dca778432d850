"""controller.stepper.GridStepper: steps on the app clock's grid, in a thread that
survives a failing step and stops when told."""

from __future__ import annotations

import threading
import time

import pytest

from controller.config import ClockConfig
from controller.stepper import GridStepper


def test_steps_are_on_the_grid_and_wait_for_the_origin():
    steps = GridStepper("t", ClockConfig(real_origin_s=1000.0), interval_s=2.0, step=lambda: None)
    assert steps.next_step_at(970.0) == 1000.0          # a replay that has not begun
    assert steps.next_step_at(1000.0) == 1002.0
    assert steps.next_step_at(1003.9) == 1004.0


def test_a_failing_step_is_reported_and_the_next_one_still_runs():
    calls, errors, done = [], [], threading.Event()

    def step():
        calls.append(time.time())
        if len(calls) == 1:
            raise RuntimeError("bad step")
        done.set()

    steps = GridStepper("t", ClockConfig(real_origin_s=time.time()), interval_s=0.02, step=step,
                        on_error=lambda: errors.append(1))
    steps.start()
    try:
        assert done.wait(5.0), "no step after the failing one"
    finally:
        steps.stop()
    assert errors == [1]


def test_no_step_starts_after_stop():
    calls = []
    steps = GridStepper("t", ClockConfig(real_origin_s=time.time()), interval_s=0.01,
                        step=lambda: calls.append(1))
    steps.start()
    deadline = time.monotonic() + 5.0
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    steps.stop()
    assert steps.stopped and calls
    seen = len(calls)
    time.sleep(0.1)
    assert len(calls) == seen


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval_s must be positive"):
        GridStepper("t", ClockConfig(), interval_s=0.0, step=lambda: None)
