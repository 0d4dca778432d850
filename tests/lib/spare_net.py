"""A fake OpenFlow network with a spare link, for the tests of port admin state
(``controller.ports``), the links app and the ``spare_link`` template: s1 - s2 - s3 in
a chain and a spare cabled s1:2 - s3:2, one host per switch on port 3; the core runs
the links app with the spare (state in ``tmp_path``)."""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3_parser as parser

from apps.links.app import LinksApp
from apps.links.config import LinksConfig
from apps.links.store import LinksStore
from controller.core import ControllerCore
from controller.state import StateStore
from tests.lib.fakeoftable import FakeNetwork, config_for, hosts_on, ipv4_frame

CHAIN = [(1, 1, 2, 1), (2, 2, 3, 1)]
SPARE = (1, 2, 3, 2)
LINKS = CHAIN + [SPARE]
HOSTS = (("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3))
SPARES = [{"name": "s1-s3", "a": "s1", "a_port": 2, "b": "s3", "b_port": 2}]


def links_settings(state_path: str = "", spares=None) -> LinksConfig:
    return LinksConfig.model_validate({"spares": SPARES if spares is None else spares,
                                       "state_path": state_path})


def build(tmp_path=None, spares=None, state=None, admin_down=(), start=True, capacities=None) -> FakeNetwork:
    """The network with the links app; ``state``: the core's state file (a restart finds it);
    ``admin_down``: ports someone took down before the controller came; ``capacities``
    ({(a, b): Mbit/s}) the topology metadata's (default: the spare's, 100)."""
    capacities = {(1, 3): 100.0} if capacities is None else capacities
    net = FakeNetwork(LINKS, hosts_on(*HOSTS), config_for(LINKS, capacities=capacities))
    if state is not None:
        store = StateStore(str(state))
        net.core = ControllerCore(net.config, store=store)
        net.core.restore_state(net.now)
    net.admin_down |= set(admin_down)
    for dp, port in admin_down:
        net.up[(dp, port)] = False
        peer = net.peer.get((dp, port))
        if peer is not None:
            net.up[peer] = False
    add_links_app(net, tmp_path, spares)
    if start:
        net.start()
        net.announce(*[h[0] for h in HOSTS])
    return net


def add_links_app(net: FakeNetwork, tmp_path=None, spares=None) -> LinksApp:
    store = LinksStore(str(tmp_path / "links.sqlite")) if tmp_path is not None else None

    def resync():
        net.deliver(net.core.resync(net.now))

    net.links = LinksApp(net.core.view, resync, links_settings(spares=spares), store, wall=lambda: net.now)
    net.core.add_provider(net.links)
    return net.links


def port_mods(net: FakeNetwork, since: int = 0) -> list[tuple[int, int, bool]]:
    """(dp_id, port, down) of every port mod the core sent, from ``net.sent[since:]``."""
    return [(dp, msg.port_no, bool(msg.config)) for dp, msg in net.sent[since:]
            if isinstance(msg, parser.OFPPortMod)]


def spare_links(net: FakeNetwork) -> set[tuple[int, int, int, int]]:
    """The directed links of the topology that are the spare's."""
    ends = {(SPARE[0], SPARE[1]), (SPARE[2], SPARE[3])}
    return {(lk.src_dp, lk.src_port, lk.dst_dp, lk.dst_port) for lk in net.core.topology.links()
            if (lk.src_dp, lk.src_port) in ends}


def route(net: FakeNetwork, src: str, dst: str) -> list[int]:
    """The switches a frame from ``src`` to ``dst`` crosses once the pair has a path (the
    first frame of a pair asks the controller for one)."""
    net.send(src, ipv4_frame(net.host(src), net.host(dst)))
    return net.trace(src, dst)
