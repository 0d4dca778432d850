"""The peering lab's scenario, all of it derived from the fit span (pure, no network).

**Destinations.** Each of Abilene's 132 OD series becomes one destination network
(an origin AS, ``64600 + i`` for the i-th series in the dataset's order) with
``prefixes_per_group`` /24 prefixes numbered on from ``100.64.0.0``; its demand is
that series, scaled. So a prefix group's traffic has the day's real shape, and the
groups differ as Abilene's OD pairs do.

**Who reaches what.** The transit provider (AS 64500) announces every prefix with an
AS path of three (``64500 64999 origin``). Three peers serve Abilene's regions by the
OD pair's *destination* router: ``west`` (LOSA, SNVA, STTL, DNVR), ``central``
(KSCY, HSTN, IPLS, CHIN) and ``east`` (NYCM, WASH, ATLA, ATLA-M5). A peer announces
about half of its region's networks as its customers (AS path of two, so plain BGP
prefers it to transit) and the rest through two more ASes (a path of four: plain BGP
keeps them on transit, though the peer could carry them); ``central`` also reaches a
fifth of the other regions' networks (path of four). Which half is decided by a CRC
of the series name, so the split is deterministic and owes nothing to the traffic.

**Scale and capacities (fit span only, ``timestamp_index < 2880``).** Demand is
scaled so the fit span's mean total is ``mean_mbps``. Each peer's capacity is its
``capacity_factor`` times the fit span's 95th percentile of the demand plain BGP puts
on it (west's factor below 1: plain BGP overloads it at peaks, as Edge Fabric found
peering links do); transit's is ``transit_factor`` times the fit span's 95th
percentile of the total (transit alone cannot carry the peaks).

**The replay** is ``samples`` 5-minute steps of the first evaluation day
(2004-03-11), centred on the time of day at which the fit span's mean total demand
peaks, each played in ``step_real_s`` real seconds, after ``warmup`` steps of the
same day that every scheme runs through unmeasured (a controller in service does not
start cold at the busy hour; without them the schemes that bring peers up on demand
start the window with everything on transit).
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from predictors.panel import SPLITS, Panel

TRANSIT_ASN = 64500
TIER1_ASN = 64999
DETOUR_ASNS = (64990, 64991)
ORIGIN_BASE = 64600
OUR_ASN = 65000
PREFIX_BASE = ipaddress.IPv4Address("100.64.0.0")
LAN = "10.100.0."  # the peering LAN: our speaker .1, neighbours .2 ..
REGIONS = {
    "west": ("LOSAng", "SNVAng", "STTLng", "DNVRng"),
    "central": ("KSCYng", "HSTNng", "IPLSng", "CHINng"),
    "east": ("NYCMng", "WASHng", "ATLAng", "ATLAM5"),
}
PEER_ASNS = {"west": 64501, "central": 64502, "east": 64503}


@dataclass(frozen=True)
class Scenario:
    dataset: str = "abilene"
    samples: int = 144  # measured 5-minute steps (12 h around the fit span's daily peak)
    warmup: int = 24  # steps replayed before them and not measured (2 h): no scheme starts cold
    step_real_s: float = 0.75  # real seconds per step
    mean_mbps: float = 24.0  # fit-span mean total demand, lab Mbit/s
    prefixes_per_group: int = 8
    targets_per_group: int = 2  # destination addresses the senders use per group
    capacity_factor: tuple[tuple[str, float], ...] = (("west", 0.9), ("central", 2.5), ("east", 1.6))
    transit_factor: float = 0.75
    transit_cost: float = 1.0  # per Mbit/s of the 95th percentile per billing window
    peer_cost: tuple[tuple[str, float], ...] = (("west", 0.3), ("central", 0.4), ("east", 0.35))
    hour_cost: float = 0.02  # per hour a peering is up
    latency_ms: tuple[tuple[str, float], ...] = (
        ("transit", 40.0),
        ("west", 12.0),
        ("central", 18.0),
        ("east", 15.0),
    )
    lead_s: float = 1800.0  # app clock: request to steered traffic, planned for
    min_flow_mbps: float = 0.01  # groups under this fit mean (scaled) send nothing


@dataclass
class Neighbour:
    name: str
    asn: int
    address: str
    kind: str
    capacity_mbps: float
    cost_per_mbps: float
    hour_cost: float
    latency_ms: float
    announces: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (prefix, path after its AS)

    def config(self, lead_s: float) -> dict:
        """Its entry in the controller's ``peering.neighbours``; a peer registers (IRR) the
        networks it announces as its customers (an AS path of two)."""
        out = {k: v for k, v in asdict(self).items() if k != "announces"}
        out.update(
            lead_s=lead_s, always=self.kind == "transit", max_prefixes=max(10, 2 * len(self.announces))
        )
        if self.kind == "peer":
            out["registered_origins"] = sorted({path[-1] for _, path in self.announces if len(path) == 1})
        return out


@dataclass
class Group:
    series: str  # dataset series "SRC->DST"
    origin: int
    prefixes: list[str]
    targets: list[str]  # addresses the senders use


@dataclass
class PeeringPlan:
    start: int  # measured [start, start + samples), dataset indices; the replay starts warmup earlier
    start_time: float
    demand_scale: float
    groups: list[Group]
    neighbours: list[Neighbour]
    rates: dict[str, list[float]]  # group name ("as<origin>") -> lab Mbit/s per replayed step
    fit: dict  # what the choices saw on the fit span

    def summary(self) -> dict:
        return {
            "start": self.start,
            "start_time": self.start_time,
            "demand_scale": self.demand_scale,
            "groups": len(self.groups),
            "prefixes": sum(len(g.prefixes) for g in self.groups),
            "neighbours": [
                {k: v for k, v in n.config(0.0).items() if k != "registered_origins"}
                | {
                    "announces": len(n.announces),
                    "registered_origins": len(n.config(0.0).get("registered_origins", ())),
                }
                for n in self.neighbours
            ],
            "fit": self.fit,
        }


def group_name(origin: int) -> str:
    return f"as{origin}"


def _bucket(series: str) -> int:
    return zlib.crc32(series.encode()) % 100


def region_of(node: str) -> str:
    return next(r for r, nodes in REGIONS.items() if node in nodes)


def reach(series: str) -> dict[str, int]:
    """Neighbour -> AS-path length of its route to this series' network."""
    dst_region = region_of(series.split("->")[1])
    b = _bucket(series)
    out = {"transit": 3}
    out[dst_region] = 2 if b < 50 else 4
    if dst_region != "central" and b >= 80:
        out["central"] = 4
    return out


def prefixes_of(index: int, per_group: int) -> list[str]:
    first = int(PREFIX_BASE) + index * per_group * 256
    return [f"{ipaddress.IPv4Address(first + k * 256)}/24" for k in range(per_group)]


def build(scn: Scenario, panel: Panel) -> PeeringPlan:
    split = SPLITS[scn.dataset]
    fit = panel.values[: split.fit_end]
    scale = scn.mean_mbps / float(fit.sum(axis=1).mean())
    groups, neighbours = [], {}
    lan = iter(range(2, 250))
    neighbours["transit"] = Neighbour(
        "transit",
        TRANSIT_ASN,
        LAN + str(next(lan)),
        "transit",
        0.0,
        scn.transit_cost,
        0.0,
        dict(scn.latency_ms)["transit"],
    )
    for region in REGIONS:
        neighbours[region] = Neighbour(
            region,
            PEER_ASNS[region],
            LAN + str(next(lan)),
            "peer",
            0.0,
            dict(scn.peer_cost)[region],
            scn.hour_cost,
            dict(scn.latency_ms)[region],
        )
    best_load = {n: np.zeros(split.fit_end) for n in neighbours}
    rates = {}
    per_day = panel.period_steps()
    days = split.fit_end // per_day
    profile = fit[: days * per_day].sum(axis=1).reshape(days, per_day).mean(axis=0)
    peak = int(np.argmax(profile))
    start = split.fit_end + max(scn.warmup, min(per_day - scn.samples, peak - scn.samples // 2))
    for i, series in enumerate(panel.names):
        origin = ORIGIN_BASE + i
        prefixes = prefixes_of(i, scn.prefixes_per_group)
        step = max(1, scn.prefixes_per_group // scn.targets_per_group)
        targets = [str(ipaddress.IPv4Network(p).network_address + 1) for p in prefixes[::step]][
            : scn.targets_per_group
        ]
        groups.append(Group(series, origin, prefixes, targets))
        paths = reach(series)
        for name, length in paths.items():
            extra = (
                (TIER1_ASN, origin)
                if name == "transit"
                else (origin,)
                if length == 2
                else (*DETOUR_ASNS, origin)
            )
            neighbours[name].announces += [(p, extra) for p in prefixes]
        column = fit[:, i] * scale
        best = min(paths, key=lambda n: (paths[n], n))
        best_load[best] += column
        replay = panel.values[start - scn.warmup : start + scn.samples, i] * scale
        rates[group_name(origin)] = [
            round(float(v), 4) if column.mean() >= scn.min_flow_mbps else 0.0 for v in replay
        ]
    total_p95 = float(np.percentile(fit.sum(axis=1) * scale, 95))
    neighbours["transit"].capacity_mbps = round(scn.transit_factor * total_p95, 2)
    for region, factor in scn.capacity_factor:
        neighbours[region].capacity_mbps = round(factor * float(np.percentile(best_load[region], 95)), 2)
    fit_info = {
        "peak_step_of_day": peak,
        "total_p95_mbps": round(total_p95, 3),
        "total_mean_mbps": scn.mean_mbps,
        "plain_bgp_p95_mbps": {n: round(float(np.percentile(v, 95)), 3) for n, v in best_load.items()},
    }
    return PeeringPlan(
        start, float(panel.times[start]), scale, groups, list(neighbours.values()), rates, fit_info
    )


def fit_series(scn: Scenario, panel: Panel, plan: PeeringPlan) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fit span of every group's demand as the app names its series (scaled)."""
    split = SPLITS[scn.dataset]
    return {
        group_name(g.origin): (
            panel.times[: split.fit_end],
            panel.values[: split.fit_end, i] * plan.demand_scale,
        )
        for i, g in enumerate(plan.groups)
    }
