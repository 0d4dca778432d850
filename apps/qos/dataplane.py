"""QoS classes on one switch: flows that classify host traffic by DSCP, and class meters.

Pure: given the classes and which ports of a switch face hosts, ``switch_entries``
returns what the switch should hold. In the ``slice`` table, for every host port
``p`` and class ``c``::

    in_port=p, IPv4, ip_dscp=d   (each d of c)    meter c, goto forward    priority 900 - rank(c)
    in_port=p, IPv4              (default class)  meter c, goto forward    priority 800

and one meter per class: drop above ``rate_mbps`` (a bucket of ``burst_s`` of the
rate); a class without a rate gets a counting meter at 100 Gbit/s, which drops
nothing and measures what the class offers.

Only frames from host ports are classified, so a packet is metered once, at the
first switch it meets; frames arriving over links miss these rules and go to
``forward`` as before. A meter is per switch and class, shared by that switch's host
ports: a class's rate is what the hosts behind one switch may send together.

Priorities: a more important class (lower rank) gets a higher priority, so where
matches overlap (the default class's catch-all under every listed DSCP) the more
important class wins. All of them sit below the slices' rules (1010 and up), so VIP
traffic, member replies and transit toward members keep their slice's meters and
marking and are not classified again.

Ids: the class at position ``i`` of the config owns meter ``i`` and flow cookie ``i``
in the qos owner's ranges (``controller.cookies``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from controller import cookies
from apps.qos.config import QOS_MAX_RANK, QosConfig
from controller.desired import Desired
from controller.flows import ETH_TYPE_IP, FlowSpec, flow
from controller.meters import COUNT_ONLY_KBPS, MeterSpec, rate_meter

OWNER = "qos"
PRIO_TOP = 900                          # rank 0; the top of the band apps.qos registers in classify
PRIO_DEFAULT = PRIO_TOP - QOS_MAX_RANK - 1


@dataclass(frozen=True)
class QosClass:
    """A configured class with what its rules need."""

    name: str
    index: int                          # position in qos.classes: its meter and cookie
    dscp: tuple[int, ...]
    rank: int
    rate_kbps: int | None               # None: unmetered (a counting meter)
    default: bool = False

    @property
    def priority(self) -> int:
        return PRIO_TOP - self.rank

    @property
    def meter_id(self) -> int:
        return cookies.meter_id(OWNER, self.index)

    @property
    def cookie(self) -> int:
        return cookies.cookie(OWNER, self.index)

    @property
    def rate_mbps(self) -> float | None:
        return None if self.rate_kbps is None else self.rate_kbps / 1000


def classes_from(settings: QosConfig) -> tuple[QosClass, ...]:
    """The configured classes, most important first (by rank, then as listed)."""
    out = [QosClass(c.name, i, tuple(c.dscp), c.rank,
                    None if c.rate_mbps is None else max(1, math.ceil(c.rate_mbps * 1000)), c.default)
           for i, c in enumerate(settings.classes)]
    return tuple(sorted(out, key=lambda c: (c.rank, c.index)))


def meter(cls: QosClass, burst_s: float) -> MeterSpec:
    return rate_meter(cls.meter_id, cls.rate_kbps if cls.rate_kbps is not None else COUNT_ONLY_KBPS, burst_s)


def switch_entries(classes: Iterable[QosClass], host_ports: Iterable[int], burst_s: float) -> Desired:
    """What a switch with these host ports holds (nothing without host ports or classes)."""
    classes, ports = tuple(classes), sorted(set(host_ports))
    if not classes or not ports:
        return Desired()
    flows_: list[FlowSpec] = []
    for cls in classes:
        for port in ports:
            for dscp in cls.dscp:
                flows_.append(flow("classify", cls.priority, {"in_port": port, "eth_type": ETH_TYPE_IP,
                                                           "ip_dscp": dscp},
                                   goto="forward", meter=cls.meter_id, cookie=cls.cookie))
            if cls.default:
                flows_.append(flow("classify", PRIO_DEFAULT, {"in_port": port, "eth_type": ETH_TYPE_IP},
                                   goto="forward", meter=cls.meter_id, cookie=cls.cookie))
    return Desired(tuple(flows_), (), tuple(meter(cls, burst_s) for cls in classes))
