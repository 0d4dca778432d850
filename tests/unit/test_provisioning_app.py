"""The provisioning app's loop against a real prediction service (in-process gRPC, no
trained model: its fallback forecasts): an anomalous sample triggers a re-evaluation
at once, the forecast after it raises a need, and the change is staged and deployed
without anyone asking; without a predictor the app says it is reactive."""

from __future__ import annotations

import pytest

from tests.lib.ovs_lab import wait_for
from tests.lib.predictor_service import served_predictor
from tests.lib.provisioning_net import build

STEP = 300


@pytest.fixture
def predictor(tmp_path):
    with served_predictor(tmp_path, STEP, (300, 900)) as served:
        yield served


def test_an_anomaly_triggers_an_evaluation_whose_need_is_staged_and_deployed(tmp_path, predictor):
    net = build(
        tmp_path,
        predictor=predictor.client,
        interval_s=3600,
        anomaly_poll_s=0.05,
        horizons_s=[300, 900],
        quantiles=[0.1, 0.5, 0.9, 0.95],
    )
    net.clock.now = 1_700_000_000.0
    t0 = (int(net.clock.now) // STEP - 600) * STEP
    # Two days of a steady 4 Mbit/s on web (capacity 10), ending at the app's now.
    predictor.client.ingest([("slice:web", t0 + STEP * i, 4.0 + 0.2 * (i % 3)) for i in range(600)])
    try:
        net.app.start()
        wait_for(lambda: net.app.steps >= 1)  # the first evaluation: nothing needed
        assert net.engine.trigger == "interval" and net.engine.changes == {}
        predictor.client.ingest([("slice:web", t0 + STEP * 600, 30.0)])  # demand jumps
        wait_for(lambda: net.engine.trigger.startswith("anomaly"))
        assert net.engine.trigger == "anomaly slice:web"
        change = wait_for(lambda: next(iter(net.engine.changes.values()), None))
        wait_for(lambda: change.state == "DEPLOYED")
        assert change.resource == "slice:web" and change.params["bandwidth_mbps"] > 10
        assert net.slices.get("web").slice.bandwidth_mbps == change.params["bandwidth_mbps"]
        assert net.app.basis() == "predictive"
    finally:
        net.app.close()


def test_without_a_predictor_the_app_is_reactive_and_recommends_nothing(tmp_path):
    net = build(tmp_path)
    try:
        assert net.app.basis() == "reactive"
        assert net.app.evaluate("request") == [] and net.engine.trigger == "request"
    finally:
        net.app.close()
