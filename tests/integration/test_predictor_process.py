"""``foresight-predictor serve`` as its own process: it serves, keeps its samples
across a restart, and stops promptly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from predictors.client import PredictorClient
from topologies.lab import ROOT, free_port

STEP = 300
T0 = 300 * 4_000_000


def _start(state_dir, port):
    proc = subprocess.Popen([sys.executable, "-m", "predictors.cli", "serve", "--listen", f"127.0.0.1:{port}",
                             "--state-dir", str(state_dir), "--step-s", str(STEP)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = PredictorClient(f"127.0.0.1:{port}")
    client.wait_ready(60, alive=lambda: proc.poll() is None)
    return proc, client


def _stop(proc, client) -> float:
    client.close()
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("predictor did not stop within 10 s of SIGTERM")
    return time.monotonic() - start


def test_serve_restart_and_stop(tmp_path):
    port = free_port()
    proc, client = _start(tmp_path, port)
    try:
        samples = [("link:1:2-4:2", float(T0 + STEP * k), float(10 + k % 12)) for k in range(400)]
        assert client.ingest(samples).accepted == 400
        first = client.forecast(["link:1:2-4:2"], [300, 3600], [0.05, 0.95])
        assert [f.degraded for f in first.forecasts] == [True, True]
    finally:
        took = _stop(proc, client)
    assert proc.returncode == 0
    assert took < 5.0

    proc, client = _start(tmp_path, port)
    try:
        again = client.forecast(["link:1:2-4:2"], [300, 3600], [0.05, 0.95])
        assert again == first
    finally:
        _stop(proc, client)
