"""The ``spare_link`` provisioning template (apps.provisioning.templates.SpareLink) with
the links app on a fake network (tests/lib/spare_net.py: s1 - s2 - s3 and a spare s1:2 -
s3:2): what it renders, what it refuses, and a change staged, deployed and rolled back
through the provisioning engine, judged by the ports, the topology and where frames go."""

from __future__ import annotations

import pytest

from apps.provisioning import templates as tpl
from apps.provisioning.app import ProvisioningApp
from apps.provisioning.config import ProvisioningConfig
from apps.provisioning.engine import LiveContext
from tests.lib.provisioning_net import forecast
from tests.lib.spare_net import build, route, spare_links


CHAIN_CAPACITY = {(1, 2): 10.0, (2, 3): 40.0, (1, 3): 30.0}  # the spare s1-s3 is the 30


def with_provisioning(net):
    settings = ProvisioningConfig.model_validate({"store_path": "", "auto": False})
    # The engine waits for LLDP to find a spare brought in: the fake network's time runs meanwhile.
    net.prov = ProvisioningApp(net.core.view, lambda: net.deliver(net.core.resync(net.now)), settings,
                               None, wall=lambda: net.now, sleep=net.run)
    net.core.add_provider(net.prov)
    return net


@pytest.fixture
def net():
    net = with_provisioning(build())
    yield net
    net.prov.close()


@pytest.fixture
def rated():
    """The chain with capacities for every link: s1 -> s2 (10 Mbit/s) is the thin one."""
    net = with_provisioning(build(capacities=CHAIN_CAPACITY))
    yield net
    net.prov.close()


def test_it_renders_the_spares_knob_and_touches_every_switch(net):
    template = tpl.lookup("spare_link")
    assert template.ref == "spare_link@1" and template.resource_kind == "link"
    rendered = template.render({"link": "s1-s3"}, LiveContext(net.core.view))
    assert rendered.knobs == (tpl.KnobChange("link", "s1-s3", "in_service", 0.0, 1.0),)
    # Paths anywhere may move onto (or off) the link: the deploy covers every switch.
    assert rendered.touches == () and rendered.entries == {} and rendered.promise.mbps == 0
    assert rendered.summary == "spare link s1-s3 (s1 - s3): out of service -> in service"
    out = template.render({"link": "s1-s3", "in_service": False}, LiveContext(net.core.view))
    assert out.knobs[0].new == 0.0 and out.summary.endswith("out of service -> out of service")


@pytest.mark.parametrize("params, field, says", [
    ({"link": "s9"}, "params.link", "no link in_service knob for 's9' (known: s1-s3)"),
    ({}, "params.link", "missing (required)"),
    ({"link": ""}, "params.link", "at least 1 character"),
    ({"link": "s1-s3", "in_service": "maybe"}, "params.in_service", "valid boolean"),
    ({"link": "s1-s3", "speed": 1}, "params.speed",
     "unknown parameter (known: link, in_service, relieves)"),
    ({"link": "s1-s3", "relieves": "s1-s9"}, "params.relieves",
     "not <switch>-<switch> of two known switches"),
    ({"link": "s1-s3", "relieves": "s3-s1"}, "params.relieves", "no link from s3 to s1 is in service"),
])
def test_bad_parameters_are_refused_naming_them(net, params, field, says):
    with pytest.raises(tpl.TemplateError) as err:
        tpl.lookup("spare_link").render(params, LiveContext(net.core.view))
    assert err.value.field == field and says in err.value.message, str(err.value)


def test_a_staged_change_deploys_the_spare_and_rolls_it_back(net):
    assert route(net, "h1", "h3") == [1, 2, 3]
    engine = net.prov.engine
    change = engine.create("spare_link", {"link": "s1-s3"})
    assert engine.stage(change.id).state == "STAGED", change.detail
    assert net.admin_down == {(1, 2), (3, 2)}                   # staging changes nothing
    assert engine.deploy(change.id).state == "DEPLOYED", change.detail
    # The deploy waited until LLDP found the spare both ways and forwarding settled.
    checks = {c["name"]: c for c in change.deploy["checks"]}
    assert checks["post:links"]["ok"] and "s1-s3 in service both ways" in checks["post:links"]["detail"]
    assert net.admin_down == set()
    assert spare_links(net) and route(net, "h1", "h3") == [1, 3]
    assert engine.rollback(change.id, "test").state == "ROLLED_BACK"
    assert change.rollback["restored"] and change.rollback["errors"] == []
    assert net.admin_down == {(1, 2), (3, 2)} and spare_links(net) == set()
    assert route(net, "h1", "h3") == [1, 2, 3]


# ---- a link's forecast need answered by the spare ------------------------------------------


def test_a_link_forecast_over_its_capacity_is_answered_by_the_spare_that_relieves_it(rated):
    engine = rated.prov.engine
    links = {r.name: r for r in engine.resources() if r.kind == "link"}
    assert links["s1-s2"].capacity_mbps == 10 and "s1-s3" not in links  # the spare is not in service
    recs = engine.evaluate(rated.now, {"link:s1-s2": forecast({300: 8, 900: 14})})
    assert [r.id for r in recs] == ["link:s1-s2/spare_link"]
    rec = recs[0]
    assert rec.params == {"link": "s1-s3", "in_service": True, "relieves": "s1-s2"}
    assert "capacity 10 Mbit/s" in rec.need.reason()
    change = engine.from_recommendation(rec.id)
    # The promise: what s1 -> s2 carries with the spare in: its 10, plus s1 -> s3 -> s2 (30).
    assert change.promise == {"resource": "link:s1-s2", "mbps": 40.0, "pairs": []}
    assert change.capacity_mbps == 10
    staged = engine.stage(change.id)
    assert staged.state == "STAGED", staged.detail
    assert [c["name"] for c in staged.staging["checks"]] == ["verify", "covers-need"]
    assert engine.deploy(change.id).state == "DEPLOYED", change.detail
    assert spare_links(rated)
    # Once it is in service the need is answered: no second recommendation.
    assert engine.evaluate(rated.now, {"link:s1-s2": forecast({300: 8, 900: 14})}) == []


def test_a_spare_is_recommended_only_where_it_opens_a_way_with_a_known_capacity(rated):
    # s2 -> s3 gains the way s2 -> s1 -> s3 over the spare: recommended too.
    recs = rated.prov.engine.evaluate(rated.now, {"link:s2-s3": forecast({300: 30, 900: 60})})
    assert [(r.resource, r.params["link"]) for r in recs] == [("link:s2-s3", "s1-s3")]
    bare = with_provisioning(build(capacities={(1, 2): 10.0, (2, 3): 40.0}))
    try:
        recs = bare.prov.engine.evaluate(bare.now, {"link:s1-s2": forecast({300: 8, 900: 14})})
        assert recs == []  # the spare has no capacity in the metadata: it relieves nothing known
    finally:
        bare.prov.close()


def test_a_spare_whose_promise_is_below_the_need_fails_staging(rated):
    engine = rated.prov.engine
    change = engine.create("spare_link", {"link": "s1-s3", "relieves": "s1-s2"}, need_mbps=55.0)
    staged = engine.stage(change.id)
    assert staged.state == "STAGE_FAILED" and "covers-need" in staged.detail
    assert "promises 40 Mbit/s, is below the forecast need 55.00" in staged.detail
    assert rated.admin_down == {(1, 2), (3, 2)}  # nothing reached a switch
