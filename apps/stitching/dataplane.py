"""What stitching puts on a site switch: a pure function of the sites and stitches.

A site switch (one per site, see ``topologies/sites.py``) is an L2 switch per
virtual network (VN), and the only way between VNs or sites is a stitch:

ingress (table 0), above the controller's ARP rule, below LLDP:
    in_port=<host port>               -> reg5 := the host's VNID, goto stitch
    in_port=<tunnel port>             -> goto stitch (the shared one, and an encrypted
                                         stitch's own)
stitch (table 6), miss drops (deny by default):
    reg5=V, eth_dst=<host g in V>     -> output g                  (L2 within a VN)
    reg5=V, eth_dst=broadcast         -> output every host in V, and every segment
                                         or bandwidth stitch of V's tunnel
    segment/bandwidth stitch V(here) - W(there), VNI n:
      reg5=V, eth_dst=<remote host in W>       -> meter, tunnel(n)
      tunnel_id=n, in_port=tun, eth_dst=<g in V> -> output g
      tunnel_id=n, in_port=tun, eth_dst=broadcast -> output every host in V
    direct stitch x(here) - y(there), VNI n:
      reg5=V, eth_src=x, eth_dst=y               -> meter, tunnel(n)
      reg5=V, eth_src=x, broadcast ARP for y's IP -> meter, tunnel(n)
      tunnel_id=n, in_port=tun, eth_dst=x or broadcast -> output x

Each stitch has a meter per end (its index's): a bandwidth stitch's drops above the
reserved rate, the others' only count, so every stitch's traffic is measured.
tunnel(n) over the shared flow-based VXLAN port: set tunnel_id=n, tun_ipv4_src and
tun_ipv4_dst (the two sites' addresses on the stitch's underlay plane), output; the
receiving site matches ``tunnel_id``. An encrypted stitch has a VXLAN port of its own
over the sites' WireGuard link (LAB.md): output to it, and match ``in_port`` on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller import cookies
from controller.desired import Desired
from controller.flows import ETH_TYPE_ARP, FlowSpec, flow
from controller.meters import COUNT_ONLY_KBPS, MeterSpec, rate_meter

OWNER = "stitching"
PRIO_PORT = 2500            # ingress: above broadcast ARP to the controller (2000), below LLDP (3000)
PRIO_L2 = 100               # stitch: within a VN
PRIO_STITCH = 200           # stitch: into and out of tunnels
PRIO_DIRECT_ARP = 300       # a direct stitch's ARP goes to its peer only, not to the VN
BROADCAST = "ff:ff:ff:ff:ff:ff"
METER_BURST_S = 0.1
SITE_COOKIE = cookies.cookie(OWNER, 0)          # a site's own L2 flows; stitch i uses cookie i + 1


def meter_id_of(index: int) -> int:
    """The meter of stitch ``index`` (one per end, same id at both sites)."""
    return cookies.meter_id(OWNER, index + 1)


@dataclass(frozen=True)
class Host:
    name: str               # its switch port's name
    mac: str
    ip: str
    vnid: int
    tenant: str
    port_no: int | None     # None until the switch reports the port


@dataclass(frozen=True)
class Site:
    name: str
    dp_id: int
    hosts: tuple[Host, ...] = ()
    tunnel_port: int | None = None               # the flow-based VXLAN port's number
    addresses: dict[int, str] = field(default_factory=dict)      # underlay plane -> address

    def __hash__(self) -> int:
        return hash((self.name, self.dp_id))


@dataclass(frozen=True)
class End:
    site: str
    vnid: int
    host: str | None = None                      # direct stitches: the host's name


@dataclass(frozen=True)
class Stitch:
    index: int                                   # small, unique: cookies and meter ids
    kind: str                                    # "direct", "segment" or "bandwidth"
    vni: int
    a: End
    b: End
    plane: int                                   # underlay plane the tunnel takes
    mbps: float | None = None                    # bandwidth stitches: the reserved rate
    encrypted_ports: dict[str, int] | None = None    # site -> its encrypted VXLAN port

    def ends_at(self, site: str) -> list[tuple[End, End]]:
        """(this end, far end) for every end of the stitch at ``site``."""
        return [(e, f) for e, f in ((self.a, self.b), (self.b, self.a)) if e.site == site]

    @property
    def cookie(self) -> int:
        return cookies.cookie(OWNER, self.index + 1)

    @property
    def meter_id(self) -> int:
        return meter_id_of(self.index)

    def __hash__(self) -> int:
        return hash((self.index, self.vni))


def _tunnel_out(stitch: Stitch, here: Site, there: Site) -> list[tuple] | None:
    """Actions that put a frame into the stitch's tunnel toward ``there``; None while
    the tunnel cannot be built (a port or an address not known yet)."""
    if stitch.encrypted_ports is not None:
        port = stitch.encrypted_ports.get(here.name)
        return None if port is None else [("output", port)]
    src, dst = here.addresses.get(stitch.plane), there.addresses.get(stitch.plane)
    if here.tunnel_port is None or src is None or dst is None:
        return None
    return [("set_field", "tunnel_id", stitch.vni), ("set_field", "tun_ipv4_src", src),
            ("set_field", "tun_ipv4_dst", dst), ("output", here.tunnel_port)]


def _tunnel_in(stitch: Stitch, here: Site) -> dict | None:
    """The match of frames arriving from the stitch's tunnel."""
    if stitch.encrypted_ports is not None:
        port = stitch.encrypted_ports.get(here.name)
        return None if port is None else {"in_port": port}
    return None if here.tunnel_port is None else {"in_port": here.tunnel_port, "tunnel_id": stitch.vni}


def site_entries(site: Site, sites: dict[str, Site], stitches: list[Stitch]) -> Desired:
    """Everything stitching wants on ``site``'s switch."""
    flows: list[FlowSpec] = []
    meters: list[MeterSpec] = []
    ported = [h for h in site.hosts if h.port_no is not None]
    by_vn: dict[int, list[Host]] = {}
    for h in ported:
        by_vn.setdefault(h.vnid, []).append(h)
        flows.append(flow("ingress", PRIO_PORT, {"in_port": h.port_no}, [("set_field", "reg5", h.vnid)],
                          goto="stitch", cookie=SITE_COOKIE))
        flows.append(flow("stitch", PRIO_L2, {"reg5": h.vnid, "eth_dst": h.mac}, [("output", h.port_no)],
                          cookie=SITE_COOKIE))
    if site.tunnel_port is not None:
        flows.append(flow("ingress", PRIO_PORT, {"in_port": site.tunnel_port}, goto="stitch",
                          cookie=SITE_COOKIE))
    floods: dict[int, list[tuple]] = {vn: [("output", h.port_no) for h in hosts]
                                      for vn, hosts in by_vn.items()}
    for stitch in stitches:
        for here, far in stitch.ends_at(site.name):
            there = sites.get(far.site)
            if there is None or here.vnid not in by_vn:
                continue
            out, match_in = _tunnel_out(stitch, site, there), _tunnel_in(stitch, site)
            if out is None or match_in is None:
                continue
            if stitch.encrypted_ports is not None:
                flows.append(flow("ingress", PRIO_PORT, match_in, goto="stitch", cookie=stitch.cookie))
            # Every stitch's traffic into the tunnel passes its meter: a bandwidth stitch's
            # drops above its rate, the others' only count (what the stitch carries).
            rate = (max(1, round(stitch.mbps * 1000)) if stitch.kind == "bandwidth" and stitch.mbps
                    else COUNT_ONLY_KBPS)
            meters.append(rate_meter(stitch.meter_id, rate, METER_BURST_S))
            meter = stitch.meter_id
            local = by_vn[here.vnid]
            remote = [h for h in there.hosts if h.vnid == far.vnid]
            if stitch.kind == "direct":
                me = next((h for h in local if h.name == here.host), None)
                peer = next((h for h in remote if h.name == far.host), None)
                if me is None or peer is None:
                    continue
                flows.append(flow("stitch", PRIO_STITCH,
                                  {"reg5": here.vnid, "eth_src": me.mac, "eth_dst": peer.mac},
                                  out, cookie=stitch.cookie, meter=meter))
                flows.append(flow("stitch", PRIO_DIRECT_ARP,
                                  {"reg5": here.vnid, "eth_src": me.mac, "eth_dst": BROADCAST,
                                   "eth_type": ETH_TYPE_ARP, "arp_tpa": peer.ip}, out, cookie=stitch.cookie,
                                  meter=meter))
                for dst in (me.mac, BROADCAST):
                    flows.append(flow("stitch", PRIO_STITCH, dict(match_in, eth_dst=dst),
                                      [("output", me.port_no)], cookie=stitch.cookie))
                continue
            for r in remote:
                flows.append(flow("stitch", PRIO_STITCH, {"reg5": here.vnid, "eth_dst": r.mac}, out,
                                  cookie=stitch.cookie, meter=meter))
            for h in local:
                flows.append(flow("stitch", PRIO_STITCH, dict(match_in, eth_dst=h.mac),
                                  [("output", h.port_no)], cookie=stitch.cookie))
            flows.append(flow("stitch", PRIO_STITCH, dict(match_in, eth_dst=BROADCAST),
                              [("output", h.port_no) for h in local], cookie=stitch.cookie))
            floods[here.vnid] = floods[here.vnid] + out
    for vn, actions in sorted(floods.items()):
        flows.append(flow("stitch", PRIO_L2, {"reg5": vn, "eth_dst": BROADCAST}, actions, cookie=SITE_COOKIE))
    return Desired(flows=tuple(flows), meters=tuple(meters))
