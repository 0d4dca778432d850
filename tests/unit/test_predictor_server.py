"""The prediction gRPC service on a free port: ingest, forecasts (degraded before
any model is trained), validation of bad requests, and restart persistence."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from predictors.client import PredictorClient
from predictors.server import create_server
from predictors.service import PredictorService
from predictors.store import SeriesStore

STEP = 300
T0 = 300 * 3_666_667      # on the 300 s grid


def _service(tmp_path) -> PredictorService:
    store = SeriesStore(STEP, tmp_path / "samples.sqlite")
    return PredictorService(store, tmp_path / "models", horizons_s=(300, 3600), history_rows=3 * 288,
                            train_rows=6 * 288)


@pytest.fixture
def running(tmp_path):
    started = []

    def start():
        service = _service(tmp_path)
        server, port, servicer = create_server(service, "127.0.0.1:0", max_workers=4)
        server.start()
        client = PredictorClient(f"127.0.0.1:{port}")
        started.append((server, servicer, service, client))
        return service, client

    def stop_all():
        while started:
            server, servicer, service, client = started.pop()
            client.close()
            servicer.stopping.set()
            server.stop(grace=None).wait(5)
            service.close()

    yield start, stop_all
    stop_all()


def _daily(n_steps: int, series: int = 3, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    for j in range(series):
        values = 50 + 10 * (j + 1) * np.sin(2 * np.pi * t / 288) + noise * rng.standard_normal(n_steps)
        for k in range(n_steps):
            yield f"od:{j}", float(T0 + STEP * k), float(values[k])


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_ingest_then_forecast_is_degraded_persistence_before_training(running):
    start, _ = running
    _, client = start()
    summary = client.ingest(_daily(600))
    assert (summary.accepted, summary.series) == (1800, 3)
    response = client.forecast(["od:0", "od:1"], [300, 3600], [0.1, 0.9])
    assert response.model_version == ""
    assert len(response.forecasts) == 4
    first = response.forecasts[0]
    assert (first.series_id, first.horizon_s) == ("od:0", 300)
    assert first.degraded and first.degraded_reason == "no trained model yet"
    assert first.model == "persistence"
    last_value = 50 + 10 * math.sin(2 * math.pi * 599 / 288)
    assert first.mean == pytest.approx(last_value)
    assert first.origin_s == T0 + STEP * 599 and first.target_s == first.origin_s + 300
    assert [q.quantile for q in first.quantiles] == [0.1, 0.9]
    assert first.quantiles[0].value <= first.mean <= first.quantiles[1].value


@pytest.mark.parametrize("request_args, code, words", [
    (([], [300], []), grpc.StatusCode.INVALID_ARGUMENT, "series_ids"),
    ((["od:0"], [], []), grpc.StatusCode.INVALID_ARGUMENT, "horizons_s"),
    ((["od:9"], [300], []), grpc.StatusCode.NOT_FOUND, "od:9"),
    ((["od:0"], [0], []), grpc.StatusCode.INVALID_ARGUMENT, "horizons_s[0]"),
    ((["od:0"], [300, -60], []), grpc.StatusCode.INVALID_ARGUMENT, "horizons_s[1]"),
    ((["od:0"], [450], []), grpc.StatusCode.INVALID_ARGUMENT, "multiple"),
    ((["od:0"], [float("nan")], []), grpc.StatusCode.INVALID_ARGUMENT, "horizons_s[0]"),
    ((["od:0"], [300], [0.5, 1.5]), grpc.StatusCode.INVALID_ARGUMENT, "quantiles[1]"),
    ((["od:0"], [300], [0.0]), grpc.StatusCode.INVALID_ARGUMENT, "quantiles[0]"),
])
def test_bad_forecast_requests_name_the_field(running, request_args, code, words):
    start, _ = running
    _, client = start()
    client.ingest(_daily(10, series=1))
    got, details = _code(lambda: client.forecast(*request_args))
    assert got == code
    assert words in details


def test_bad_samples_reject_the_whole_stream(running):
    start, _ = running
    service, client = start()
    samples = [("od:0", T0, 1.0), ("od:0", T0 + STEP, float("nan")), ("od:1", T0, 2.0)]
    got, details = _code(lambda: client.ingest(samples))
    assert got == grpc.StatusCode.INVALID_ARGUMENT
    assert "samples[1].value" in details and "od:0" in details
    assert service.store.names() == []               # nothing stored
    got, details = _code(lambda: client.ingest([("", T0, 1.0)]))
    assert "samples[0].series_id" in details
    got, details = _code(lambda: client.ingest([("x", -5.0, 1.0)]))
    assert "samples[0].timestamp_s" in details
    got, details = _code(lambda: client.ingest([]))
    assert got == grpc.StatusCode.INVALID_ARGUMENT
    # spread over several batches, the index still counts from the start of the stream
    batched = [("od:0", T0 + k * STEP, 1.0) for k in range(7)] + [("od:0", T0 + 7 * STEP, float("inf"))]
    got, details = _code(lambda: client.ingest(batched, batch=3))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "samples[7].value" in details
    assert service.store.names() == []


def test_training_without_history_is_a_failed_precondition(running):
    start, _ = running
    _, client = start()
    got, details = _code(lambda: client.train())
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "no series" in details
    client.ingest(_daily(50, series=1))
    got, details = _code(lambda: client.train())
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "history" in details
    got, _ = _code(lambda: client.wait_trained("nope"))
    assert got == grpc.StatusCode.NOT_FOUND


def test_restart_keeps_samples(running):
    start, stop_all = running
    _, client = start()
    client.ingest(_daily(300, series=2))
    before = client.forecast(["od:1"], [3600], [0.5]).forecasts[0]
    stop_all()
    _, client = start()
    after = client.forecast(["od:1"], [3600], [0.5]).forecasts[0]
    assert after == before


def test_anomalies_flag_a_spike(running):
    start, _ = running
    _, client = start()
    samples = list(_daily(400, series=1, noise=1.0))
    samples.append(("od:0", T0 + STEP * 400, 500.0))          # a spike
    client.ingest(samples)
    scores = client.anomalies(["od:0"], since_s=T0 + STEP * 380).scores
    assert scores[-1].timestamp_s == T0 + STEP * 400 and scores[-1].anomalous and scores[-1].score > 5
    assert sum(s.anomalous for s in scores[:-1]) <= 2


def test_health_and_reflection(running):
    start, _ = running
    _, client = start()
    assert (client.health.Check(health_pb2.HealthCheckRequest()).status
            == health_pb2.HealthCheckResponse.SERVING)
