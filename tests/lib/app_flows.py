"""Every app's flows on a fake network, as the controller would install them: the QoS,
TE and slices apps added as providers to a started ``FakeNetwork``, every host pair's
first packets sent both ways (so the core's paths are in), one slice created. Shared
by the verifier's tests and its benchmark."""

from __future__ import annotations

from apps.qos import app as qos_app
from apps.slices.manager import SliceManager
from apps.te.config import TeConfig
from apps.te.engineer import TrafficEngineer
from tests.lib.fakeoftable import FakeNetwork, ipv4_frame


def install_apps(net: FakeNetwork, apps=("qos", "te", "slices"), members: list[str] | None = None,
                 clock=lambda: 1000.0) -> FakeNetwork:
    """``apps`` on ``net`` (QoS needs ``qos`` in the network's config); ``members``: the
    slice pool's hosts (default: every host but the first)."""
    def resync() -> None:
        net.deliver(net.core.resync(net.now))

    if "qos" in apps:
        net.core.add_provider(qos_app.provider(net.core.view, resync))
    names = sorted(net.hosts)
    net.announce(*names)
    for a in names:
        for b in names:
            if a != b:
                net.send(a, ipv4_frame(net.host(a), net.host(b)))
    if "te" in apps:
        te = TrafficEngineer(net.core.view, resync, TeConfig(threshold=0.5), None, wall=lambda: net.now,
                             poll_interval_s=1.0)
        net.core.add_provider(te)
        te.step(net.now)
    if "slices" in apps:
        manager = SliceManager(net.core.view, resync, None, drain_s=30, clock=clock, auto_drain=False)
        net.core.add_provider(manager)
        for name in names[1:] if members is None else members:
            manager.register_member("servers", name, net.host(name).ip)
        manager.create(dict(name="web", client="acme", vip_cidr="10.50.0.0/29", bandwidth_mbps=10,
                            per_member_mbps=5, pool="servers", max_members=2, priority="gold"), members=2)
    resync()
    return net
