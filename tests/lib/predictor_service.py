"""A real prediction service in the test's process (gRPC on a free loopback port, state
in a temporary directory), for tests of apps that ask it: ``served_predictor`` yields
``SimpleNamespace(service, client)`` and stops both, by handle, on the way out."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

from predictors.client import PredictorClient
from predictors.server import create_server
from predictors.service import PredictorService
from predictors.store import SeriesStore


@contextlib.contextmanager
def served_predictor(
    state_dir: Path, step_s: int = 300, horizons_s: tuple = (300, 900)
) -> Iterator[SimpleNamespace]:
    service = PredictorService(
        SeriesStore(step_s, state_dir / "samples.sqlite"), state_dir / "models", horizons_s=horizons_s
    )
    server, port, servicer = create_server(service, "127.0.0.1:0", max_workers=4)
    server.start()
    client = PredictorClient(f"127.0.0.1:{port}", timeout_s=5)
    try:
        yield SimpleNamespace(service=service, client=client)
    finally:
        client.close()
        servicer.stopping.set()
        server.stop(grace=None).wait(5)
        service.close()
