"""The links app (apps.links): its config section, its knob, what it asks of the core,
what it keeps across a restart and what it exports; on a fake network (tests/lib/
spare_net.py: s1 - s2 - s3 and a spare s1:2 - s3:2), judged by the ports' state, the
links the topology has and where frames go."""

from __future__ import annotations

import pytest
import yaml
from prometheus_client import generate_latest

from apps.links.app import LinksApp, provider
from apps.links.config import LinksConfig
from apps.links.store import LinksStore, LinksStoreError
from controller import config
from controller.appbase import KnobError
from controller.desired import Desired
from controller.metrics import registry_for
from tests.lib.spare_net import SPARES, build, links_settings, route, spare_links

SPARE = SPARES[0]


def parse(links: dict) -> config.Config:
    return config.parse(yaml.safe_dump({"links": links}), source="c.yaml")


def test_the_section_validates_and_names_switches_by_name_or_dp_id():
    got = parse({"spares": [dict(SPARE), {"name": "b", "a": 1, "a_port": 5, "b": "0x2", "b_port": 5}],
                 "state_path": ""})
    assert [s.name for s in got.section("links").spares] == ["s1-s3", "b"]
    assert parse({}).section("links").spares == ()


@pytest.mark.parametrize("spares, key, says", [
    ([dict(SPARE), dict(SPARE, a_port=5, b_port=5)], "links.spares.1.name", "duplicate spare name 's1-s3'"),
    ([dict(SPARE), dict(SPARE, name="x", b="s2", b_port=9)], "links.spares.1.a_port",
     "switch s1 port 2 is already spares.0.a_port"),
    ([dict(SPARE, colour="red")], "links.spares.0.colour", "unknown key"),
    ([dict(SPARE, a_port=0)], "links.spares.0.a_port", "greater than or equal to 1"),
    ([dict(SPARE, b_port=0xffffff01)], "links.spares.0.b_port", "less than or equal to 4294967040"),
    ([dict(SPARE, a_port="2")], "links.spares.0.a_port", "valid integer"),
    ([dict(SPARE, a_port=True)], "links.spares.0.a_port", "valid integer"),
    ([dict(SPARE, b="s1")], "links.spares.0.b", "the same switch as a (s1)"),
    ([dict(SPARE, a=1.5)], "links.spares.0.a", "1.5 is not a switch name or dp_id"),
    ([dict(SPARE, a="")], "links.spares.0.a", "empty; give a switch name or dp_id"),
    ([dict(SPARE, name="Bad Name")], "links.spares.0.name", "should match pattern"),
    ([{k: v for k, v in SPARE.items() if k != "b_port"}], "links.spares.0.b_port", "Field required"),
])
def test_bad_spares_are_refused_naming_the_field(spares, key, says):
    with pytest.raises(config.ConfigError) as err:
        parse({"spares": spares})
    assert f"c.yaml: {key}: " in str(err.value) and says in str(err.value), str(err.value)


def test_an_unknown_switch_is_refused_when_the_app_starts(tmp_path):
    net = build(spares=[], start=False)
    settings = links_settings(spares=[dict(SPARE, b="s9")])
    with pytest.raises(config.ConfigError, match=r"links.spares.0.b: no switch 's9' \(a name in "
                                                 r"topology.switches: s1, s2, s3; or a dp_id\)"):
        LinksApp(net.core.view, settings=settings)
    other = links_settings(spares=[SPARE, dict(SPARE, name="y", a=1, a_port=2, b="s2", b_port=7)])
    with pytest.raises(config.ConfigError, match=r"links.spares.1.a_port: dp_id 1 port 2 is already "
                                                 r"spare 's1-s3'"):
        LinksApp(net.core.view, settings=other)


def test_the_knob_and_what_the_app_asks_of_each_switch():
    net = build()
    (knob,) = net.links.knobs()
    assert (knob.key, knob.value, knob.low, knob.high, knob.switches, knob.structural) == \
        ("link:s1-s3.in_service", 0.0, 0.0, 1.0, (1, 3), True)
    assert [net.links.desired(dp, net.now) for dp in (1, 2, 3)] == \
        [Desired(ports_down=(2,)), Desired(), Desired(ports_down=(2,))]
    assert net.core.view.set_knob("link", "s1-s3", "in_service", 1).value == 1.0
    assert [net.links.desired(dp, net.now) for dp in (1, 2, 3)] == [Desired()] * 3
    net.run(2)
    assert spare_links(net) and route(net, "h1", "h3") == [1, 3]


@pytest.mark.parametrize("value", [0.5, 2, -1, True, float("nan")])
def test_the_knob_takes_only_0_or_1(value):
    net = build()
    with pytest.raises(KnobError, match=r"link:s1-s3.in_service: .* is not 0 \(out of service\) or 1"):
        net.links.set_knob("link", "s1-s3", "in_service", value)
    assert net.links.knobs()[0].value == 0.0 and net.admin_down == {(1, 2), (3, 2)}


def test_an_unknown_spare_or_field_is_no_knob():
    net = build()
    with pytest.raises(KnobError, match="link:s9.in_service: no app has this knob"):
        net.core.view.set_knob("link", "s9", "in_service", 1)
    with pytest.raises(KnobError, match="link:s1-s3.capacity_mbps: app 'links' has no such knob"):
        net.links.set_knob("link", "s1-s3", "capacity_mbps", 1)


def test_in_service_survives_a_restart_of_the_app(tmp_path):
    net = build(tmp_path)
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    net.links.close()
    path = str(tmp_path / "links.sqlite")
    again = LinksApp(net.core.view, settings=links_settings(), store=LinksStore(path))
    assert again.knobs()[0].value == 1.0 and again.desired(1, net.now) == Desired()
    again.set_knob("link", "s1-s3", "in_service", 0)
    again.close()
    third = LinksApp(net.core.view, settings=links_settings(), store=LinksStore(path))
    assert third.knobs()[0].value == 0.0 and third.desired(3, net.now) == Desired(ports_down=(2,))
    third.close()


def test_a_change_that_cannot_be_written_is_not_made(tmp_path):
    class Broken(LinksStore):
        def put(self, name, in_service, now):
            raise LinksStoreError("links state x: cannot write s1-s3: disk full")

    net = build(spares=[], start=False)
    app = LinksApp(net.core.view, settings=links_settings(), store=Broken(str(tmp_path / "l.sqlite")))
    with pytest.raises(KnobError, match="not changed: links state x: cannot write s1-s3: disk full"):
        app.set_knob("link", "s1-s3", "in_service", 1)
    assert app.knobs()[0].value == 0.0


def test_the_provider_reads_its_section_and_its_state_file(tmp_path):
    net = build(spares=[], start=False)
    section = LinksConfig.model_validate({"spares": SPARES, "state_path": str(tmp_path / "l.sqlite")})
    net.core.config = net.config = net.config.model_copy(update={"links": section})
    app = provider(net.core.view, lambda: None)
    app.set_knob("link", "s1-s3", "in_service", 1)
    app.close()
    assert LinksStore(str(tmp_path / "l.sqlite")).in_service() == {"s1-s3": True}


def test_the_metric_says_which_spares_are_in_service():
    net = build()
    text = generate_latest(registry_for(net.core)).decode()
    assert 'foresight_links_in_service{link="s1-s3"} 0.0' in text
    net.links.set_knob("link", "s1-s3", "in_service", 1)
    assert 'foresight_links_in_service{link="s1-s3"} 1.0' in generate_latest(registry_for(net.core)).decode()
