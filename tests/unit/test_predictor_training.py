"""Training through the service: a background job (child process) trains, reports
progress, swaps the new model in, and a restarted service serves it at once."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.client import PredictorClient
from predictors.server import create_server
from predictors.service import PredictorService
from predictors.store import SeriesStore

STEP = 300
T0 = 300 * 3_666_667
DAYS = 6


@pytest.fixture(autouse=True)
def fast_models(monkeypatch):
    # Keep the job quick: baselines and smoothing (the env reaches the child process);
    # the learned models have their own tests.
    monkeypatch.setenv("FORESIGHT_MODELS", "persistence,seasonal_naive,mean_last_12,smoothing_damped")


def _start(tmp_path):
    store = SeriesStore(STEP, tmp_path / "samples.sqlite")
    service = PredictorService(store, tmp_path / "models", horizons_s=(300, 3600), history_rows=3 * 288,
                               train_rows=DAYS * 288)
    server, port, servicer = create_server(service, "127.0.0.1:0", max_workers=4)
    server.start()
    return service, server, servicer, PredictorClient(f"127.0.0.1:{port}", timeout_s=30)


def _stop(service, server, servicer, client):
    client.close()
    servicer.stopping.set()
    server.stop(grace=None).wait(5)
    service.close()


def _samples(seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS * 288)
    for j in range(4):
        values = 40 + 15 * np.sin(2 * np.pi * t / 288 + j) + rng.normal(0, 1.0, t.size)
        for k in range(t.size):
            yield f"od:{j}", float(T0 + STEP * k), float(values[k])


def test_train_in_background_swap_in_and_serve_after_restart(tmp_path):
    parts = _start(tmp_path)
    service, _, _, client = parts
    try:
        client.ingest(_samples())
        job = client.train()
        assert job.state == job.RUNNING and job.job_id
        updates = list(client.watch_training(job.job_id))
        final = updates[-1]
        assert final.state == final.SUCCEEDED, final.message
        assert final.progress == 1.0 and final.model_version
        assert len({round(u.progress, 3) for u in updates}) >= 2          # progress was reported
        response = client.forecast(["od:0", "od:3"], [300, 3600], [0.1, 0.5, 0.9])
        assert response.model_version == final.model_version
        assert not any(f.degraded for f in response.forecasts)
        for f in response.forecasts:
            q10, q50, q90 = (q.value for q in f.quantiles)
            assert q10 <= q50 <= q90
            assert 20 < f.mean < 60
        models = client.models().models
        assert models[0].active and models[0].version == final.model_version
        assert models[0].series == 4 and sorted(models[0].horizons_s) == [300, 3600]
        assert set(models[0].validation_mae) >= {"persistence@300", "seasonal_naive@3600"}
        assert sum(n for key, n in models[0].chosen.items() if key.endswith("@300")) == 4
        before = [(f.mean, f.model) for f in response.forecasts]
    finally:
        _stop(*parts)

    parts = _start(tmp_path)
    try:
        client = parts[3]
        again = client.forecast(["od:0", "od:3"], [300, 3600], [0.1, 0.5, 0.9])
        assert again.model_version == final.model_version
        assert [(f.mean, f.model) for f in again.forecasts] == before
    finally:
        _stop(*parts)


def test_a_second_job_while_one_runs_is_refused(tmp_path):
    import grpc
    parts = _start(tmp_path)
    client = parts[3]
    try:
        client.ingest(_samples())
        first = client.train()
        with pytest.raises(grpc.RpcError) as info:
            client.train()
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert first.job_id in info.value.details()
        assert client.wait_trained(first.job_id).state == first.SUCCEEDED
    finally:
        _stop(*parts)


def _noisier(days: int, sd: float, seed: int = 1):
    """``days`` more of the same series, with noise of standard deviation ``sd``."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS * 288, (DAYS + days) * 288)
    for j in range(4):
        values = 40 + 15 * np.sin(2 * np.pi * t / 288 + j) + rng.normal(0, sd, t.size)
        for k in range(t.size):
            yield f"od:{j}", float(T0 + STEP * t[k]), float(values[k])


def _caught_up(service, timeout_s: float = 30.0) -> None:
    import time
    newest = max(service.store.last_slot(s) for s in service.store.names())
    deadline = time.monotonic() + timeout_s
    while service.recalibrated_slot != newest:
        assert time.monotonic() < deadline, "recalibration did not catch up"
        time.sleep(0.05)


def _width80(client) -> float:
    response = client.forecast(["od:0", "od:1", "od:2", "od:3"], [3600], [0.1, 0.9])
    return float(np.mean([f.quantiles[1].value - f.quantiles[0].value for f in response.forecasts]))


def test_intervals_follow_noisier_traffic_and_survive_a_restart(tmp_path):
    parts = _start(tmp_path)
    service, _, _, client = parts
    try:
        client.ingest(_samples())
        job = client.wait_trained(client.train().job_id)
        assert job.state == job.SUCCEEDED, job.message
        _caught_up(service)
        calm = _width80(client)
        client.ingest(_noisier(days=2, sd=8.0))       # the traffic gets much noisier
        _caught_up(service)
        noisy = _width80(client)
        print(f"80% band at 1 h: {calm:.2f} before, {noisy:.2f} after the noise grew eightfold")
        assert noisy > 3 * calm, (calm, noisy)
    finally:
        _stop(*parts)
    parts = _start(tmp_path)                          # a restart replays the same recalibration
    try:
        _caught_up(parts[0])
        assert _width80(parts[3]) == pytest.approx(noisy, rel=1e-9)
    finally:
        _stop(*parts)
