"""The prediction gRPC server: translates between protobuf and ``PredictorService``.

``create_server(service, address) -> (server, port)`` registers the Predictor,
health and reflection services; ``main(args)`` is ``foresight-predictor serve``.
Errors map to status codes in one place (``_status``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import grpc

from predictors.jobs import Job
from predictors.service import FailedPrecondition, InvalidArgument, NotFound, PredictorService
from predictors.store import SeriesStore, StoreError
from proto import predictor_pb2 as pb
from proto import predictor_pb2_grpc as pb_grpc
from proto.serving import build_server, status_for

LOG = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Predictor"].full_name


def _status(context: grpc.ServicerContext):
    return status_for(context, {NotFound: grpc.StatusCode.NOT_FOUND,
                                InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
                                FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION})


def _job_pb(job: Job) -> pb.TrainJob:
    return pb.TrainJob(job_id=job.job_id, state=pb.TrainJob.State.Value(job.state), progress=job.progress,
                       message=job.message, model_version=job.model_version, started_s=job.started_s,
                       finished_s=job.finished_s)


class PredictorServicer(pb_grpc.PredictorServicer):
    def __init__(self, service: PredictorService):
        self.service = service
        self.stopping = threading.Event()

    def Ingest(self, request_iterator, context):
        samples = [(s.series_id, s.timestamp_s, s.value, dict(s.labels))
                   for batch in request_iterator for s in batch.samples]
        with _status(context):
            accepted, series, newest = self.service.ingest(samples)
        return pb.IngestSummary(accepted=accepted, series=series, latest_timestamp_s=newest)

    def Forecast(self, request, context):
        with _status(context):
            results, version = self.service.forecast(list(request.series_ids), list(request.horizons_s),
                                                     list(request.quantiles))
        response = pb.ForecastResponse(model_version=version)
        qs = list(request.quantiles)
        for r in results:
            response.forecasts.add(
                series_id=r.series_id, horizon_s=r.horizon_s, origin_s=r.origin_s,
                target_s=r.origin_s + r.horizon_s, mean=r.mean, model=r.model, degraded=r.degraded,
                degraded_reason=r.reason,
                quantiles=[pb.QuantileValue(quantile=q, value=v) for q, v in zip(qs, r.quantiles)])
        return response

    def Train(self, request, context):
        with _status(context):
            job = self.service.train(list(request.horizons_s), request.validation_steps)
        return _job_pb(job)

    def WatchTraining(self, request, context):
        with _status(context):
            job = self.service.job(request.job_id)
        last = None
        while context.is_active() and not self.stopping.is_set():
            with job.changed:
                snapshot = (job.state, job.progress, job.message)
                if snapshot == last:
                    job.changed.wait(0.5)
                    continue
            last = snapshot
            yield _job_pb(job)
            if job.done:
                return

    def ListModels(self, request, context):
        response = pb.ListModelsResponse()
        for meta in self.service.list_models():
            response.models.add(
                version=meta["version"], active=meta["active"], trained_at_s=meta.get("trained_at_s", 0.0),
                span_start_s=meta.get("span_start_s", 0.0), span_end_s=meta.get("span_end_s", 0.0),
                horizons_s=meta.get("horizons_s", []), series=meta.get("series", 0),
                validation_mae=meta.get("validation_mae", {}), chosen=meta.get("chosen", {}))
        return response

    def GetAnomalies(self, request, context):
        with _status(context):
            scores, version = self.service.anomalies(list(request.series_ids), request.since_s,
                                                     request.min_score)
        return pb.AnomaliesResponse(model_version=version, scores=[pb.AnomalyScore(**s) for s in scores])


def create_server(service: PredictorService, address: str, max_workers: int = 8):
    servicer = PredictorServicer(service)
    server, port = build_server(SERVICE_NAME,
                                lambda srv: pb_grpc.add_PredictorServicer_to_server(servicer, srv),
                                address, max_workers, "predictor", "the prediction server",
                                options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)])
    return server, port, servicer


def add_arguments(parser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:50052", help="gRPC address (default: %(default)s)")
    parser.add_argument("--state-dir", default="/var/lib/foresight/predictor",
                        help="samples database and trained models (default: %(default)s)")
    parser.add_argument("--step-s", type=int, default=300,
                        help="sample grid in seconds (default: %(default)s)")
    parser.add_argument("--horizons-s", default="300,3600,21600,86400",
                        help="default training horizons, seconds, comma-separated")
    parser.add_argument("--log-level", default="INFO")


def build_service(args) -> PredictorService:
    state = Path(args.state_dir)
    horizons = tuple(float(h) for h in str(args.horizons_s).split(",") if h.strip())
    store = SeriesStore(args.step_s, state / "samples.sqlite", retention_slots=14 * 86400 // args.step_s)
    per_day = 86400 // args.step_s
    return PredictorService(store, state / "models", horizons, history_rows=9 * per_day,
                            train_rows=14 * per_day)


def main(args) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        service = build_service(args)
    except (StoreError, OSError) as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return 1
    server, port, servicer = create_server(service, args.listen)
    server.start()
    LOG.info("prediction service on %s (port %d), model %s", args.listen, port,
             service.model_version or "none")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    servicer.stopping.set()
    server.stop(grace=1.0).wait(2)
    service.close()
    return 0
