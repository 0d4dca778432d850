"""Proactive peering: forecast-driven peer choice over real BGP sessions.

Our AS reaches every destination through a transit provider and can peer on demand
with other networks. The app learns every neighbour's routes from the BGP speaker
(GoBGP, driven over its gRPC API: ``gobgp``), groups destination prefixes by origin
AS (``rib``), forecasts each group's demand, decides which exit carries each group and
which sessions are worth having (``planner``), keeps the sessions (``sessions``,
persisted by ``store``), and steers each group at the edge switch (``dataplane``):
longest-prefix match on the destination, a fast-failover group per prefix group, and
an exit stage per neighbour with its slice (meter and priority class). ``api`` is the
gRPC service, ``app`` the factory (``apps.peering.app:provider``).

Importing the package registers the app: owner ``peering``, its tables ``egress``
(entered from the shared ``classify``) and ``exit`` (a resubmit target), its band in
``classify`` and its config section ``peering``.
"""

from apps.peering.config import PeeringConfig
from controller.appbase import AppSpec, register
from controller.pipeline import Table

SPEC = register(AppSpec(
    name="peering", code=0x09, ids=True,
    tables=(
        Table("egress", 7, frozenset({"eth_type", "ipv4_dst"}), miss="drop", owner="peering",
              description="destinations outside our AS: longest-prefix match, then the prefix group's "
                          "fast-failover group; no route drops"),
        Table("exit", 8, frozenset({"reg4", "eth_type"}), miss="drop", resubmit_target=True, owner="peering",
              description="the exit a fast-failover bucket picked (reg4): the peering's slice meter, "
                          "its priority class, the neighbour's MAC, out. Resubmit target"),
    ),
    entries=(("classify", "egress"),),
    # Frames to the router MAC: above the slices' VIPs (1010..1220) and QoS (800..900).
    bands=(("classify", 1300, 1300),),
    section="peering", schema=PeeringConfig,
    summary="peering: destinations steered per prefix group to transit or to peers brought up ahead of "
            "forecast demand"))
