"""controller.telemetry: counters read every poll become what they counted since the
reading before and Mbit/s; a counter that starts again from zero is all new, with
no rate."""

from __future__ import annotations

import pytest

from controller.telemetry import CounterDeltas, PortRates, PortSample


def test_growth_and_rate_since_the_reading_before():
    deltas = CounterDeltas()
    first = deltas.read(("s1", 7), 10.0, (1000, 0))
    assert first.grown == (1000, 0) and first.seconds is None and first.mbps() is None
    second = deltas.read(("s1", 7), 12.0, (2_501_000, 10))
    assert second.grown == (2_500_000, 10)
    assert second.mbps(0) == pytest.approx(10.0)


def test_a_counter_that_starts_again_is_all_new_and_gives_no_rate():
    deltas = CounterDeltas()
    deltas.read("m", 10.0, (5000, 400))
    reset = deltas.read("m", 12.0, (30, 400))           # one of the two went back
    assert reset.grown == (30, 400) and reset.mbps() is None
    assert deltas.read("m", 14.0, (130, 400)).grown == (100, 0)


def test_a_reading_at_the_same_time_grows_without_a_rate():
    deltas = CounterDeltas()
    deltas.read("m", 10.0, (100,))
    same = deltas.read("m", 10.0, (150,))
    assert same.grown == (50,) and same.mbps() is None


def test_port_rates_per_port_and_forgotten_with_the_switch():
    rates = PortRates()
    assert rates.update(1, {1: PortSample(0.0, 0, 0)}) == {}
    assert rates.update(1, {1: PortSample(2.0, 2_500_000, 250_000)}) == {1: pytest.approx((10.0, 1.0))}
    rates.forget(1)
    assert rates.update(1, {1: PortSample(4.0, 5_000_000, 500_000)}) == {}     # a first reading again
