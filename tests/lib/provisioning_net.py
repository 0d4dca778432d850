"""A fake OpenFlow network for the provisioning app's tests: a ring of four switches, the
core with the slices app (two slices) and the provisioning app as providers, two
tenants, the seeded faulty templates loaded. Forecasts are given as quantile points."""

from __future__ import annotations

from apps.provisioning.app import ProvisioningApp
from apps.provisioning.config import ProvisioningConfig
from apps.provisioning.needs import Point
from apps.provisioning.store import ProvisioningStore
from apps.qos.app import provider as qos_provider
from apps.qos.config import QosConfig
from apps.slices import dataplane as slices_dp
from apps.slices.manager import SliceManager
from apps.te.config import TeConfig
from apps.te.engineer import TrafficEngineer
from tests.lib.fakeoftable import FakeNetwork, config_for, hosts_on, ipv4_frame

# s1 - s2 - s3 - s4 - s1 (a ring), host c1 on s1, m1 and m2 on s2, x1 on s3 (another tenant), m3 on s4.
RING = [(1, 1, 2, 1), (2, 2, 3, 1), (3, 2, 4, 1), (4, 2, 1, 2)]
HOSTS = (("c1", 1, 3), ("m1", 2, 3), ("m2", 2, 4), ("x1", 3, 3), ("m3", 4, 3))
QUANTILES = (0.1, 0.5, 0.9, 0.95)


class Clock:
    now = 10_000.0

    def __call__(self):
        return self.now


def forecast(mbps: dict[float, float], spread: float = 0.1) -> list[Point]:
    """Points at each horizon: median ``mbps[h]``, quantiles +- ``spread`` per z-unit."""
    z = {0.1: -1.2816, 0.5: 0.0, 0.9: 1.2816, 0.95: 1.6449}
    return [
        Point(h, m, tuple((q, m * (1 + spread * z[q])) for q in QUANTILES), "test") for h, m in mbps.items()
    ]


def build(
    tmp_path, store_path=None, bundles=False, predictor=None, te=False, capacities=None, qos=None, **settings
) -> FakeNetwork:
    """``capacities`` ({(a, b): Mbit/s}) go into the topology metadata (those links become
    resources); ``qos`` (a ``qos`` config section) adds the QoS app."""
    hosts = hosts_on(*HOSTS)
    config = config_for(RING, capacities, bundles=bundles)
    if qos is not None:
        config = config.model_copy(update={"qos": QosConfig.model_validate(qos)})
    net = FakeNetwork(RING, hosts, config).start()
    net.clock = Clock()

    def resync():
        net.deliver(net.core.resync(net.now))

    if qos is not None:
        net.qos = qos_provider(net.core.view, resync)
        net.core.add_provider(net.qos)
    net.slices = SliceManager(net.core.view, resync, None, drain_s=0, clock=net.clock, auto_drain=False)
    net.core.add_provider(net.slices)
    for name in ("m1", "m2", "m3"):
        net.slices.register_member("servers", name, net.host(name).ip)
    if te:  # traffic engineering, for its reroute-threshold knob
        net.te = TrafficEngineer(
            net.core.view, resync, TeConfig(threshold=0.8), None, wall=lambda: net.now, poll_interval_s=1.0
        )
        net.core.add_provider(net.te)
    names = [h[0] for h in HOSTS]
    net.announce(*names)
    tenant_a = ("c1", "m1", "m2", "m3")
    for a in tenant_a:
        for b in tenant_a:
            if a != b:
                net.send(a, ipv4_frame(net.host(a), net.host(b)))
    for spec in (
        dict(name="web", bandwidth_mbps=10, vip_cidr="10.50.0.0/29"),
        dict(name="api", bandwidth_mbps=20, vip_cidr="10.50.1.0/29"),
    ):
        net.slices.create(
            dict(spec, client="acme", per_member_mbps=5, pool="servers", max_members=2, priority="gold"),
            members=1,
        )
    macs = {h[0]: net.host(h[0]).mac for h in HOSTS}
    config = ProvisioningConfig.model_validate(
        dict(
            dict(
                store_path="",
                isolate=[[macs[n] for n in tenant_a], [macs["x1"]]],
                template_modules=["labs.provisioning_faults"],
            ),
            **settings,
        )
    )
    store = ProvisioningStore(str(store_path or tmp_path / "prov.sqlite"))
    net.app = ProvisioningApp(net.core.view, resync, config, store, predictor=predictor, wall=net.clock)
    net.core.add_provider(net.app)
    net.engine = net.app.engine
    net.macs = macs
    resync()
    net.clear_inboxes()
    return net


def pair(net, src="c1", dst="m3", **params) -> dict:
    """od_path parameters for hosts named in the test (the API takes MACs or IPv4 addresses)."""
    return dict(src=net.host(src).mac, dst=net.host(dst).ip, **params)


def meter_rate_kbps(net, dp, slice_name) -> int:
    meter = slices_dp.ids(net.slices.get(slice_name).index).meter_in
    return net.switches[dp].meter_rate_kbps(meter)


def delivered(net, src, dst) -> list[str]:
    """Who receives one IPv4 frame ``src`` sends to ``dst``."""
    net.clear_inboxes()
    net.send(src, ipv4_frame(net.host(src), net.host(dst)))
    return sorted(name for name in net.hosts if net.inbox(name, 0x0800))
