"""Three fake stitching sites for unit tests: advertised hosts and planes (``_ad``),
and ``Env``: a stitch manager over them whose site switches are built from its
``desired`` and confirm everything at once (test_barriers covers confirmation)."""

from __future__ import annotations

from types import SimpleNamespace

from apps.stitching.config import StitchingConfig
from apps.stitching.manager import StitchManager
from apps.stitching.registry import AdHost, Advertisement, Plane
from apps.stitching.store import StitchStore
from controller import flows, meters
from controller.core import pipeline_flows
from controller.flows import ETH_TYPE_IP
from controller.topology import Port
from tests.lib.fakeswitch import FakeOFTable

A1 = AdHost("a-h1", "02:00:00:0a:01:01", "10.60.1.1", 100, "acme")
A3 = AdHost("a-h3", "02:00:00:0a:01:03", "10.60.1.3", 101, "acme")
B1 = AdHost("b-h1", "02:00:00:0b:02:01", "10.60.2.1", 200, "acme")
C1 = AdHost("c-h1", "02:00:00:0c:03:01", "10.60.3.1", 300, "globex")
HOSTS = {"a": (A1, A3), "b": (B1,), "c": (C1,)}
DP = {"a": 0x5101, "b": 0x5102, "c": 0x5103}
POLICY = [{"name": "acme-100-200", "tenant": "acme", "between": [100, 200], "max_mbps": 30},
          {"name": "secret", "tenant": "acme", "between": [101, 200], "encrypt": True},
          {"name": "future", "tenant": "acme", "between": [100, 999]}]


def _ad(site, up=(True, True), free=(40.0, 40.0), tunnels=()):
    planes = tuple(Plane(p, f"10.10{p}.0.{list(DP).index(site) + 1}", up[p - 1], free[p - 1], float(p))
                   for p in (1, 2))
    return Advertisement(site, DP[site], HOSTS[site], planes, tunnels=tuple(tunnels))


class Env:
    def __init__(self, store_path=None, advertise=True, cls=StitchManager, **stitching):
        ports = {dp: {1: Port(1, "vxlan"), **{i + 2: Port(i + 2, h.name) for i, h in enumerate(HOSTS[s])},
                      9: Port(9, "vxe-st-0")} for s, dp in DP.items()}
        # Switches that confirm everything at once (test_barriers covers confirmation).
        self.ports = ports
        self.core = SimpleNamespace(port_numbers=lambda dp: {p.name: n for n, p in ports.get(dp, {}).items()},
                                    sync_mark=lambda: {}, unconfirmed=lambda mark: [],
                                    refusals=lambda mark: list(self.refused))
        self.refused: list[str] = []
        self.resyncs = 0
        self.now = 100.0
        settings = StitchingConfig.model_validate({"policy": POLICY, **stitching})
        self.store = StitchStore(store_path) if store_path else None
        self.m = cls(self.core, self._resync, settings, self.store, clock=lambda: self.now)
        self.events = self.m.bus.subscribe()
        for site in DP if advertise else ():
            self.m.advertise(_ad(site), self.now)

    def _resync(self):
        self.resyncs += 1

    def kinds(self):
        out = []
        while not self.events.events.empty():
            out.append(self.events.events.get_nowait().kind)
        return out

    def switch(self, site):
        switch = FakeOFTable(DP[site])
        entries = self.m.desired(DP[site], self.now)
        switch.apply_all(meters.to_add(m) for m in entries.meters)
        switch.apply_all(flows.to_flowmod(s) for s in (*pipeline_flows(), *entries.flows))
        return switch

    def send(self, src_site, src, dst):
        """Egresses at the far site of a frame src -> dst (one tunnel crossing), and the tunnel headers."""
        port = self.ports[DP[src_site]]
        in_port = next(n for n, p in port.items() if p.name == src.name)
        out = self.switch(src_site).process({"in_port": in_port, "eth_src": src.mac, "eth_dst": dst.mac,
                                             "eth_type": ETH_TYPE_IP})
        tun = [e for e in out if e.port in (1, 9)]
        if not tun:
            return None, [e.port for e in out]
        h = tun[0].headers
        far = next(s for s, hosts in HOSTS.items() if dst in hosts)
        arrived = {"in_port": tun[0].port, "eth_src": src.mac, "eth_dst": dst.mac, "eth_type": ETH_TYPE_IP}
        if "tunnel_id" in h:
            arrived["tunnel_id"] = h["tunnel_id"]
        return h, self.switch(far).lookup(arrived)
