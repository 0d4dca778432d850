"""What the Mininet benchmarks share: a network of their own names and addresses (so a
lab someone else runs on the machine, with s1.. and h1.., is never touched), the
topology metadata the controller is given for it, and percentiles.

    net = BenchNet("fsb", "fb", dp_base=0xB0, subnet=98)
    topo = net.topo(ring_links(3), n_switches=3, hosts_per_switch=34)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchNet:
    switch_prefix: str          # bridges are <switch_prefix>1.. (an OVS bridge name: keep it short)
    host_prefix: str            # hosts are <host_prefix>1..
    dp_base: int                # switch k has dp_id dp_base + k
    subnet: int                 # hosts are 10.<subnet>.0.0/16

    def switch_name(self, k: int) -> str:
        return f"{self.switch_prefix}{k}"

    def dp_id(self, k: int) -> int:
        return self.dp_base + k

    def host_name(self, n: int) -> str:
        return f"{self.host_prefix}{n}"

    def host_ip(self, n: int) -> str:
        return f"10.{self.subnet}.{n >> 8}.{n & 0xff}"

    def host_mac(self, n: int) -> str:
        return f"02:{self.subnet:02x}:00:00:{n >> 8:02x}:{n & 0xff:02x}"

    def topo(self, links: list[tuple[int, int]], n_switches: int, hosts_per_switch: int):
        """A Mininet Topo: switches 1..n_switches, their hosts first (ports 1.. face
        hosts, numbered across switches), then ``links`` between switch numbers."""
        from mininet.topo import Topo

        topo = Topo()
        n = 0
        for k in range(1, n_switches + 1):
            topo.addSwitch(self.switch_name(k), dpid=f"{self.dp_id(k):016x}", protocols="OpenFlow13")
            for _ in range(hosts_per_switch):
                n += 1
                topo.addHost(self.host_name(n), ip=f"{self.host_ip(n)}/16", mac=self.host_mac(n))
                topo.addLink(self.host_name(n), self.switch_name(k))
        for a, b in links:
            topo.addLink(self.switch_name(a), self.switch_name(b))
        return topo

    def metadata(self, links: list[tuple[int, int]], n_switches: int, capacity_mbps: float = 1000.0) -> dict:
        """The controller config's ``topology`` section for this network."""
        return {"switches": [{"dp_id": self.dp_id(k), "name": self.switch_name(k)}
                             for k in range(1, n_switches + 1)],
                "links": [{"a": self.dp_id(a), "b": self.dp_id(b), "capacity_mbps": capacity_mbps}
                          for a, b in links]}


def ring_links(n_switches: int) -> list[tuple[int, int]]:
    pairs = {tuple(sorted((a, a % n_switches + 1))) for a in range(1, n_switches + 1)}
    return sorted(p for p in pairs if p[0] != p[1])


def mesh_links(n_switches: int) -> list[tuple[int, int]]:
    """A ring, plus a chord from every other switch to the one opposite (n >= 6)."""
    pairs = set(ring_links(n_switches))
    if n_switches >= 6:
        for a in range(1, n_switches // 2 + 1, 2):
            pairs.add((a, a + n_switches // 2))
    return sorted(pairs)


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q``th percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
