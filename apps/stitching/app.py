"""The stitching app in the controller process: ``provider(core, resync)`` is its factory.

List ``apps.stitching.app:provider`` in ``controller.providers``. The factory opens
the stitches' state file (``stitching.store_path``), starts the step that forgets
sites whose route manager went silent and ends idle stitches (every second), and
returns the
``StitchingApp``; the controller shell starts it, serves its gRPC API (``grpc_services``)
next to its own and calls ``close`` at shutdown.
"""

from __future__ import annotations

import logging
from typing import Callable

from apps.stitching import SPEC
from apps.stitching.api import services
from apps.stitching.config import StitchingConfig
from apps.stitching.manager import StitchManager
from apps.stitching.store import StitchStore
from controller.appbase import CoreView
from controller.appkit import predictor_client
from controller.config import ClockConfig
from controller.stepper import GridStepper

LOG = logging.getLogger(__name__)

EXPIRE_INTERVAL_S = 1.0


class StitchingApp(StitchManager):
    """The manager plus its background step (every second: expire silent sites, open
    predicted stitches, end idle ones) and its gRPC services."""

    _steps: GridStepper | None = None

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
        if self._steps is not None:
            self._steps.halt()
        super().stopping()

    def close(self) -> None:
        if self._steps is not None:
            self._steps.stop(timeout_s=2.0)
        super().close()


def provider(view: CoreView, resync: Callable[[], None]) -> StitchingApp:
    settings: StitchingConfig = view.section(SPEC.section)
    store = StitchStore(settings.store_path) if settings.store_path else None
    app = StitchingApp(view, resync, settings, store)
    if settings.idle_mbps or settings.predicted:
        app.predictor = predictor_client(view.config.controller.predictor)
    LOG.info("stitching: %d stitch(es), %d policy rule(s): %s", len(app.stitches), len(app.policy.rules),
             "; ".join(app.policy.describe()) or "none (every stitch is refused)")
    return app
