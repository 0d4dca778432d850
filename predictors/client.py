"""A small client for the prediction service (used by the controller, the lab,
benchmarks and tests)."""

from __future__ import annotations

from typing import Iterable

from proto.serving import ServiceClient
from proto import predictor_pb2 as pb
from proto import predictor_pb2_grpc as pb_grpc


def quantile_value(forecast, quantile: float) -> float:
    """A ``Forecast``'s value at ``quantile`` (one the request asked for), else its mean."""
    return next((q.value for q in forecast.quantiles if abs(q.quantile - quantile) < 1e-9), forecast.mean)


class PredictorClient(ServiceClient):
    stub_class = pb_grpc.PredictorStub
    what = "prediction service"
    ready_timeout_s = 30.0

    def __init__(self, address: str, timeout_s: float = 10.0):
        super().__init__(address, timeout_s, options=[("grpc.max_send_message_length", 256 * 1024 * 1024)])

    def ingest(self, samples: Iterable[tuple[str, float, float]], labels: dict | None = None,
               batch: int = 4096) -> pb.IngestSummary:
        """Stream ``(series_id, timestamp_s, value)`` samples in batches of ``batch``."""
        def stream():
            chunk = pb.SampleBatch()
            for series_id, ts, value in samples:
                chunk.samples.add(series_id=series_id, timestamp_s=ts, value=value, labels=labels or {})
                if len(chunk.samples) >= batch:
                    yield chunk
                    chunk = pb.SampleBatch()
            if len(chunk.samples):
                yield chunk
        return self.stub.Ingest(stream(), timeout=max(self.timeout_s, 120))

    def forecast(self, series_ids, horizons_s, quantiles=()) -> pb.ForecastResponse:
        return self.stub.Forecast(pb.ForecastRequest(series_ids=list(series_ids), horizons_s=list(horizons_s),
                                                     quantiles=list(quantiles)), timeout=self.timeout_s)

    def train(self, horizons_s=(), validation_steps: int = 0) -> pb.TrainJob:
        return self.stub.Train(pb.TrainRequest(horizons_s=list(horizons_s),
                                               validation_steps=validation_steps),
                               timeout=self.timeout_s)

    def watch_training(self, job_id: str):
        return self.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job_id))

    def wait_trained(self, job_id: str, timeout_s: float = 600.0) -> pb.TrainJob:
        last = None
        for job in self.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job_id), timeout=timeout_s):
            last = job
        return last

    def models(self) -> pb.ListModelsResponse:
        return self.stub.ListModels(pb.ListModelsRequest(), timeout=self.timeout_s)

    def anomalies(self, series_ids=(), since_s: float = 0.0, min_score: float = 0.0) -> pb.AnomaliesResponse:
        return self.stub.GetAnomalies(pb.AnomaliesRequest(series_ids=list(series_ids), since_s=since_s,
                                                          min_score=min_score), timeout=self.timeout_s)
