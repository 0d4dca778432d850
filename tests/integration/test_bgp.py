"""GoBGP (our speaker, driven through ``apps.peering.gobgp``) against an FRR provider
router, both real daemons, each in its own network namespace joined by a veth pair.

Needs root. Every test gets namespaces with unique names and tears them down (and
every process, by handle) even when it fails. GoBGP listens on 179 in its namespace so
FRR (connect retry 1 s) opens the session: GoBGP itself dials only every 5-10 s.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.peering.gobgp import (EndOfInit, GoBgp, GoBgpError, GoBgpUnavailable, PeerEvent, PeerSpec,
                                RouteEvent)
from topologies.bgp import FrrRouter, GoBgpDaemon, netns_spawn

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.geteuid() != 0 or shutil.which("gobgpd") is None
                                or not Path("/usr/lib/frr/bgpd").exists(),
                                reason="needs root, gobgpd and FRR")]

OUR_ASN, PROVIDER_ASN = 65000, 65001
_SEQ = itertools.count()


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, step_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


@dataclass
class Lab:
    ours: str            # our namespace (gobgpd)
    provider: str        # the provider's namespace (FRR)
    our_ip: str
    provider_ip: str
    base: Path
    daemon: GoBgpDaemon
    client: GoBgp
    routers: list

    def frr(self, prefixes, hold_s: int = 9) -> FrrRouter:
        router = FrrRouter(f"prov{self.base.name[-6:]}", self.base / "frr", netns_spawn(self.provider),
                           PROVIDER_ASN, self.provider_ip, [(self.our_ip, OUR_ASN)], prefixes,
                           hold_s=hold_s, keepalive_s=max(1, hold_s // 3))
        self.routers.append(router)
        return router.start()

    def spec(self, **kw) -> PeerSpec:
        return PeerSpec(address=self.provider_ip, asn=PROVIDER_ASN, description="provider", **kw)


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@pytest.fixture
def lab():
    n = next(_SEQ)
    tag = f"{os.getpid() % 10000}{n}"
    ours, provider = f"fbgpA{tag}", f"fbgpB{tag}"
    veth_a, veth_b = f"fbA{tag}", f"fbB{tag}"
    subnet = (os.getpid() * 7 + n) % 250 + 1
    our_ip, provider_ip = f"10.252.{subnet}.1", f"10.252.{subnet}.2"
    base = Path(tempfile.mkdtemp(prefix="fbgp-"))
    base.chmod(0o755)               # bgpd runs as frr and must reach its run dir
    created: list[str] = []
    daemon = None
    client = None
    routers: list[FrrRouter] = []
    try:
        for ns in (ours, provider):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        _ip("link", "set", veth_a, "netns", ours)
        _ip("link", "set", veth_b, "netns", provider)
        for ns, dev, addr in ((ours, veth_a, our_ip), (provider, veth_b, provider_ip)):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        daemon = GoBgpDaemon(base / "gobgp", netns_spawn(ours), api_port=50051,
                             socket_path=base / "gobgp.sock").start()
        client = GoBgp(daemon.target)
        client.start(OUR_ASN, our_ip, listen_port=179)
        yield Lab(ours, provider, our_ip, provider_ip, base, daemon, client, routers)
    finally:
        if client is not None:
            client.close()
        for router in routers:
            router.stop()
        if daemon is not None:
            daemon.stop()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", veth_a], capture_output=True)   # if never moved
        shutil.rmtree(base, ignore_errors=True)


def established(lab: Lab) -> bool:
    peer = lab.client.peer(lab.provider_ip)
    return peer is not None and peer.established


def test_session_reaches_established(lab):
    router = lab.frr([("100.64.0.0/24", ())])
    assert lab.client.add_peer(lab.spec()) is True
    assert lab.client.add_peer(lab.spec()) is False        # same spec: no-op
    wait_for(lambda: established(lab), 20, "GoBGP to see the session established")
    wait_for(lambda: router.established(lab.our_ip), 5, "FRR to see the session established")
    peer = lab.client.peer(lab.provider_ip)
    assert (peer.asn, peer.admin_down, peer.description) == (PROVIDER_ASN, False, "provider")
    assert lab.client.global_config()[:2] == (OUR_ASN, lab.our_ip)
    lab.client.start(OUR_ASN, lab.our_ip, listen_port=179)  # same: no-op
    with pytest.raises(GoBgpError, match="65000.*65009"):
        lab.client.start(65009, lab.our_ip)
    route = wait_for(lambda: lab.client.routes(lab.provider_ip), 10, "the route")
    assert route[0].prefix == "100.64.0.0/24" and route[0].as_path == (PROVIDER_ASN,)
    assert route[0].next_hop == lab.provider_ip


def test_learns_1000_prefixes_with_their_as_paths_and_withdrawals(lab):
    # 100 distinct AS paths of 1-3 hops over 1,000 prefixes: FRR 8.4 needs one route-map
    # per path, and with 1,000 route-maps its bgpd spun at 100 % CPU for minutes.
    count = 1000
    paths = [tuple(4200000000 + k + j for j in range(1 + k % 3)) for k in range(100)]
    expected = {f"100.{64 + i // 256}.{i % 256}.0/24": (PROVIDER_ASN, *paths[i % 100]) for i in range(count)}
    router = lab.frr([(p, path[1:]) for p, path in expected.items()])
    watch = lab.client.watch()
    seen: dict[str, tuple[int, ...]] = {}
    peer_states: list[str] = []
    try:
        events = iter(watch)
        lab.client.add_peer(lab.spec())
        t_established = None
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            event = next(events)
            if isinstance(event, PeerEvent) and event.address == lab.provider_ip:
                peer_states.append(event.state)
                if event.state == "established":
                    t_established = time.monotonic()
            elif isinstance(event, RouteEvent):
                for route in event.routes:
                    assert route.neighbour == lab.provider_ip and not route.withdrawn
                    seen[route.prefix] = route.as_path
        learn_s = time.monotonic() - t_established
        assert seen == expected
        assert "established" in peer_states
        assert learn_s < 10

        rib_in = lab.client.routes(lab.provider_ip)
        assert {r.prefix: r.as_path for r in rib_in} == expected
        assert {r.prefix: r.as_path for r in lab.client.routes()} == expected
        assert lab.client.peer(lab.provider_ip).received == count

        gone = sorted(expected)[:10]
        router.withdraw(gone)
        withdrawn: set[str] = set()
        while withdrawn != set(gone):
            event = next(events)
            if isinstance(event, RouteEvent):
                withdrawn |= {r.prefix for r in event.routes if r.withdrawn}
        assert withdrawn == set(gone)
        left = {r.prefix for r in lab.client.routes(lab.provider_ip)}
        assert left == set(expected) - set(gone)

        router.announce([(gone[0], (64999,))])                 # back, with a new AS path
        while True:
            event = next(events)
            if isinstance(event, RouteEvent) and any(r.prefix == gone[0] for r in event.routes):
                (route,) = [r for r in event.routes if r.prefix == gone[0]]
                assert route.as_path == (PROVIDER_ASN, 64999) and not route.withdrawn
                break
    finally:
        watch.cancel()


def test_watch_init_reports_existing_peers_and_routes(lab):
    lab.frr([("100.66.0.0/24", (64800,)), ("100.66.1.0/24", ())])
    lab.client.add_peer(lab.spec())
    wait_for(lambda: len(lab.client.routes(lab.provider_ip)) == 2, 20, "both routes")
    with lab.client.watch() as watch:
        events = iter(watch)
        init = []
        while not any(isinstance(e, EndOfInit) for e in init):
            init.append(next(events))
        assert [(e.address, e.state, e.init) for e in init if isinstance(e, PeerEvent)] == [
            (lab.provider_ip, "established", True)]
        routes = {}
        while len(routes) < 2:
            event = next(events)
            if isinstance(event, RouteEvent):
                routes.update({r.prefix: r.as_path for r in event.routes})
        assert routes == {"100.66.0.0/24": (PROVIDER_ASN, 64800), "100.66.1.0/24": (PROVIDER_ASN,)}
    assert list(watch) == []                                  # cancelled: ends quietly


def test_max_prefixes_tears_the_session_down(lab):
    router = lab.frr([(f"100.65.{i}.0/24", ()) for i in range(50)])
    lab.client.add_peer(lab.spec(max_prefixes=100))
    wait_for(lambda: len(lab.client.routes(lab.provider_ip)) == 50, 20, "50 routes under the limit")
    assert lab.client.peer(lab.provider_ip).notifications_sent == 0

    router.announce([(f"100.65.{i}.0/24", ()) for i in range(50, 150)])
    peer = wait_for(lambda: (p := lab.client.peer(lab.provider_ip)) and p.notifications_sent >= 1 and p,
                    15, "GoBGP to send the CEASE (max prefixes) notification")
    assert not peer.established
    assert (peer.admin_state, peer.admin_down) == ("pfx_ct", True)
    assert lab.client.routes(lab.provider_ip) == []
    assert lab.client.routes() == []
    # The peer stays down (pfx_ct) until it is re-added or reset.
    time.sleep(3)
    assert not established(lab)
    assert not router.established(lab.our_ip)

    lab.client.add_peer(lab.spec(max_prefixes=1000))        # a changed spec re-adds the peer
    wait_for(lambda: len(lab.client.routes(lab.provider_ip)) == 150, 20, "150 routes under the new limit")


def test_gobgpd_killed_then_restarted(lab):
    lab.frr([("100.67.0.0/24", ())])
    lab.client.add_peer(lab.spec())
    wait_for(lambda: established(lab), 20, "the session")
    lab.daemon.kill()
    with pytest.raises(GoBgpUnavailable, match=str(lab.daemon.target)):
        lab.client.peers()
    with pytest.raises(GoBgpUnavailable, match=str(lab.daemon.target)):
        lab.client.start(OUR_ASN, lab.our_ip)

    lab.daemon.start()
    lab.client.wait_ready(10)
    assert lab.client.global_config()[0] == 0               # a fresh daemon: not started
    lab.client.start(OUR_ASN, lab.our_ip, listen_port=179)
    assert lab.client.add_peer(lab.spec()) is True
    wait_for(lambda: established(lab), 20, "the session again")
    wait_for(lambda: lab.client.routes(lab.provider_ip), 10, "the route again")


def test_bad_input_names_the_field(lab):
    with pytest.raises(ValueError, match="address"):
        lab.client.add_peer(PeerSpec(address="not-an-address", asn=PROVIDER_ASN))
    with pytest.raises(ValueError, match="asn"):
        lab.client.add_peer(PeerSpec(address=lab.provider_ip, asn=0))
    with pytest.raises(ValueError, match="hold_s"):
        PeerSpec(address=lab.provider_ip, asn=PROVIDER_ASN, hold_s=2)
    with pytest.raises(ValueError, match="router_id"):
        lab.client.start(OUR_ASN, "bogus")
    with pytest.raises(ValueError, match="address"):
        lab.client.delete_peer("bogus")
    assert lab.client.delete_peer("10.9.9.9") is False       # missing: no-op
    assert lab.client.peers() == []


def test_delete_peer_removes_its_routes(lab):
    lab.frr([("100.68.0.0/24", ())])
    lab.client.add_peer(lab.spec())
    wait_for(lambda: lab.client.routes(), 20, "the route")
    assert lab.client.delete_peer(lab.provider_ip) is True
    assert lab.client.peers() == []
    assert lab.client.routes() == []


def test_unavailable_target_is_named():
    client = GoBgp("unix:/tmp/fbgp-nothing-here.sock", timeout_s=1.0)
    try:
        with pytest.raises(GoBgpUnavailable, match="unix:/tmp/fbgp-nothing-here.sock"):
            client.peers()
    finally:
        client.close()
