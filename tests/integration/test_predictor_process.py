"""``foresight-predictor serve`` as its own process: it serves, keeps its samples
across a restart, and stops promptly on SIGTERM."""

from __future__ import annotations

from labs.lab import PredictorProcess

STEP = 300
T0 = 300 * 4_000_000


def test_serve_restart_and_stop(tmp_path):
    predictor = PredictorProcess(tmp_path, step_s=STEP, horizons_s=(300, 3600)).start()
    try:
        samples = [("link:1:2-4:2", float(T0 + STEP * k), float(10 + k % 12)) for k in range(400)]
        assert predictor.client.ingest(samples).accepted == 400
        first = predictor.client.forecast(["link:1:2-4:2"], [300, 3600], [0.05, 0.95])
        assert [f.degraded for f in first.forecasts] == [True, True]
    finally:
        took = predictor.stop()             # SIGTERM; killed after 10 s
    assert predictor.proc.returncode == 0
    assert took < 5.0

    predictor = PredictorProcess(tmp_path, step_s=STEP, horizons_s=(300, 3600)).start()
    try:
        again = predictor.client.forecast(["link:1:2-4:2"], [300, 3600], [0.05, 0.95])
        assert again == first
    finally:
        predictor.stop()
