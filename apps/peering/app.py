"""The peering app in the controller process: ``provider(view, resync)`` is its factory.

List ``apps.peering.app:provider`` in ``controller.providers`` and describe the
neighbours under ``peering``. The factory opens the state file
(``peering.store_path``), the BGP speaker's client (``peering.gobgp.target``) and,
for the predictive scheme, the predictor's client; the controller shell starts the
app (its speaker and plan loops), serves its gRPC API and closes it at shutdown.
"""

from __future__ import annotations

import logging
from typing import Callable

from apps.peering import SPEC
from apps.peering.api import services
from apps.peering.config import PeeringConfig
from apps.peering.gobgp import GoBgp
from apps.peering.manager import PeeringManager
from apps.peering.store import PeeringStore
from controller.appbase import CoreView
from controller.appkit import predictor_client

LOG = logging.getLogger(__name__)


class PeeringApp(PeeringManager):
    def grpc_services(self) -> list:
        return services(self)


def provider(view: CoreView, resync: Callable[[], None]) -> PeeringApp:
    settings: PeeringConfig = view.section(SPEC.section)
    store = PeeringStore(settings.store_path) if settings.store_path else None
    speaker = GoBgp(settings.gobgp.target, timeout_s=settings.gobgp.timeout_s)
    predictor = (
        predictor_client(view.config.controller.predictor) if settings.scheme == "predictive" else None
    )
    app = PeeringApp(view, resync, settings, speaker, predictor, store, clock=view.config.controller.clock)
    LOG.info(
        "peering: AS %d (router-id %s), scheme %s, %d neighbour(s): %s; speaker at %s",
        settings.asn,
        settings.router_id,
        settings.scheme,
        len(settings.neighbours),
        ", ".join(f"{n.name} AS{n.asn} {n.kind} {n.capacity_mbps:g} Mbit/s" for n in settings.neighbours),
        settings.gobgp.target,
    )
    return app
