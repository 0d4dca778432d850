"""The slices app in the controller process: ``provider(view, resync)`` is its factory.

List ``apps.slices.app:provider`` in ``controller.providers``. The factory opens the
slices state file (``slices.store_path``), registers the pool members the config
names, and returns the ``SliceManager`` with its autoscaler; the controller shell
starts it, serves its gRPC API (``grpc_services``) next to the controller's own and
calls ``close`` at shutdown.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from apps.slices import SPEC
from apps.slices.autoscale import Autoscaler
from apps.slices.config import SlicesConfig
from apps.slices.manager import SliceManager
from apps.slices.store import SliceStore
from controller.appbase import CoreView
from controller.appkit import predictor_client

LOG = logging.getLogger(__name__)


def provider(view: CoreView, resync: Callable[[], None]) -> SliceManager:
    settings: SlicesConfig = view.section(SPEC.section)
    store = None
    if settings.store_path:
        Path(settings.store_path).parent.mkdir(parents=True, exist_ok=True)
        store = SliceStore(settings.store_path)
    scaling = settings.scaling
    manager = SliceManager(view, resync, store, drain_s=settings.drain_s,
                           policy={"scale_down_after_s": scaling.scale_down_after_s,
                                   "down_margin": scaling.down_margin, "zero_mbps": scaling.zero_mbps})
    for member in settings.members:
        manager.register_member(member.pool, member.host_id, member.ipv4, member.labels)
    ctl = view.config.controller
    manager.autoscaler = Autoscaler(manager, predictor_client(ctl.predictor), horizon_s=scaling.horizon_s,
                                    clock=ctl.clock, interval_s=scaling.interval_s, ingest=scaling.ingest)
    manager.scale_in_background = scaling.enabled
    LOG.info("slices: %d slice(s), %d pool member(s); scaling every %g s, %g s ahead, predictor %s",
             len(manager.slices), len(manager.members()), scaling.interval_s, scaling.horizon_s,
             ctl.predictor.address or "none (reactive)")
    return manager
