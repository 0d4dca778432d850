"""Ports held administratively down for apps (controller.ports), on fake switches that
take a port mod as Open vSwitch does with a veth (the far end loses carrier). Judged by
what users see: which links the topology has, where frames go, which port mods went
out and how often, and what a restarted controller does."""

from __future__ import annotations

import struct

import pytest
from prometheus_client import generate_latest
from os_ken.ofproto import ofproto_v1_3 as ofp

from apps.links.app import LinksApp
from controller import ports
from controller.appbase import App, AppSpec, register, unregister
from controller.desired import Desired
from controller.metrics import registry_for
from controller.topology import Port
from tests.lib.fakeswitch import encode
from tests.lib.spare_net import SPARE, build, port_mods, route, spare_links


def test_a_port_mod_changes_the_admin_state_alone():
    msg = ports.port_mod(Port(7, "s1-eth7", "0e:00:00:00:01:07"), down=True)
    buf = encode(msg)       # os-ken has no parser for a port mod: read the wire format itself
    assert buf[1] == ofp.OFPT_PORT_MOD and len(buf) == ofp.OFP_PORT_MOD_SIZE
    port_no, hw_addr, config, mask, advertise = struct.unpack_from(ofp.OFP_PORT_MOD_PACK_STR, buf,
                                                                   ofp.OFP_HEADER_SIZE)
    assert (port_no, hw_addr.hex(":"), config, mask, advertise) == \
        (7, "0e:00:00:00:01:07", ofp.OFPPC_PORT_DOWN, ofp.OFPPC_PORT_DOWN, 0)
    assert ports.port_mod(Port(7, hw_addr="0e:00:00:00:01:07"), down=False).config == 0


@pytest.mark.parametrize("bad", [0, -1, ofp.OFPP_MAX + 1, True, "3", 2.0])
def test_desired_refuses_what_is_not_a_port_number(bad):
    with pytest.raises(ValueError, match=r"ports_down: .* is not a port number"):
        Desired(ports_down=(bad,))


def test_desired_ports_are_sorted_and_unique():
    assert Desired(ports_down=[3, 1, 3]).ports_down == (1, 3)


def test_a_held_spare_is_down_from_connect_and_never_found():
    net = build()
    # Both ends went down at connect, before any LLDP left them.
    assert port_mods(net) == [(1, 2, True), (3, 2, True)]
    lldp_out = {(dp, ports_[0]) for dp, ports_, _ in net.packet_outs}
    assert (1, 2) not in lldp_out and (3, 2) not in lldp_out
    assert net.admin_down == {(1, 2), (3, 2)}
    assert spare_links(net) == set() and len(net.core.topology.links()) == 4
    assert route(net, "h1", "h3") == [1, 2, 3]
    assert net.core.held_ports() == [(1, 2), (3, 2)]
    assert net.core.counters["port_mods_down"] == 2


def test_port_mods_go_only_when_wanted_and_reported_differ():
    net = build()
    sent = len(net.sent)
    net.deliver(net.core.resync(net.now))
    net.run(ports.RETRY_S * 3)
    net.disconnect(2)
    net.connect(2)
    net.run(2)
    assert port_mods(net, sent) == []
    assert net.core.counters["port_mods_down"] == 2


def test_released_ports_come_up_and_lldp_finds_the_link():
    net = build()
    sent = len(net.sent)
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    assert port_mods(net, sent) == [(1, 2, False), (3, 2, False)]
    assert net.admin_down == set() and net.core.held_ports() == []
    net.run(2)
    assert spare_links(net) == {(1, 2, 3, 2), (3, 2, 1, 2)}
    capacity = {(lk.src_dp, lk.dst_dp): lk.capacity_mbps for lk in net.core.topology.links()}
    assert capacity[(1, 3)] == capacity[(3, 1)] == 100.0        # its topology.links entry
    assert route(net, "h1", "h3") == [1, 3]
    # ... and back out of service: down again, the path back through s2.
    sent = len(net.sent)
    net.links.set_knob("link", "s1-s3", "in_service", 0)
    assert sorted(port_mods(net, sent)) == [(1, 2, True), (3, 2, True)]
    assert spare_links(net) == set()
    net.run(1)
    assert route(net, "h1", "h3") == [1, 2, 3]
    assert net.core.counters["port_mods_up"] == 2 and net.core.counters["port_mods_down"] == 4
    text = generate_latest(registry_for(net.core)).decode()
    assert 'foresight_port_mods_total{op="down"} 4.0' in text
    assert 'foresight_port_mods_total{op="up"} 2.0' in text


def test_a_held_port_someone_brings_up_is_taken_down_again():
    net = build()
    sent = len(net.sent)
    net.set_admin(1, 2, down=False)
    assert port_mods(net, sent) == [(1, 2, True)]
    assert net.admin_down == {(1, 2), (3, 2)}
    net.run(2)
    assert spare_links(net) == set()


def test_a_foreign_admin_down_is_left_alone():
    net = build()
    sent = len(net.sent)
    net.set_admin(2, 3, down=True)      # h2's port, by an operator: not ours
    net.deliver(net.core.resync(net.now))
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    net.run(ports.RETRY_S * 2)
    assert (2, 3) in net.admin_down
    assert all(dp != 2 for dp, _, _ in port_mods(net, sent))
    assert (2, 3) not in net.core.held_ports()


def test_a_spare_found_down_is_adopted_and_brought_up_when_released():
    net = build(admin_down=[(1, 2), (3, 2)])
    assert port_mods(net) == []             # already down: nothing to send
    assert net.core.held_ports() == [(1, 2), (3, 2)]
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    net.run(2)
    assert net.admin_down == set() and spare_links(net)


def test_a_restarted_controller_still_brings_up_a_spare_released_while_it_was_away(tmp_path):
    net = build(state=tmp_path / "controller.sqlite")
    assert net.core.save_state()
    for dp in sorted(net.connected):
        net.disconnect(dp)
    # The restarted controller's links app no longer holds the spare (links.spares emptied).
    again = build(state=tmp_path / "controller.sqlite", spares=[], start=False)
    again.admin_down, again.up = net.admin_down, net.up       # the same switches, as they are
    assert again.core.held_ports() == [(1, 2), (3, 2)]
    again.start()
    assert port_mods(again) == [(1, 2, False), (3, 2, False)]
    again.run(2)
    assert spare_links(again) and again.core.held_ports() == []


def test_without_a_saved_hold_a_down_port_is_not_ours(tmp_path):
    again = build(spares=[], admin_down=[(1, 2), (3, 2)])
    assert port_mods(again) == [] and again.admin_down == {(1, 2), (3, 2)}


def test_an_unconfirmed_port_mod_is_sent_again_a_few_times_then_reported(caplog):
    net = build(start=False)
    net._port_mod = lambda dp, msg: None        # a switch that ignores port mods
    net.start()
    assert port_mods(net) == [(1, 2, True), (3, 2, True)]
    net.run(ports.RETRY_S * (ports.TRIES + 3))
    assert len(port_mods(net)) == 2 * ports.TRIES
    assert net.core.counters["port_mods_given_up"] == 2
    assert "giving up until the wish changes or the switch reconnects" in caplog.text


SPEC = AppSpec(name="portholder", code=0x72, summary="a test app holding a port")


class Holder(App):
    """Holds s1's port 2 down whatever the links app says; fails when told to."""

    name = "portholder"
    fail = False

    def desired(self, dp_id, now):
        if self.fail:
            raise RuntimeError("broken")
        return Desired(ports_down=(2,)) if dp_id == 1 else Desired()


@pytest.fixture
def holder():
    register(SPEC)
    yield Holder
    unregister(SPEC.name)


def test_the_core_holds_the_union_of_the_providers_wishes(holder):
    net = build(start=False)
    app = holder(net.core.view)
    net.core.add_provider(app)
    net.start()
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    assert net.admin_down == {(1, 2)}           # the links app released it, the holder did not
    assert net.core.ports_wanted_down(1) == {2: ["portholder"]}
    app.fail = True                             # a failing app's last wish stands
    net.deliver(net.core.resync(net.now))
    assert net.admin_down == {(1, 2)}
    app.fail = False
    net.core.remove_provider("portholder")
    net.deliver(net.core.resync(net.now))
    assert net.admin_down == set()


def test_an_app_may_hold_a_port_the_switch_does_not_have_and_is_told(caplog):
    net = build(spares=[{"name": "x", "a": "s1", "a_port": 9, "b": "s3", "b_port": 2}])
    assert net.admin_down == {(3, 2)}
    assert "wants port 9 held down; the switch has no such port" in caplog.text
    assert isinstance(net.links, LinksApp)
    assert SPARE == (1, 2, 3, 2)
