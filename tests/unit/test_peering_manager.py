"""The peering app through the core and a fake edge switch: sessions brought up by the
plan, routes learned, groups steered (frames judged by where they leave), failover
when a session drops, a max-prefix teardown, the speaker going away and coming back,
and a restart that loses nothing. The speaker is ``tests.lib.fakebgp``; the real
daemons are exercised in tests/integration/test_bgp.py and the peering lab."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from os_ken.lib.packet.ether_types import ETH_TYPE_IP

from apps.peering import dataplane
from apps.peering.gobgp import GoBgpUnavailable
from apps.peering.manager import InvalidRequest, PeeringManager, Refused, UnknownNeighbour
from apps.peering.store import PeeringStore
from tests.lib.peering_edge import ROUTER, Predictor, make_app, make_net, settings_for


@pytest.fixture
def net():
    return make_net()


_app = make_app

def _exit_of(net, ip: str) -> list[str]:
    src = net.hosts["src"]
    walk = net.walk(
        1,
        src.port_no,
        {
            "eth_src": src.mac,
            "eth_dst": ROUTER,
            "eth_type": ETH_TYPE_IP,
            "ipv4_src": src.ip,
            "ipv4_dst": ip,
            "ip_proto": 17,
        },
    )
    return walk.delivered


def _traffic(app, net, mbps: dict[str, float], seconds: float = 1.0) -> None:
    """Group counters as the switch would report them ``seconds`` later at these rates."""
    for group in mbps:
        gid = dataplane.group_id(app.numbers[group])
        c = app._counters.get(gid)
        if c is None:
            app.group_stats(1, [SimpleNamespace(group_id=gid, byte_count=0)], net.now)
            app._measure(net.now)
    net.now += seconds
    for group, rate in mbps.items():
        gid = dataplane.group_id(app.numbers[group])
        c = app._counters[gid]
        app.group_stats(
            1, [SimpleNamespace(group_id=gid, byte_count=c.bytes + int(rate * 1e6 / 8 * seconds))], net.now
        )


def test_plain_bgp_brings_every_session_up_and_steers_on_the_shortest_as_path(net):
    app, speaker = _app(net, "plain_bgp")
    assert {n: s.state for n, s in app.sessions.items()} == {"transit": "ESTABLISHED", "west": "ESTABLISHED"}
    app.plan(0.0, "test")
    assert _exit_of(net, "100.64.0.9") == ["west"]  # west's path is shorter
    assert _exit_of(net, "100.64.8.9") == ["transit"]  # only transit reaches it
    assert _exit_of(net, "198.51.100.1") == []  # no route: dropped


def test_predictive_requests_a_peer_before_transit_would_overload_and_steers_once_its_routes_arrive(net):
    predictor = Predictor({"as64600": 9.0, "as64601": 3.0})  # 12 Mbit/s: over transit's 8.5 (85 %)
    app, speaker = _app(net, "predictive", predictor)
    assert app.sessions["west"].state == "CANDIDATE"
    assert _exit_of(net, "100.64.0.9") == ["transit"]
    _traffic(app, net, {"as64600": 4.0, "as64601": 2.0})
    decision = app.step(net.now)
    assert "west" in decision.bring_up
    assert app.sessions["west"].state == "CONNECTING"
    assert app.sessions["west"].sla.committed_mbps > 0
    assert _exit_of(net, "100.64.0.9") == ["transit"]  # nothing steered to it before its routes
    speaker.pump(app)  # established, then its routes
    assert app.sessions["west"].state == "ESTABLISHED"
    app.plan(app.clock.virtual(net.now), "routes learned")
    assert _exit_of(net, "100.64.0.9") == ["west"]
    assert _exit_of(net, "100.64.8.9") == ["transit"]
    kinds = [d.kind for d in app.decisions]
    assert "bring_up" in kinds and "steer" in kinds
    bring_up = next(d for d in app.decisions if d.kind == "bring_up")
    assert bring_up.numbers["overload_before_mbps"] > 0
    assert any(s[0] == "peering:as64600" for s in predictor.ingested)
    candidates = {c["name"]: c for c in app.candidates}
    assert candidates["west"]["carried_mbps"] > 0


def test_a_dropped_session_fails_its_groups_over_to_transit_and_says_why(net):
    app, speaker = _app(net, "plain_bgp")
    app.plan(0.0, "test")
    assert _exit_of(net, "100.64.0.9") == ["west"]
    speaker.drop("10.100.0.3")
    speaker.pump(app)
    assert app.sessions["west"].state == "DOWN" and app.sessions["west"].drops == 1
    assert _exit_of(net, "100.64.0.9") == ["transit"]
    failover = [d for d in app.decisions if d.kind == "failover"]
    assert failover and "session dropped" in failover[-1].detail
    assert app.failovers


def test_a_neighbour_over_its_max_prefix_limit_is_torn_down_and_its_traffic_stays_on_transit(net):
    app, speaker = _app(net, "plain_bgp")
    app.plan(0.0, "test")
    speaker.flood("10.100.0.3", [(f"100.65.{i}.0/24", (64501, 64700)) for i in range(10)])
    speaker.pump(app)
    assert app.sessions["west"].state == "TORN_DOWN", app.sessions["west"].detail
    assert "10.100.0.3" not in speaker.peers_  # no retry into the same flood
    assert _exit_of(net, "100.64.0.9") == ["transit"]
    assert _exit_of(net, "100.65.3.9") == []
    app.plan(0.0, "test")  # the plan does not ask for it again
    assert app.sessions["west"].state == "TORN_DOWN"


def test_the_speaker_going_away_degrades_the_app_but_keeps_the_switch_and_a_return_resyncs(net):
    app, speaker = _app(net, "plain_bgp")
    app.plan(0.0, "test")
    speaker.reachable = False
    with pytest.raises(GoBgpUnavailable):
        app._connect()
    app._set_degraded("BGP speaker at unix:/fake: not reachable")
    app.plan(0.0, "test")  # planning goes on with what it knows
    assert app.degraded and _exit_of(net, "100.64.0.9") == ["west"]
    speaker.reachable = True
    speaker.peers_.clear()  # it restarted empty
    speaker.state.clear()
    app._connect()
    speaker.pump(app)
    assert not app.degraded and set(speaker.peers_) == {"10.100.0.2", "10.100.0.3"}
    assert any(d.kind == "resync" for d in app.decisions)


def test_a_restart_restores_sessions_overrides_and_plan_without_churning_the_switch(net, tmp_path):
    store = PeeringStore(str(tmp_path / "peering.sqlite"))
    app, speaker = _app(net, "plain_bgp", store=store)
    app.plan(0.0, "test")
    app.establish("west")
    before = net.core.desired(1, net.now)
    flows_before = len(net.switches[1].flows())
    app.close()
    net.core.providers.pop(app.name, None)
    again = PeeringManager(
        net.core.view,
        lambda: net.deliver(net.core.resync(net.now)),
        settings_for("plain_bgp"),
        speaker,
        None,
        PeeringStore(str(tmp_path / "peering.sqlite")),
        wall=lambda: net.now,
    )
    assert again.sessions["west"].override == "up" and again.sessions["west"].state == "ESTABLISHED"
    assert again.assignment == app.assignment and again.numbers == app.numbers
    net.core.add_provider(again)
    again._connect()
    speaker.pump(again)
    assert net.core.desired(1, net.now) == before
    assert len(net.switches[1].flows()) == flows_before
    assert _exit_of(net, "100.64.0.9") == ["west"]


def test_operator_overrides_and_their_refusals_name_what_is_wrong(net):
    app, speaker = _app(net, "predictive", Predictor({}))
    with pytest.raises(UnknownNeighbour, match="'north'"):
        app.establish("north")
    with pytest.raises(InvalidRequest, match="name"):
        app.withdraw("")
    with pytest.raises(Refused, match="only transit"):
        app.withdraw("transit")
    assert app.establish("west").override == "up"
    speaker.pump(app)
    assert app.sessions["west"].state == "ESTABLISHED"
    app.withdraw("west")
    assert app.sessions["west"].state == "CANDIDATE" and "10.100.0.3" not in speaker.peers_
    assert app.release("west").override == "none"


def test_a_started_app_gathers_route_updates_into_one_resync_and_stays_healthy(net):
    """Once started, routes arriving an UPDATE at a time are programmed in one resync
    a moment later (the speaker loop must not fail on them)."""
    app, speaker = make_app(net, "plain_bgp")
    app._started = True             # start() without its threads: the batching path
    speaker.flood("10.100.0.2", [("100.64.9.0/24", (64500, 64999, 64601))])
    speaker.flood("10.100.0.2", [("100.64.10.0/24", (64500, 64999, 64601))])
    assert speaker.pump(app) == 2
    deadline = time.monotonic() + 5.0
    while _exit_of(net, "100.64.10.9") != ["transit"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _exit_of(net, "100.64.9.9") == ["transit"] and _exit_of(net, "100.64.10.9") == ["transit"]
    assert not app.degraded
