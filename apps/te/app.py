"""The traffic-engineering app in the controller process: ``provider(core, resync)``.

List ``apps.te.app:provider`` in ``controller.providers`` and configure the ``te``
section (``controller.config.TeConfig``); forecasts come from the predictor at
``controller.predictor.address`` (none: plans use measured rates). See
``apps.te.engineer`` for what a step does and ``apps.te.dataplane`` for the flows.
"""

from __future__ import annotations

import logging
from typing import Callable

from apps.te.engineer import TrafficEngineer
from predictors.client import PredictorClient

LOG = logging.getLogger(__name__)


def provider(core, resync: Callable[[], None]) -> TrafficEngineer:
    settings = core.config.te
    link = core.config.controller.predictor
    predictor = PredictorClient(link.address, timeout_s=link.timeout_s) if link.address else None
    engineer = TrafficEngineer(core, resync, settings, predictor, clock=core.config.controller.clock,
                               poll_interval_s=core.config.controller.telemetry.poll_interval_s)
    engineer.start()
    LOG.info("traffic engineering every %g s: k=%d, threshold %g, q%g forecasts %g s ahead, predictor %s",
             settings.interval_s, settings.k, settings.threshold, settings.quantile, settings.horizon_s,
             link.address or "none (measured traffic)")
    return engineer
