"""The autoscaler against a real prediction service on a free port: measured slice
load goes in as ``slice:<name>`` at app-clock time, forecasts size the slice, a
dead predictor means measured-load scaling that says so, and nothing happens
before the app clock's origin."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.slices import dataplane
from apps.slices.autoscale import Autoscaler
from apps.slices.manager import SliceManager
from controller.config import ClockConfig, Config
from controller.core import ControllerCore
from labs.lab import free_port
from tests.lib.predictor_service import served_predictor
from predictors.client import PredictorClient

STEP = 300
ORIGIN_V = 300 * 3_600_000          # virtual origin on the predictor's 300 s grid
REAL0 = 1_000_000.0                 # real time of the origin
# 2 real seconds are one 300 s step of app time.
CLOCK = ClockConfig(time_scale=150, virtual_origin_s=ORIGIN_V, real_origin_s=REAL0)


@pytest.fixture
def predictor(tmp_path):
    with served_predictor(tmp_path, STEP, (300, 900)) as served:
        yield served


@pytest.fixture
def manager():
    manager = SliceManager(ControllerCore(Config()).view, lambda: None, None, drain_s=0, auto_drain=False)
    for i in range(1, 7):
        manager.register_member("servers", f"h{i}", f"10.0.0.{i}")
    manager.create(dict(name="web", client="acme", vip_cidr="10.50.0.0/29", bandwidth_mbps=40,
                        per_member_mbps=5, pool="servers", min_members=1, max_members=4, priority="gold"),
                   members=1)
    yield manager
    manager.close()


def offer(manager: SliceManager, mbps: float, at: float) -> None:
    """Two meter polls 1 s apart that saw ``mbps`` arrive at the slice's VIP meter."""
    meter = dataplane.ids(manager.get("web").index).meter_in

    def stat(byte_in):
        return SimpleNamespace(meter_id=meter, byte_in_count=byte_in,
                               band_stats=[SimpleNamespace(byte_band_count=0)])
    base = int(at) * 10_000_000
    manager.meter_stats(1, [stat(base)], at - 1.0)
    manager.meter_stats(1, [stat(base + int(mbps * 1e6 / 8))], at)


def test_measured_load_goes_to_the_predictor_and_its_forecast_sizes_the_slice(manager, predictor):
    scaler = Autoscaler(manager, predictor.client, horizon_s=900, clock=CLOCK, interval_s=2.0)
    offer(manager, 12.0, REAL0 + 4.0)
    [decision] = scaler.step(REAL0 + 4.0)
    # Stamped with app time: 4 real seconds after the origin are 600 virtual seconds.
    store = predictor.service.store
    assert store.known("slice:web") and store.series["slice:web"].labels == {"kind": "slice"}
    assert store.last_slot("slice:web") == (ORIGIN_V + 600) // STEP
    assert scaler.mode == "predictive"
    # No model is trained: the service answers with persistence, the last value ingested.
    assert (decision.forecast_mbps, decision.forecast_horizon_s) == (pytest.approx(12.0), 900.0)
    assert (decision.decided_at_s, decision.measured_mbps) == (ORIGIN_V + 600, pytest.approx(12.0))
    assert (decision.action, decision.target_members) == ("scale_up", 3)
    assert len(manager.get("web").active) == 3


def test_a_dead_predictor_means_measured_load_and_says_so(manager):
    dead = PredictorClient(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    try:
        scaler = Autoscaler(manager, dead, horizon_s=900, clock=CLOCK, interval_s=2.0)
        offer(manager, 18.0, REAL0 + 2.0)
        [decision] = scaler.step(REAL0 + 2.0)
    finally:
        dead.close()
    assert scaler.mode == "reactive" and "predictor unreachable" in scaler.last_error
    assert (decision.basis, decision.forecast_mbps, decision.target_members) == ("measured", None, 4)
    assert decision.reason.startswith("no forecast: using measured load = 18 Mbit/s")


def test_stale_meter_readings_count_as_no_traffic(manager):
    scaler = Autoscaler(manager, None, clock=CLOCK, interval_s=2.0)
    offer(manager, 18.0, REAL0 + 2.0)
    [decision] = scaler.step(REAL0 + 60.0)
    assert decision.measured_mbps == 0.0 and decision.action == "hold"


def test_nothing_happens_before_the_clock_origin(manager, predictor):
    scaler = Autoscaler(manager, predictor.client, horizon_s=900, clock=CLOCK, interval_s=2.0)
    offer(manager, 18.0, REAL0 - 1.0)
    assert scaler.step(REAL0 - 1.0) == []
    assert not predictor.service.store.known("slice:web")
    assert len(manager.get("web").active) == 1


def test_steps_fall_on_the_clock_grid():
    scaler = Autoscaler(SimpleNamespace(), None, clock=CLOCK, interval_s=2.0)
    assert scaler.next_step_at(REAL0 - 30.0) == REAL0
    assert scaler.next_step_at(REAL0) == REAL0 + 2.0
    assert scaler.next_step_at(REAL0 + 3.9) == REAL0 + 4.0
