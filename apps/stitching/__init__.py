"""Virtual-network stitching across sites.

Route managers (``routemgr``, one process per site) advertise their virtual networks
and underlay; the controller keeps the advertisements (``registry``), decides by the
security policy (``policy``), negotiates and keeps stitches (``manager``, persisted by
``store``), and puts them on the site switches (``dataplane``). ``api`` is the gRPC
service, ``app`` the factory (``apps.stitching.app:provider``).

Importing the package registers the app: owner ``stitching``, its table ``stitch``
(entered from the shared ``ingress``), its band in ``ingress`` and its config section
``stitching``.
"""

from apps.stitching.config import StitchingConfig
from controller.appbase import AppSpec, register
from controller.pipeline import Table

SPEC = register(AppSpec(
    name="stitching", code=0x08, ids=True,
    tables=(
        Table("stitch", 6,
              frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "arp_tpa", "tunnel_id", "reg5"}),
              miss="drop", owner="stitching",
              description="site switches: L2 within a virtual network (reg5), stitches over tunnels; "
                          "anything else is not allowed"),
    ),
    entries=(("ingress", "stitch"),),
    # Host and tunnel ports: above broadcast ARP to the controller (2000), below LLDP (3000).
    bands=(("ingress", 2500, 2500),),
    section="stitching", schema=StitchingConfig,
    summary="stitching: virtual networks joined across sites over VXLAN, WireGuard where policy asks"))
