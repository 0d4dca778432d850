"""A fixed provider for the integration tests, loaded by the controller process through
``controller.providers: [tests.lib.vip_provider:provider]``.

On the test bridge (dp_id ``DP_ID``) it wants what the slices app will want for one
VIP: a 2000 kbit/s meter, a select group over two members that rewrites the VIP to
the member's addresses, and a slice-table flow sending VIP traffic through both.
"""

from __future__ import annotations

from apps.slices import SPEC as SLICES
from controller import cookies
from controller.appbase import App
from controller.desired import Desired
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec

DP_ID = 0xAB
VIP_MAC, VIP_IP = "02:77:00:00:00:64", "10.77.0.100"
# (port, MAC, IPv4) of each member; the client sits on port 3.
MEMBERS = ((1, "02:77:00:00:00:01", "10.77.0.1"), (2, "02:77:00:00:00:02", "10.77.0.2"))
CLIENT_PORT = 3
RATE_KBPS, BURST_KB = 2000, 200
GROUP_ID = cookies.group_id("slices", 1)
METER_ID = cookies.meter_id("slices", 1)


class StaticVip(App):
    """Stands in for the slices app (it registers the owner whose ranges this uses)."""

    name = SLICES.name

    def desired(self, dp_id: int, now: float) -> Desired:
        if dp_id != DP_ID:
            return Desired()
        buckets = tuple(Bucket(1, None, (("set_field", "eth_dst", mac), ("set_field", "ipv4_dst", ip),
                                         ("output", port)))
                        for port, mac, ip in MEMBERS)
        vip = flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": VIP_IP}, [("group", GROUP_ID)],
                   meter=METER_ID, cookie=cookies.cookie("slices", 1))
        return Desired(flows=(vip,), groups=(GroupSpec(GROUP_ID, "select", buckets),),
                       meters=(MeterSpec(METER_ID, RATE_KBPS, BURST_KB),))


def provider(view, resync) -> StaticVip:
    return StaticVip(view, resync)
