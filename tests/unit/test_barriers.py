"""Confirmation of syncs by barrier replies (controller.core: SyncBarrier, sync_mark,
wait_confirmed), through a FakeNetwork whose switches hold each SyncBarrier until
the test answers it, as a switch answers once it has processed what came before."""

from __future__ import annotations

import threading
import time

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from tests.lib import fakeoftable
from controller import core, flows, forwarding
from controller.config import RoutingConfig
from controller.core import SwitchLost, SyncBarrier
from tests.lib.fakeoftable import TRIANGLE_LINKS, config_for, hosts_on, ipv4_frame

DRAIN_S = RoutingConfig().drain_s       # the default: these switches drain like real ones


class BarrierNet(fakeoftable.FakeNetwork):
    """A triangle whose switches answer SyncBarriers only when ``answer`` says so.
    Without fast failover, so a pair's flows go to the switches of its path alone."""

    ANSWER_BARRIERS = False

    def __init__(self, drain_s: float = DRAIN_S):
        self.held: list[tuple[int, int]] = []           # (dp_id, generation) not answered yet
        super().__init__(TRIANGLE_LINKS, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                         config_for(TRIANGLE_LINKS, fast_failover=False, drain_s=drain_s))

    def _handle(self, dp_id, msg):
        super()._handle(dp_id, msg)
        if isinstance(msg, SyncBarrier):
            self.held.append((dp_id, msg.generation))

    def answer(self, *dp_ids: int) -> None:
        """Reply to the held barriers of these switches (all switches if none given)."""
        pending, self.held = self.held, []
        keep = []
        for dp_id, generation in pending:
            if dp_ids and dp_id not in dp_ids:
                keep.append((dp_id, generation))
            elif dp_id in self.connected:
                # A reply may release held deletions, closed by barriers held in turn.
                self.deliver(self.core.barrier_replied(dp_id, generation, self.now))
        self.held = keep + self.held

    def settle(self) -> None:
        """Answer until nothing is held: each step (additions, flow changes, deletions)
        is sent once the one before is confirmed, with barriers of its own; the
        deletions once the drain after the flow changes is over, too."""
        while True:
            while self.held:
                self.answer()
            if not any(state.holding for state in self.core.switches.values()):
                return
            self.run(self.core.config.controller.routing.drain_s)


@pytest.fixture
def net():
    network = BarrierNet().start()
    network.announce("h1", "h2", "h3")
    network.settle()
    return network


def _ping(net, src, dst):
    net.send(src, ipv4_frame(net.host(src), net.host(dst)))


def test_every_switch_that_gets_messages_gets_a_closing_barrier(net):
    sent = len(net.sent)
    _ping(net, "h1", "h3")                      # path flows on s1 and s3 only
    by_dp: dict[int, list] = {}
    for dp_id, msg in net.sent[sent:]:
        by_dp.setdefault(dp_id, []).append(msg)
    flows_to = {dp for dp, msgs in by_dp.items() if any(isinstance(m, parser.OFPFlowMod) for m in msgs)}
    assert flows_to == {1, 3}
    closing = {dp: [m for m in msgs if isinstance(m, SyncBarrier)] for dp, msgs in by_dp.items()}
    assert {dp for dp, barriers in closing.items() if barriers} == {1, 3}
    for dp in (1, 3):
        (barrier,) = closing[dp]
        last_mod = max(i for i, m in enumerate(by_dp[dp]) if isinstance(m, parser.OFPFlowMod))
        assert by_dp[dp].index(barrier) > last_mod          # after every change it confirms
    assert closing[1][0].generation == closing[3][0].generation   # one sync, one generation


def test_generation_is_confirmed_by_the_reply_of_each_switch(net):
    _ping(net, "h1", "h3")
    mark = net.core.sync_mark()
    assert set(mark) == {1, 2, 3}
    assert net.core.unconfirmed(mark) == [1, 3]
    assert not net.core.wait_confirmed(mark, 0.0)
    replies = net.core.counters["barrier_replies"]
    net.answer(1)
    assert net.core.unconfirmed(mark) == [3]
    net.answer(3)
    assert net.core.unconfirmed(mark) == []
    assert net.core.wait_confirmed(mark, 0.0)
    assert net.core.counters["barrier_replies"] == replies + 2


def test_reply_to_an_earlier_sync_does_not_confirm_a_later_one(net):
    _ping(net, "h1", "h3")
    first = net.core.sync_mark()
    _ping(net, "h3", "h1")
    second = net.core.sync_mark()
    assert second[1] > first[1]
    net.core.barrier_replied(1, first[1], net.now)      # s1 answers the first sync only
    assert net.core.unconfirmed(first) == [3]
    assert net.core.unconfirmed(second) == [1, 3]


def test_switch_with_nothing_pending_is_satisfied_at_once(net):
    mark = net.core.sync_mark()
    assert net.held == []
    started = time.monotonic()
    assert net.core.wait_confirmed(mark, 5.0)
    assert time.monotonic() - started < 0.5


def test_wait_returns_when_the_reply_comes_from_another_thread(net):
    _ping(net, "h1", "h2")
    mark = net.core.sync_mark()
    timer = threading.Timer(0.2, net.answer)
    timer.start()
    started = time.monotonic()
    try:
        assert net.core.wait_confirmed(mark, 10.0)
    finally:
        timer.join()
    assert 0.15 < time.monotonic() - started < 5.0


def test_wait_times_out_and_names_the_switches_still_due(net):
    _ping(net, "h1", "h3")
    mark = net.core.sync_mark()
    net.answer(3)
    started = time.monotonic()
    assert not net.core.wait_confirmed(mark, 0.3)
    assert 0.25 < time.monotonic() - started < 5.0
    assert net.core.unconfirmed(mark) == [1]
    assert net.core.counters["barrier_waits_timed_out"] == 1


def test_switch_that_disconnects_before_confirming_fails_the_wait_at_once(net):
    _ping(net, "h1", "h3")
    mark = net.core.sync_mark()
    net.answer(1)
    timer = threading.Timer(0.2, net.disconnect, args=(3,))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(SwitchLost, match=r"s3 \(dp 0000000000000003\) disconnected before confirming") \
                as err:
            net.core.wait_confirmed(mark, 30.0)
    finally:
        timer.join()
    assert time.monotonic() - started < 5.0                # not at the timeout
    assert err.value.dp_ids == [3]
    assert net.core.counters["barrier_waits_lost"] == 1


def test_switch_still_reconciling_must_finish_first(net):
    net.disconnect(2)
    net.connected.add(2)
    # Connected, dumps requested, not yet answered: not reconciled.
    requests = net.core.switch_connected(2, net.port_objects(2), net.now)
    mark = net.core.sync_mark()
    assert net.core.unconfirmed(mark) == [2]
    net.deliver(requests)                       # dumps answered: it holds everything already
    assert net.core.wait_confirmed(mark, 0.0)   # the dumps were its confirmation


def test_switch_reconciled_with_changes_confirms_by_its_barrier(net):
    net.disconnect(2)
    net.switches[2].apply(flows.delete_all())   # it lost its tables while away
    net.connected.add(2)
    requests = net.core.switch_connected(2, net.port_objects(2), net.now)
    mark = net.core.sync_mark()
    net.deliver(requests)
    assert net.core.unconfirmed(mark) == [2]
    net.answer(2)
    assert net.core.wait_confirmed(mark, 0.0)


# ---- make before break: deletions wait for the confirmations, then the drain --------------------

def _reroute_back(net) -> int:
    """h1->h2 moves to s1-s3-s2 when s1-s2 fails, then back when it returns; the
    return changes the pair's flow on s1, once the additions that came with it are
    confirmed, and then deletes the one on s3. Returns the index in ``sent`` where
    the return starts, with s1 changed and nothing deleted yet."""
    _ping(net, "h1", "h2")
    net.settle()
    net.link_down(1, 1)
    net.settle()
    assert net.trace("h1", "h2") == [1, 3, 2]
    net.run(0.5)
    net.settle()
    mark = len(net.sent)
    net.set_port(1, 1, True)
    net.set_port(2, 1, True)
    net.run(1.5)                                # LLDP finds s1-s2 again
    assert net.trace("h1", "h2") == [1, 3, 2], "s1 turned the pair before the additions were confirmed"
    net.answer()                                # additions confirmed: s1 turns the pair back
    assert net.trace("h1", "h2") == [1, 2]
    return mark


def _deletes(net, mark):
    """Switches that got a path flow deleted (flood flows change with the tree too)."""
    return [dp for dp, m in net.sent[mark:] if isinstance(m, parser.OFPFlowMod)
            and m.command == ofp.OFPFC_DELETE_STRICT and m.priority == forwarding.PRIO_PATH]


def _s3_pair_flow(net):
    macs = (net.host("h1").mac, net.host("h2").mac)
    return [s for s in net.switches[3].specs()
            if (s.match_dict.get("eth_src"), s.match_dict.get("eth_dst")) == macs]


def test_deletions_wait_for_every_confirmation_and_then_the_drain(net):
    mark = _reroute_back(net)
    assert _deletes(net, mark) == [] and _s3_pair_flow(net)       # s3 keeps the old hop meanwhile
    held = net.core.sync_mark()
    assert held[3] > net.core.switches[3].sent                    # it owes the sync that deletes
    mark = len(net.sent)
    net.answer()                                                  # s1 confirms its turn
    # Packets s1 sent the old way just before may still be on their way through s3.
    assert _deletes(net, mark) == [] and _s3_pair_flow(net)
    net.run(DRAIN_S / 2)
    assert _deletes(net, mark) == [] and _s3_pair_flow(net)
    net.run(DRAIN_S / 2 + net.TICK_S)
    assert _deletes(net, mark) == [3] and _s3_pair_flow(net) == []
    assert not net.core.wait_confirmed(held, 0.0)
    net.answer()
    assert net.core.wait_confirmed(held, 0.0)
    assert net.out_of_sync() == {}


def test_deletions_go_anyway_when_a_switch_never_confirms(net):
    mark = _reroute_back(net)
    timeouts = net.core.counters["break_wait_timeouts"]
    net.run(core.BREAK_WAIT_S + 0.5)
    assert _deletes(net, mark) == [3]
    assert net.core.counters["break_wait_timeouts"] == timeouts + 1
    assert net.out_of_sync() == {}


def test_a_switch_lost_before_confirming_does_not_hold_deletions(net):
    mark = _reroute_back(net)
    unconfirmed = [dp for dp, gen in net.core.sync_mark().items() if net.core.switches[dp].confirmed < gen]
    net.answer(*[dp for dp in unconfirmed if dp != 1])
    assert _deletes(net, mark) == []
    net.disconnect(1)
    net.run(DRAIN_S + net.TICK_S)
    assert _deletes(net, mark) == [3]


def test_a_sync_during_the_drain_does_not_send_the_deletions_early(net):
    mark = _reroute_back(net)
    net.answer()                                                  # s1 confirms its turn
    net.deliver(net.core.resync(net.now))                         # e.g. an app's intent changed
    assert _deletes(net, mark) == [] and _s3_pair_flow(net)
    net.run(DRAIN_S + net.TICK_S)
    assert _deletes(net, mark) == [3]
    net.settle()
    assert net.out_of_sync() == {}


def test_no_drain_when_configured_off():
    network = BarrierNet(drain_s=0.0).start()
    network.announce("h1", "h2", "h3")
    network.settle()
    mark = _reroute_back(network)
    network.answer()
    assert _deletes(network, mark) == [3]
