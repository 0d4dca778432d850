"""Benchmark: Forecast latency and throughput of the prediction service.

Trains the service on Abilene's fit span (132 OD series, 5-min steps), then times
``Forecast`` for all 132 series x 3 horizons (5 min, 1 h, 6 h) x 3 quantiles:

- over gRPC on loopback (client and server in this process, separate threads),
- in-process: the same ``PredictorService.forecast`` call without gRPC (baseline).

Prints p50/p99 latency and series-forecasts per second for both, and their ratio.

    .venv/bin/python bench/bench_predictor.py [--calls 200] [--models persistence,boosting]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from predictors.client import PredictorClient
from predictors.panel import SPLITS, load_dataset
from predictors.server import create_server
from predictors.service import PredictorService
from predictors.store import SeriesStore

HORIZONS_S = (300, 3600, 21600)
QUANTILES = (0.1, 0.5, 0.9)


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--models", default=os.environ.get("FORESIGHT_MODELS", ""),
                    help="restrict training candidates (comma list); default: all")
    args = ap.parse_args()
    if args.models:
        os.environ["FORESIGHT_MODELS"] = args.models

    panel = load_dataset("abilene")
    fit_end = SPLITS["abilene"].fit_end
    with tempfile.TemporaryDirectory(prefix="foresight-bench-") as tmp:
        store = SeriesStore(panel.step_s, Path(tmp) / "samples.sqlite", retention_slots=14 * 288)
        service = PredictorService(store, Path(tmp) / "models", HORIZONS_S, history_rows=9 * 288,
                                   train_rows=14 * 288)
        server, port, servicer = create_server(service, "127.0.0.1:0")
        server.start()
        client = PredictorClient(f"127.0.0.1:{port}", timeout_s=30)
        try:
            samples = [(name, float(panel.times[t]), float(panel.values[t, j]))
                       for t in range(fit_end) for j, name in enumerate(panel.names)]
            t0 = time.perf_counter()
            client.ingest(samples)
            ingest_s = time.perf_counter() - t0
            n_samples = len(samples)
            del samples         # 380k tuples would make every GC pass slow the timed calls
            gc.collect()
            t0 = time.perf_counter()
            job = client.wait_trained(client.train(HORIZONS_S).job_id, timeout_s=1800)
            train_s = time.perf_counter() - t0
            if job.state != job.SUCCEEDED:
                raise SystemExit(f"training failed: {job.message}")

            ids = list(panel.names)
            for _ in range(5):      # warm up both paths
                client.forecast(ids, HORIZONS_S, QUANTILES)
                service.forecast(ids, list(HORIZONS_S), list(QUANTILES))
            grpc_lat, local_lat = [], []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                response = client.forecast(ids, HORIZONS_S, QUANTILES)
                grpc_lat.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                service.forecast(ids, list(HORIZONS_S), list(QUANTILES))
                local_lat.append(time.perf_counter() - t0)
            served = sorted({f.model for f in response.forecasts})
            degraded = sum(f.degraded for f in response.forecasts)
        finally:
            client.close()
            servicer.stopping.set()
            server.stop(grace=None).wait(5)
            service.close()

    per_call = len(ids) * len(HORIZONS_S)
    print(f"prediction service, Abilene fit span: {len(ids)} series x {len(HORIZONS_S)} horizons x "
          f"{len(QUANTILES)} quantiles per call, {args.calls} calls")
    print(f"  ingest {n_samples} samples in {ingest_s:.1f} s; training {train_s:.0f} s; "
          f"served models {served}; degraded answers {degraded}")
    for label, lat in (("gRPC", grpc_lat), ("in-process", local_lat)):
        print(f"  {label:<11} p50 {_percentile(lat, 50) * 1e3:7.2f} ms  "
              f"p99 {_percentile(lat, 99) * 1e3:7.2f} ms  "
              f"{per_call / statistics.mean(lat):9.0f} series-forecasts/s")
    print(f"  ratio       gRPC / in-process p50 "
          f"{_percentile(grpc_lat, 50) / _percentile(local_lat, 50):.2f} x")
    print(f"  target      p99 <= 50 ms over gRPC: {'met' if _percentile(grpc_lat, 99) <= 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
