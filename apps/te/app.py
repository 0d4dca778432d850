"""The traffic-engineering app in the controller process: ``provider(view, resync)``.

List ``apps.te.app:provider`` in ``controller.providers`` and configure the ``te``
section (``apps.te.config.TeConfig``); forecasts come from the predictor at
``controller.predictor.address`` (none: plans use measured rates). See
``apps.te.engineer`` for what a step does and ``apps.te.dataplane`` for the flows.
"""

from __future__ import annotations

import logging
from typing import Callable

from apps.te import SPEC
from apps.te.engineer import TrafficEngineer
from controller.appbase import CoreView
from controller.appkit import predictor_client

LOG = logging.getLogger(__name__)


def provider(view: CoreView, resync: Callable[[], None]) -> TrafficEngineer:
    settings = view.section(SPEC.section)
    ctl = view.config.controller
    engineer = TrafficEngineer(view, resync, settings, predictor_client(ctl.predictor), clock=ctl.clock,
                               poll_interval_s=ctl.telemetry.poll_interval_s)
    LOG.info("traffic engineering every %g s: k=%d, threshold %g, q%g forecasts %g s ahead, predictor %s",
             settings.interval_s, settings.k, settings.threshold, settings.quantile, settings.horizon_s,
             ctl.predictor.address or "none (measured traffic)")
    return engineer
