"""What the sites' route managers advertise, and the paths between sites it offers.

Each site's route manager says, every few seconds: the virtual networks it can reach
(its hosts, with their VNID and tenant), its address on each underlay plane, and per
plane whether it is up, how much bandwidth is free and the round-trip time it
measured to every other site. ``Registry`` keeps the last advertisement of each
site; a site silent for ``ttl_s`` is forgotten (``expire``), and with it every VNID
only it reached.

    registry.advertise(ad, now)
    registry.sites_with("acme", 200)            # which sites reach VN 200 of acme
    registry.candidates("a", "b", min_mbps=5)   # underlay paths, best first

A candidate path between two sites is one underlay plane both are up on; its
bandwidth is the smaller of the two ends' free bandwidth, its latency the mean of
the two ends' measurements (one end's if the other has none yet), and its cost the
sum of the two sites' advertised costs for that plane. Candidates are ordered by
cost, then latency, then plane.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


class AdvertisementError(ValueError):
    """An advertisement that cannot be right; the message names the field."""


@dataclass(frozen=True)
class AdHost:
    name: str               # the host's port on the site switch
    mac: str
    ip: str
    vnid: int
    tenant: str


@dataclass(frozen=True)
class Plane:
    plane: int
    address: str
    up: bool = True
    available_mbps: float = 0.0
    cost: float = 1.0
    rtt_ms: dict[str, float] = field(default_factory=dict)     # peer site -> measured round trip
    loss: dict[str, float] = field(default_factory=dict)       # peer site -> share of probes unanswered

    def __hash__(self) -> int:
        return hash((self.plane, self.address))


@dataclass(frozen=True)
class Advertisement:
    site: str
    dp_id: int
    hosts: tuple[AdHost, ...] = ()
    planes: tuple[Plane, ...] = ()
    wg_public_key: str = ""          # for encrypted stitches (WireGuard), "" if it cannot
    tunnels: tuple[tuple[str, str], ...] = ()    # (stitch id, switch port) of its encrypted tunnels
    tunnel_errors: tuple[tuple[str, str], ...] = ()  # (stitch id, why it did not build its tunnel)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Advertisement":
        return cls(d["site"], d["dp_id"], tuple(AdHost(**h) for h in d.get("hosts", ())),
                   tuple(Plane(**p) for p in d.get("planes", ())), d.get("wg_public_key", ""),
                   tuple(tuple(t) for t in d.get("tunnels", ())),
                   tuple(tuple(t) for t in d.get("tunnel_errors", ())))

    def check(self) -> None:
        if not self.site:
            raise AdvertisementError("site: empty")
        if not 0 < self.dp_id < 2**64:
            raise AdvertisementError(f"dp_id: {self.dp_id} is not a datapath id")
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise AdvertisementError("hosts: a host name repeats")
        for i, h in enumerate(self.hosts):
            if not 0 < h.vnid < 2**24:
                raise AdvertisementError(f"hosts.{i}.vnid: {h.vnid} outside 1..16777215")
            if not h.tenant:
                raise AdvertisementError(f"hosts.{i}.tenant: empty")
        seen = set()
        for i, p in enumerate(self.planes):
            if p.plane in seen:
                raise AdvertisementError(f"planes.{i}.plane: plane {p.plane} repeats")
            seen.add(p.plane)
            if p.available_mbps < 0 or not math.isfinite(p.available_mbps):
                raise AdvertisementError(f"planes.{i}.available_mbps: {p.available_mbps}")
            if p.cost < 0 or not math.isfinite(p.cost):
                raise AdvertisementError(f"planes.{i}.cost: {p.cost}")


@dataclass(frozen=True)
class Candidate:
    plane: int
    available_mbps: float
    rtt_ms: float | None
    cost: float

    def describe(self) -> str:
        rtt = "rtt unknown" if self.rtt_ms is None else f"rtt {self.rtt_ms:.2f} ms"
        return f"plane {self.plane}: {self.available_mbps:g} Mbit/s free, {rtt}, cost {self.cost:g}"


@dataclass
class _Seen:
    ad: Advertisement
    at: float


class Registry:
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._sites: dict[str, _Seen] = {}

    def advertise(self, ad: Advertisement, now: float) -> bool:
        """Take a site's advertisement; True if the site is new (or back)."""
        ad.check()
        for name, seen in self._sites.items():
            if name != ad.site and seen.ad.dp_id == ad.dp_id:
                raise AdvertisementError(f"dp_id: {ad.dp_id:#x} is site {name}'s")
        new = ad.site not in self._sites
        self._sites[ad.site] = _Seen(ad, now)
        return new

    def expire(self, now: float) -> list[str]:
        """Forget the sites silent for ttl_s; their names."""
        gone = sorted(name for name, seen in self._sites.items() if now - seen.at > self.ttl_s)
        for name in gone:
            del self._sites[name]
        return gone

    def get(self, site: str) -> Advertisement | None:
        seen = self._sites.get(site)
        return None if seen is None else seen.ad

    def last_seen(self, site: str) -> float | None:
        seen = self._sites.get(site)
        return None if seen is None else seen.at

    def sites(self) -> list[Advertisement]:
        return [self._sites[name].ad for name in sorted(self._sites)]

    def by_dp_id(self, dp_id: int) -> Advertisement | None:
        return next((s.ad for s in self._sites.values() if s.ad.dp_id == dp_id), None)

    def sites_with(self, tenant: str, vnid: int) -> list[str]:
        return sorted(name for name, seen in self._sites.items()
                      if any(h.vnid == vnid and h.tenant == tenant for h in seen.ad.hosts))

    def host(self, site: str, name: str) -> AdHost | None:
        ad = self.get(site)
        return None if ad is None else next((h for h in ad.hosts if h.name == name), None)

    def probe_loss(self, a: str, b: str, plane: int) -> float | None:
        """The share of probes between sites a and b on ``plane`` that went unanswered
        (the mean of what the two ends measured), None if neither measured."""
        values = []
        for here, there in ((a, b), (b, a)):
            ad = self.get(here)
            p = next((p for p in ad.planes if p.plane == plane), None) if ad else None
            if p is not None and there in p.loss:
                values.append(p.loss[there])
        return sum(values) / len(values) if values else None

    def candidates(self, a: str, b: str, min_mbps: float = 0.0, max_rtt_ms: float | None = None,
                   reserved: dict[tuple[str, int], float] | None = None) -> list[Candidate]:
        """Underlay paths between sites ``a`` and ``b`` meeting the requirements, best
        first; ``reserved`` (site, plane) -> Mbit/s already promised to stitches."""
        ad_a, ad_b = self.get(a), self.get(b)
        if ad_a is None or ad_b is None:
            return []
        reserved = reserved or {}
        planes_b = {p.plane: p for p in ad_b.planes}
        out = []
        for pa in ad_a.planes:
            pb = planes_b.get(pa.plane)
            if pb is None or not (pa.up and pb.up):
                continue
            free = min(pa.available_mbps - reserved.get((a, pa.plane), 0.0),
                       pb.available_mbps - reserved.get((b, pb.plane), 0.0))
            rtts = [r for r in (pa.rtt_ms.get(b), pb.rtt_ms.get(a)) if r is not None]
            rtt = sum(rtts) / len(rtts) if rtts else None
            if free < min_mbps or (max_rtt_ms is not None and (rtt is None or rtt > max_rtt_ms)):
                continue
            out.append(Candidate(pa.plane, max(0.0, free), rtt, pa.cost + pb.cost))
        return sorted(out, key=lambda c: (c.cost, math.inf if c.rtt_ms is None else c.rtt_ms, c.plane))
