"""The provisioning engine on a fake OpenFlow network: the controller core with the slices
app and the provisioning app as providers, fake switches running what they install.
Forecasts are given as quantile points (the predictor's service is tested on its own;
``test_provisioning_app`` drives the loop through a real one). Judged by what users
see: the queue, the records, what the switches hold, where frames go."""

from __future__ import annotations

import pytest

from apps.provisioning.app import ProvisioningApp
from apps.provisioning.changes import InvalidChange, NotFound, WrongState
from apps.provisioning.store import ProvisioningStore
from labs import provisioning_faults
from tests.lib.provisioning_net import build, delivered, forecast, meter_rate_kbps, pair



def restarted(net, path) -> ProvisioningApp:
    """A new provisioning app on the same core, from the state file ``path`` (a restart)."""
    return ProvisioningApp(net.core.view, lambda: net.deliver(net.core.resync(net.now)), net.app.settings,
                           ProvisioningStore(str(path)), wall=net.clock)

@pytest.fixture
def net(tmp_path):
    net = build(tmp_path)
    yield net
    net.app.close()


# ---- needs and the queue ---------------------------------------------------------------------


def test_forecasts_above_capacity_raise_ranked_recommendations_with_their_numbers(net):
    # web (10 Mbit/s) is forecast at 14 within 15 min; api (20) at 22 only in an hour.
    recs = net.engine.evaluate(
        net.clock.now,
        {
            "slice:web": forecast({300: 8, 900: 14, 1800: 15}),
            "slice:api": forecast({300: 12, 900: 15, 1800: 18, 3600: 22}),
        },
    )
    assert [r.id for r in recs] == ["slice:web/slice_bandwidth", "slice:api/slice_bandwidth"]
    web, api = recs
    assert 300 < web.need.deadline_s < 900  # crossing interpolated between the horizons
    assert web.need.crossing == pytest.approx(net.clock.now + web.need.deadline_s)
    assert web.confidence > 0.9 and web.priority > api.priority
    assert web.params["slice"] == "web"
    # Sized for the q0.95 need over the horizon, divided by the headroom, rounded up to 0.5.
    need = max(h.upper_mbps for h in web.need.horizons)
    assert web.params["bandwidth_mbps"] >= need / 0.9 > 15
    assert "capacity 10 Mbit/s" in web.need.reason()


def test_no_recommendation_without_a_forecast_crossing(net):
    assert net.engine.evaluate(net.clock.now, {"slice:web": forecast({300: 5, 3600: 6})}) == []


def test_a_resource_with_a_change_on_the_way_is_not_recommended_again(net):
    fc = {"slice:web": forecast({300: 14, 900: 14})}
    (rec,) = net.engine.evaluate(net.clock.now, fc)
    change = net.engine.from_recommendation(rec.id)
    assert net.engine.evaluate(net.clock.now, fc) == []
    assert net.engine.queue() == [change]


# ---- the staged-then-deployed path -----------------------------------------------------------


def test_a_forecast_need_is_staged_deployed_before_its_crossing_and_the_meters_follow(net):
    assert meter_rate_kbps(net, 1, "web") == 10_000
    (change,) = net.engine.step(net.clock.now, {"slice:web": forecast({300: 14, 900: 15})})
    assert change.state == "DEPLOYED", change.detail
    checks = {c["name"]: c for c in change.staging["checks"]}
    assert checks["verify"]["ok"] and checks["covers-need"]["ok"]
    assert change.deploy["before_crossing"] is True
    assert {c["name"] for c in change.deploy["checks"]} >= {"post:confirmed", "post:verify", "post:knobs"}
    new = change.params["bandwidth_mbps"]
    assert net.slices.get("web").slice.bandwidth_mbps == new
    for dp in (1, 2, 3, 4):
        assert meter_rate_kbps(net, dp, "web") == int(new * 1000)


def test_the_rollback_puts_every_switch_back_as_it_was(net):
    (change,) = net.engine.step(net.clock.now, {"slice:web": forecast({300: 14})})
    rolled = net.engine.rollback(change.id, "operator test")
    assert rolled.state == "ROLLED_BACK"
    assert rolled.rollback["restored"] is True and rolled.rollback["duration_s"] < 1.0
    assert net.slices.get("web").slice.bandwidth_mbps == 10
    assert meter_rate_kbps(net, 1, "web") == 10_000
    with pytest.raises(WrongState, match="only a DEPLOYED change rolls back"):
        net.engine.rollback(change.id)


def test_a_pinned_path_is_verified_deployed_and_carries_the_pair(net):
    assert net.trace("c1", "m3") == [1, 4]
    change = net.engine.create("od_path", pair(net, path=["s1", "s2", "s3", "s4"]))
    net.engine.stage(change.id)
    assert change.state == "STAGED", change.detail
    net.engine.deploy(change.id)
    assert change.state == "DEPLOYED", change.detail
    assert net.trace("c1", "m3") == [1, 2, 3, 4] and net.trace("m3", "c1") == [4, 3, 2, 1]
    assert delivered(net, "c1", "m3") == ["m3"]
    assert net.trace("c1", "m1") == [1, 2]  # other pairs keep their paths
    net.engine.rollback(change.id)
    assert net.trace("c1", "m3") == [1, 4]
    assert net.out_of_sync() == {}


# ---- faulty changes are stopped in staging ----------------------------------------------------


@pytest.mark.parametrize(
    "fault, check",
    [
        ("wrong_port", "reach"),
        ("loop", "loop"),
        ("missing_group", "missing-group"),
        ("isolation_hole", "isolation"),
    ],
)
def test_a_faulty_change_is_stopped_in_staging_and_never_reaches_a_switch(net, fault, check):
    tables = {dp: sw.specs() for dp, sw in net.switches.items()}
    change = net.engine.create(f"od_path_{fault}", pair(net, path=["s1", "s2", "s3", "s4"]))
    net.engine.stage(change.id)
    assert change.state == "STAGE_FAILED"
    verify = next(c for c in change.staging["checks"] if c["name"] == "verify")
    assert not verify["ok"] and check in verify["detail"], verify["detail"]
    with pytest.raises(WrongState, match="failed staging"):
        net.engine.deploy(change.id)
    assert {dp: sw.specs() for dp, sw in net.switches.items()} == tables


def test_a_rate_below_the_need_fails_staging(net):
    net.engine.settings = type(net.engine.settings)(
        **{**net.engine.settings.__dict__, "templates": {"slice": "slice_bandwidth_short"}}
    )
    (change,) = net.engine.step(net.clock.now, {"slice:web": forecast({300: 14})})
    assert change.state == "STAGE_FAILED"
    assert "covers-need" in change.detail and "is below the forecast need" in change.detail
    assert net.slices.get("web").slice.bandwidth_mbps == 10


def test_the_verifier_model_is_back_where_it_was_after_a_trial(net):
    net.engine.model.sync(net.clock.now)
    before = net.engine.model.verifier.findings_set()
    change = net.engine.create("od_path_loop", pair(net, path=["s1", "s2", "s3", "s4"]))
    net.engine.stage(change.id)
    assert net.engine.model.verifier.findings_set() == before
    assert net.engine.model.sync(net.clock.now) == 0  # nothing left to undo


# ---- bad input: refused, named, nothing applied -----------------------------------------------


@pytest.mark.parametrize(
    "template, params, field",
    [
        ("slice_bandwidth", dict(slice="web"), "params.bandwidth_mbps"),
        ("slice_bandwidth", dict(slice="web", bandwidth_mbps=-3), "params.bandwidth_mbps"),
        ("slice_bandwidth", dict(slice="web", bandwidth_mbps=1e9), "params.bandwidth_mbps"),
        ("slice_bandwidth", dict(slice="nope", bandwidth_mbps=5), "params.slice"),
        ("slice_bandwidth", dict(slice="web", bandwidth_mbps=5, colour="red"), "params.colour"),
        ("od_path", dict(src="c1", dst="m3", path=["s1", "s9", "s4"]), "params.path.1"),
        ("od_path", dict(src="c1", dst="m3", path=["s1", "s3", "s4"]), "params.path.1"),
        ("od_path", dict(src="c1", dst="m3", path=["s1", "s2", "s1", "s4"]), "params.path"),
        ("od_path", dict(src="zz", dst="m3", path=["s1", "s4"]), "params.src"),
        ("no_such_template", {}, "template"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_recorded(net, template, params, field):
    params = {
        k: (net.host(v).mac if k in ("src", "dst") and v in net.hosts else v) for k, v in params.items()
    }
    with pytest.raises(InvalidChange) as err:
        net.engine.create(template, params)
    assert err.value.field == field, str(err.value)
    assert net.engine.changes == {}


def test_deploying_an_unstaged_or_unknown_change_is_refused(net):
    change = net.engine.create("slice_bandwidth", dict(slice="web", bandwidth_mbps=12))
    with pytest.raises(WrongState, match="not been staged"):
        net.engine.deploy(change.id)
    with pytest.raises(NotFound):
        net.engine.deploy("c99999")
    assert net.slices.get("web").slice.bandwidth_mbps == 10


def test_a_failed_post_deploy_check_rolls_the_change_back(net):
    change = net.engine.create("slice_bandwidth", dict(slice="web", bandwidth_mbps=12))
    net.engine.stage(change.id)
    net.slices.delete("web")  # gone between staging and deployment
    net.engine.deploy(change.id)
    assert change.state == "ROLLED_BACK"
    assert "post-deploy check post:knobs failed" in change.detail and "web" in change.detail


# ---- feedback ---------------------------------------------------------------------------------


def test_outcomes_after_the_crossing_feed_the_templates_accuracy_and_the_confidence(net):
    (change,) = net.engine.step(net.clock.now, {"slice:web": forecast({300: 14})})
    assert net.engine.accuracy(change.template) == (1.0, 0)
    net.engine.peaks[change.id] = 13.0  # measured above the old 10, within the new
    net.engine.judge(change.crossing_s + net.engine.settings.outcome_after_s)
    assert change.outcome["needed"] and change.outcome["held"]
    assert net.engine.accuracy(change.template) == (pytest.approx(2 / 3), 1)
    # A second deployed change whose demand never came: accuracy falls, and so does the confidence.
    other = net.engine.create(
        "slice_bandwidth", dict(slice="api", bandwidth_mbps=30), crossing_s=net.clock.now + 60
    )
    net.engine.stage(other.id)
    net.engine.deploy(other.id)
    net.engine.peaks[other.id] = 5.0
    net.engine.judge(other.crossing_s + net.engine.settings.outcome_after_s)
    assert other.outcome["needed"] is False
    acc, n = net.engine.accuracy("slice_bandwidth@1")
    assert (acc, n) == (pytest.approx(0.5), 2)
    (rec,) = net.engine.evaluate(net.clock.now, {"slice:api": forecast({300: 40})})
    assert rec.confidence == pytest.approx(rec.need.confidence * 0.5)


# ---- persistence ------------------------------------------------------------------------------


def test_a_restart_loses_no_change_and_keeps_the_pinned_path(tmp_path):
    path = tmp_path / "kept.sqlite"
    net = build(tmp_path, store_path=path)
    pinned = net.engine.create("od_path", pair(net, path=["s1", "s2", "s3", "s4"]))
    net.engine.stage(pinned.id)
    net.engine.deploy(pinned.id)
    queued = net.engine.create("slice_bandwidth", dict(slice="web", bandwidth_mbps=12))
    failed = net.engine.create("od_path_loop", pair(net, path=["s1", "s2", "s3", "s4"]))
    net.engine.stage(failed.id)
    net.app.close()

    again = restarted(net, path)
    try:
        states = {c.id: c.state for c in again.engine.list()}
        assert states == {pinned.id: "DEPLOYED", queued.id: "QUEUED", failed.id: "STAGE_FAILED"}
        assert again.engine.get(failed.id).staging == failed.staging
        # The pinned path's entries are wanted again without rendering.
        assert again.desired(2, net.now).flows == net.app.desired(2, net.now).flows != ()
    finally:
        again.close()


def test_a_change_interrupted_while_deploying_is_rolled_back_at_start(tmp_path):
    path = tmp_path / "crash.sqlite"
    net = build(tmp_path, store_path=path)
    change = net.engine.create("slice_bandwidth", dict(slice="web", bandwidth_mbps=12))
    net.engine.stage(change.id)
    net.engine._move(change, "DEPLOYING", "applying")  # the process died here
    net.app.close()
    again = restarted(net, path)
    try:
        assert again.engine.recover() == [change.id]
        assert again.engine.get(change.id).state == "ROLLED_BACK"
        assert net.slices.get("web").slice.bandwidth_mbps == 10
    finally:
        again.close()


def test_faulty_templates_are_in_the_library_once_their_module_is_listed():
    from apps.provisioning import templates as tpl

    for fault in provisioning_faults.FAULTS:
        assert f"od_path_{fault}@1" in tpl.LIBRARY
    assert tpl.lookup("od_path").ref == "od_path@1"


# ---- the other templates --------------------------------------------------------------------


def test_a_slice_size_change_is_checked_after_the_deploy_it_shapes(tmp_path):
    net = build(tmp_path, isolate=[])
    try:
        change = net.engine.create("slice_size", dict(slice="web", members=2))
        net.engine.stage(change.id)
        verify = change.staging["checks"][0]
        assert change.state == "STAGED" and "known once its app applies it" in verify["detail"]
        net.engine.deploy(change.id)
        assert change.state == "DEPLOYED", change.detail
        post = {c["name"]: c for c in change.deploy["checks"]}
        assert post["post:verify"]["ok"] and post["post:verify"]["detail"].startswith("no new finding")
        assert len(net.slices.get("web").active) == 2
        # The other slice cannot grow: its pool has no member left; the deploy fails and rolls back.
        other = net.engine.create("slice_size", dict(slice="api", members=2))
        net.engine.stage(other.id)
        net.engine.deploy(other.id)
        assert other.state == "ROLLED_BACK" and "post:knobs" in other.detail and "available" in other.detail
        assert len(net.slices.get("api").active) == 1
    finally:
        net.app.close()


def test_scaling_a_slice_onto_an_isolated_tenants_host_is_caught_after_the_deploy_and_rolled_back(net):
    # web's next member is m3; x1, another tenant, reaches every member through the VIP.
    change = net.engine.create("slice_size", dict(slice="web", members=2))
    net.engine.stage(change.id)
    net.engine.deploy(change.id)
    assert change.state == "ROLLED_BACK"
    assert "post:verify" in change.detail and "isolation" in change.detail
    assert net.host("x1").mac in change.detail and net.host("m3").mac in change.detail
    assert len(net.slices.get("web").active) == 1 and change.rollback["confirmed"]


def test_te_headroom_sets_the_reroute_threshold_and_a_restart_sets_it_again(tmp_path):
    path = tmp_path / "te.sqlite"
    net = build(tmp_path, store_path=path, te=True)
    change = net.engine.create("te_headroom", dict(threshold=0.6))
    net.engine.stage(change.id)
    net.engine.deploy(change.id)
    assert change.state == "DEPLOYED" and net.te.settings.threshold == 0.6
    net.app.close()
    net.te.settings = net.te.settings.model_copy(update={"threshold": 0.8})    # a restarted TE: its config
    again = restarted(net, path)
    try:
        assert again.engine.recover() == [change.id]
        assert net.te.settings.threshold == 0.6
    finally:
        again.close()


def test_a_template_whose_app_is_not_loaded_says_so(net):
    with pytest.raises(InvalidChange, match="is its app loaded") as err:
        net.engine.create("te_headroom", dict(threshold=0.6))
    assert err.value.field == "params.threshold"
    with pytest.raises(InvalidChange, match="no stitch bandwidth_mbps knob"):
        net.engine.create("stitch_bandwidth", dict(stitch="st-1", bandwidth_mbps=5))
