"""The slices app in the controller process: ``provider(core, resync)`` is its factory.

List ``apps.slices.app:provider`` in ``controller.providers``. The factory opens the
slices state file (``slices.store_path``), registers the pool members the config
names, and returns the ``SliceManager``; the controller shell serves its gRPC API
(``grpc_services``) next to the controller's own and calls ``close`` at shutdown.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from apps.slices.autoscale import Autoscaler
from apps.slices.manager import SliceManager
from apps.slices.store import SliceStore
from predictors.client import PredictorClient

LOG = logging.getLogger(__name__)


def provider(core, resync: Callable[[], None]) -> SliceManager:
    settings = core.config.slices
    store = None
    if settings.store_path:
        Path(settings.store_path).parent.mkdir(parents=True, exist_ok=True)
        store = SliceStore(settings.store_path)
    scaling = settings.scaling
    manager = SliceManager(core, resync, store, drain_s=settings.drain_s,
                           policy={"scale_down_after_s": scaling.scale_down_after_s,
                                   "down_margin": scaling.down_margin, "zero_mbps": scaling.zero_mbps})
    for member in settings.members:
        manager.register_member(member.pool, member.host_id, member.ipv4, member.labels)
    link = core.config.controller.predictor
    predictor = PredictorClient(link.address, timeout_s=link.timeout_s) if link.address else None
    manager.autoscaler = Autoscaler(manager, predictor, horizon_s=scaling.horizon_s, clock=core.config.controller.clock,
                                    interval_s=scaling.interval_s, ingest=scaling.ingest)
    if scaling.enabled:
        manager.autoscaler.start()
    LOG.info("slices: %d slice(s), %d pool member(s); scaling every %g s, %g s ahead, predictor %s",
             len(manager.slices), len(manager.members()), scaling.interval_s, scaling.horizon_s,
             link.address or "none (reactive)")
    return manager
