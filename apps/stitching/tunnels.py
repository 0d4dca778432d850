"""What each site must build for encrypted stitches: tunnel orders and their addresses.

An encrypted stitch with index ``i`` gets, at each of its two sites, a WireGuard link
(``wgs<i>a`` at its a-site, ``wgs<i>b`` at its b-site) with the ``i``-th /30 of
``stitching.wg_inner_cidr`` (a-site .1, b-site .2) listening on ``wg_port_base + i``,
and a VXLAN port ``vxe<i>`` over it. With ``stitching.encryption: ovs-ipsec`` it is an
Open vSwitch VXLAN port with the stitch's pre-shared key between the two sites'
underlay addresses on the stitch's plane instead. Pure: the manager calls
``tunnel_orders`` under its lock and the API sends the orders to route managers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from apps.stitching.config import StitchingConfig
from apps.stitching.registry import Advertisement, Registry
from apps.stitching.store import StitchRecord


@dataclass(frozen=True)
class TunnelOrder:
    """What one site must keep for an encrypted stitch (a WireGuard link and a VXLAN
    port over it); the API sends it as an ``EncryptedTunnel``."""

    stitch_id: str
    vni: int
    peer_site: str
    peer_public_key: str
    peer_endpoint: str
    inner_address: str              # CIDR
    peer_inner_address: str
    interface: str
    listen_port: int
    port: str
    mode: str = "wireguard"
    psk: str = ""
    local_endpoint: str = ""


def plane_address(ad: Advertisement | None, plane: int) -> str:
    """A site's underlay address on ``plane`` ("" if it advertises none there)."""
    if ad is None:
        return ""
    return next((p.address for p in ad.planes if p.plane == plane), "")


def port_name(index: int) -> str:
    """The VXLAN port of encrypted stitch ``index`` at both its sites."""
    return f"vxe{index}"


def tunnel_orders(site: str, stitches: Iterable[StitchRecord], registry: Registry,
                  settings: StitchingConfig) -> list[TunnelOrder]:
    """The encrypted tunnels ``site`` must keep: one per encrypted stitch with a plane
    at the site whose peer has advertised what the tunnel needs (its WireGuard key and
    its address on the plane; with ovs-ipsec, both sites' addresses), by stitch index."""
    net = ipaddress.IPv4Network(settings.wg_inner_cidr)
    out = []
    for r in sorted(stitches, key=lambda r: r.index):
        if not (r.encrypted and r.plane and site in (r.a_site, r.b_site)):
            continue
        first = site == r.a_site
        peer = registry.get(r.b_site if first else r.a_site)
        endpoint = plane_address(peer, r.plane)
        if settings.encryption == "ovs-ipsec":
            local = plane_address(registry.get(site), r.plane)
            if peer and endpoint and local:
                out.append(TunnelOrder(r.id, r.vni, peer.site, "", endpoint, "", "", "", 0,
                                       port_name(r.index), "ovs-ipsec", r.psk, local))
            continue
        if not (peer and peer.wg_public_key and endpoint) or 4 * r.index + 3 >= net.num_addresses:
            continue
        base = net.network_address + 4 * r.index
        mine, theirs = (base + 1, base + 2) if first else (base + 2, base + 1)
        out.append(TunnelOrder(r.id, r.vni, peer.site, peer.wg_public_key, endpoint, f"{mine}/30",
                               str(theirs), f"wgs{r.index}{'a' if first else 'b'}",
                               settings.wg_port_base + r.index, port_name(r.index)))
    return out
