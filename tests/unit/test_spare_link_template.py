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
from tests.lib.spare_net import build, route, spare_links


@pytest.fixture
def net():
    net = build()
    settings = ProvisioningConfig.model_validate({"store_path": "", "auto": False})
    net.prov = ProvisioningApp(net.core.view, lambda: net.deliver(net.core.resync(net.now)), settings,
                               None, wall=lambda: net.now)
    net.core.add_provider(net.prov)
    yield net
    net.prov.close()


def test_it_renders_the_spares_knob_and_touches_its_two_switches(net):
    template = tpl.lookup("spare_link")
    assert template.ref == "spare_link@1" and template.resource_kind == "link"
    rendered = template.render({"link": "s1-s3"}, LiveContext(net.core.view))
    assert rendered.knobs == (tpl.KnobChange("link", "s1-s3", "in_service", 0.0, 1.0),)
    assert rendered.touches == (1, 3) and rendered.entries == {}
    assert rendered.summary == "spare link s1-s3 (s1 - s3): out of service -> in service"
    out = template.render({"link": "s1-s3", "in_service": False}, LiveContext(net.core.view))
    assert out.knobs[0].new == 0.0 and out.summary.endswith("out of service -> out of service")
    assert template.params_for(None, LiveContext(net.core.view), 0.9) is None


@pytest.mark.parametrize("params, field, says", [
    ({"link": "s9"}, "params.link", "no link in_service knob for 's9' (known: s1-s3)"),
    ({}, "params.link", "missing (required)"),
    ({"link": ""}, "params.link", "at least 1 character"),
    ({"link": "s1-s3", "in_service": "maybe"}, "params.in_service", "valid boolean"),
    ({"link": "s1-s3", "speed": 1}, "params.speed", "unknown parameter (known: link, in_service)"),
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
    assert net.admin_down == set()
    net.run(2)
    assert spare_links(net) and route(net, "h1", "h3") == [1, 3]
    assert engine.rollback(change.id, "test").state == "ROLLED_BACK"
    assert net.admin_down == {(1, 2), (3, 2)} and spare_links(net) == set()
    net.run(1)
    assert route(net, "h1", "h3") == [1, 2, 3]
