"""Tests for controller.appbase: an app registered from a test — its own owner code,
table, band in a shared table and config section — runs in the core without any
change under controller/; registrations that clash are refused naming both sides;
a flow outside its owner's band that overlaps another owner's is refused naming both."""

from __future__ import annotations

import logging

import pytest

from tests.lib import fakeoftable
from controller import cookies, flows
from controller.appbase import REGISTERED, App, AppSpec, RegistrationError, register, unregister
from controller.config import ConfigError, Section, parse
from controller.desired import Desired
from controller.pipeline import PIPELINE, Table
from tests.lib.fakeoftable import FakeNetwork, hosts_on, ipv4_frame

LINKS = fakeoftable.DIAMOND_LINKS


class AclConfig(Section):
    blocked: tuple[str, ...] = ()           # source MACs whose frames are dropped at their first switch


ACL = AppSpec(name="acl", code=0x70, ids=False,
              tables=(Table("acl", 9, frozenset({"eth_src"}), miss="drop", owner="acl",
                            description="frames an ACL blocks, dropped and counted"),),
              entries=(("classify", "acl"),),
              bands=(("classify", 500, 599),),
              section="acl", schema=AclConfig, summary="a test ACL")


class AclApp(App):
    """Blocked sources go from classify to the app's own table, which drops them. With
    ``stray``, it also asks for flows outside its band in the shared forward table."""

    name = "acl"

    def __init__(self, view, resync=lambda: None, stray: tuple = ()):
        super().__init__(view, resync)
        self.settings: AclConfig = view.section("acl")
        self.stray = stray

    def desired(self, dp_id: int, now: float) -> Desired:
        cookie = cookies.cookie(self.name, 1)
        out = [flows.flow("classify", 550, {"eth_src": mac}, goto="acl", cookie=cookie)
               for mac in self.settings.blocked]
        out += [flows.flow("forward", prio, match, [("output", 1)], cookie=cookie)
                for prio, match in self.stray]
        return Desired(flows=tuple(out))


@pytest.fixture
def acl():
    register(ACL)
    yield ACL
    unregister("acl")
    assert "acl" not in REGISTERED and "acl" not in cookies.OWNERS
    assert "acl" not in {t.name for t in PIPELINE.tables}


def _net(blocked: str, **app) -> tuple[FakeNetwork, AclApp]:
    hosts = hosts_on(("h1", 1, 3), ("h2", 1, 4), ("h4", 4, 3))
    blocked_mac = next(h.mac for h in hosts if h.name == blocked)
    config = parse(f"acl:\n  blocked: ['{blocked_mac}']\n", source="acl.yaml")
    net = FakeNetwork(LINKS, hosts, config).start()
    app_ = AclApp(net.core.view, lambda: net.deliver(net.core.resync(net.now)), **app)
    net.core.add_provider(app_)
    net.deliver(net.core.resync(net.now))
    net.announce("h1", "h2", "h4")
    return net, app_


def test_an_app_registered_from_a_test_runs_with_its_table_band_section_and_owner_code(acl):
    net, app_ = _net("h2")
    assert app_.settings.blocked and cookies.owner_of(cookies.cookie("acl")) == "acl"
    # Its table is on the switches, with the miss the pipeline declares for it.
    assert any(f.table == "acl" and f.priority == 0 for f in net.switches[1].specs())
    # h1 reaches h4; h2, blocked, is dropped at its first switch by the app's table.
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))
    net.send("h2", ipv4_frame(net.host("h2"), net.host("h4")))
    sources = {pkt.protocols[0].src for pkt in net.inbox("h4", 0x0800)}
    assert net.host("h1").mac in sources and net.host("h2").mac not in sources
    walk = net.walk(1, 4, {"in_port": 4, "eth_src": net.host("h2").mac, "eth_dst": net.host("h4").mac,
                           "eth_type": 0x0800})
    assert walk.dropped == [(1, 4)] and walk.delivered == []


def test_its_config_section_is_validated_by_its_schema_and_gone_when_it_is(acl):
    with pytest.raises(ConfigError, match=r"acl.yaml: acl.blocked: Input should be a valid tuple"):
        parse("acl:\n  blocked: 7\n", source="acl.yaml")
    with pytest.raises(ConfigError, match=r"acl.blockd: unknown key"):
        parse("acl:\n  blockd: []\n", source="acl.yaml")
    unregister("acl")
    with pytest.raises(ConfigError, match=r"acl: unknown key"):
        parse("acl:\n  blocked: []\n", source="acl.yaml")
    register(ACL)


@pytest.mark.parametrize("spec, message", [
    (AppSpec(name="acl2", code=0x04), "code 0x04 is already 'slices'"),
    (AppSpec(name="acl2", code=0x71, tables=(Table("lb", 9, frozenset(), owner="acl2"),)),
     "table 'lb' is already declared by slices"),
    (AppSpec(name="acl2", code=0x71, tables=(Table("acl2", 4, frozenset(), owner="acl2"),)),
     "id 4 is already 'lb' \\(slices\\)"),
    (AppSpec(name="acl2", code=0x71, section="te", schema=AclConfig), "config section 'te' is already"),
    (AppSpec(name="acl2", code=0x71, bands=(("flood", 1, 2),)), "not a shared table"),
    (AppSpec(name="forwarding", code=0x71), "the controller's own owner"),
    (AppSpec(name="acl2", code=0x71, tables=(Table("x", 9, frozenset(), owner="other"),)), "says its owner"),
])
def test_a_registration_that_clashes_is_refused_and_leaves_nothing_behind(spec, message):
    before = (dict(cookies.OWNERS), PIPELINE.tables, dict(PIPELINE.bands))
    with pytest.raises(RegistrationError, match=message):
        register(spec)
    assert (dict(cookies.OWNERS), PIPELINE.tables, dict(PIPELINE.bands)) == before
    assert "acl2" not in REGISTERED


def test_registering_the_same_spec_twice_is_a_no_op_and_a_different_one_is_refused(acl):
    assert register(ACL) is REGISTERED["acl"]
    with pytest.raises(RegistrationError, match="already registered differently"):
        register(AppSpec(name="acl", code=0x70, summary="another"))


def test_a_flow_outside_the_band_overlapping_another_owners_is_refused_naming_both(acl, caplog):
    h4 = next(h.mac for h in hosts_on(("h1", 1, 3), ("h2", 1, 4), ("h4", 4, 3)) if h.name == "h4")
    nobody = "02:00:00:00:99:99"
    net, app_ = _net("h2")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))      # forwarding installs h1 -> h4
    # Untagged (vlan_vid 0): tagged frames belong to the fast-failover detours.
    app_.stray = ((1001, {"eth_dst": h4, "vlan_vid": 0}), (1001, {"eth_dst": nobody, "vlan_vid": 0}))
    with caplog.at_level(logging.ERROR, logger="controller.core"):
        net.deliver(net.core.resync(net.now))
    kept = {f.match_dict.get("eth_dst") for f in net.switches[1].specs()
            if cookies.owner_of(f.cookie) == "acl" and f.table == "forward"}
    assert kept == {nobody}, "the flow that overlaps no other owner's stays"
    assert "provider acl: flow forward/1001 eth_dst=" in caplog.text
    assert "is outside the bands it registered (none there) in shared table 'forward' and overlaps " \
           "forwarding's forward/1000" in caplog.text
    assert net.core.counters["desired_rejects"] >= 1


def test_a_flow_in_another_apps_table_is_refused(acl):
    class Intruder(AclApp):
        def desired(self, dp_id, now):
            return Desired(flows=(flows.flow("lb", 100, {"eth_type": 0x0800}, cookie=cookies.cookie("acl")),))
    net = FakeNetwork(LINKS, hosts_on(("h1", 1, 3)), parse("")).start()
    net.core.add_provider(Intruder(net.core.view))
    net.deliver(net.core.resync(net.now))
    assert not [f for f in net.switches[1].specs() if f.table == "lb"]
    assert net.core.counters["desired_rejects"] >= 1


def test_overlap_of_matches_follows_masks_and_wildcards():
    f = flows.flow
    a = f("classify", 10, {"eth_type": 0x0800, "ipv4_dst": "10.0.0.0/24"})
    assert flows.overlap(a, f("classify", 20, {"eth_type": 0x0800, "ipv4_dst": "10.0.0.7"}))
    assert not flows.overlap(a, f("classify", 20, {"eth_type": 0x0800, "ipv4_dst": "10.0.1.7"}))
    assert flows.overlap(a, f("classify", 20, {"in_port": 3}))           # a wildcard there
    assert not flows.overlap(a, f("classify", 20, {"eth_type": 0x0806}))
    assert flows.overlap(f("forward", 1, {"eth_dst": ("01:00:00:00:00:00", "01:00:00:00:00:00")}),
                         f("forward", 1, {"eth_dst": "ff:ff:ff:ff:ff:ff"}))
