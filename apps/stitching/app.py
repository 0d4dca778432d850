"""The stitching app in the controller process: ``provider(core, resync)`` is its factory.

List ``apps.stitching.app:provider`` in ``controller.providers``. The factory opens
the stitches' state file (``stitching.store_path``), starts the step that forgets
sites whose route manager went silent and ends idle stitches (every second), and
returns the
``StitchManager``; the controller shell serves its gRPC API (``grpc_services``)
next to its own and calls ``close`` at shutdown.
"""

from __future__ import annotations

import logging
from typing import Callable

from apps.stitching.api import services
from apps.stitching.manager import StitchManager
from apps.stitching.store import StitchStore
from controller.config import ClockConfig
from controller.stepper import GridStepper

LOG = logging.getLogger(__name__)

EXPIRE_INTERVAL_S = 1.0


class StitchingApp(StitchManager):
    """The manager plus what the controller shell looks up: its gRPC services, a
    stopping hook and close."""

    def start(self) -> None:
        # Advertisements age in wall time, whatever clock the apps reason in.
        self._steps = GridStepper("stitching-expiry", ClockConfig(), EXPIRE_INTERVAL_S, self._tick)
        self._steps.start()

    def _tick(self) -> None:
        self.expire()
        self.open_predicted()
        self.check_idle()

    def grpc_services(self) -> list:
        return services(self)

    def stopping(self) -> None:
        self._steps.halt()

    def close(self) -> None:
        self._steps.stop(timeout_s=2.0)
        super().close()


def provider(core, resync: Callable[[], None]) -> StitchingApp:
    settings = core.config.stitching
    store = StitchStore(settings.store_path) if settings.store_path else None
    app = StitchingApp(core, resync, settings, store)
    link = core.config.controller.predictor
    if link.address and (settings.idle_mbps or settings.predicted):
        from predictors.client import PredictorClient
        app.predictor = PredictorClient(link.address, timeout_s=link.timeout_s)
    app.start()
    LOG.info("stitching: %d stitch(es), %d policy rule(s): %s", len(app.stitches), len(app.policy.rules),
             "; ".join(app.policy.describe()) or "none (every stitch is refused)")
    return app
