"""apps.stitching.manager: the policy first, then the negotiation over what the
sites advertise, the VNI and underlay plane a stitch gets, its lifecycle events,
moving it when a plane fails, and keeping it across a restart. Connectivity is
checked by walking frames through fake site switches built from ``desired``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.stitching.manager import (InvalidStitch, NoPath, StitchNotFound, StitchRefused,
                                    StitchRequest)
from apps.stitching import dataplane
from apps.stitching.app import StitchingApp
from apps.stitching.registry import Advertisement, Plane
from tests.lib.stitching_sites import A1, A3, B1, C1, DP, HOSTS, POLICY, Env, _ad  # noqa: F401

@pytest.fixture
def env():
    return Env()


def test_a_segment_stitch_is_negotiated_and_carries_frames_both_ways(env):
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    assert (record.a_site, record.b_site, record.plane, record.vni, record.rule) == ("a", "b", 1, 10000,
                                                                                        "acme-100-200")
    assert env.kinds()[-1] == "CREATED" and env.resyncs
    headers, delivered = env.send("a", A1, B1)
    assert delivered == [2] and (headers["tunnel_id"], headers["tun_ipv4_dst"]) == (10000, "10.101.0.2")
    assert env.send("b", B1, A1)[1] == [2]
    assert env.m.confirmed(record.id).state == "ESTABLISHED"


def test_a_refused_stitch_names_the_rule_and_installs_nothing(env):
    before = {site: env.m.desired(dp, env.now) for site, dp in DP.items()}
    with pytest.raises(StitchRefused) as refused:
        env.m.create(StitchRequest("acme", "segment", 100, 300))
    assert refused.value.verdict.rule == "default-deny"
    with pytest.raises(StitchRefused, match="at most 30 Mbit/s"):
        env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=35))
    assert env.m.list() == []
    assert {site: env.m.desired(dp, env.now) for site, dp in DP.items()} == before


def test_unknown_vnids_and_bad_requests_are_named(env):
    with pytest.raises(StitchNotFound, match="no site advertises VN 999 of acme"):
        env.m.create(StitchRequest("acme", "segment", 100, 999))
    with pytest.raises(InvalidStitch, match="a direct stitch joins two hosts"):
        env.m.create(StitchRequest("acme", "direct", 100, 200))
    with pytest.raises(InvalidStitch, match="a bandwidth stitch needs the rate"):
        env.m.create(StitchRequest("acme", "bandwidth", 100, 200))
    with pytest.raises(InvalidStitch, match="kind: 'tunnel'"):
        env.m.create(StitchRequest("acme", "tunnel", 100, 200))
    with pytest.raises(StitchNotFound, match="host 'b-h9' is not in VN 200"):
        env.m.create(StitchRequest("acme", "direct", 100, 200, a_host="a-h1", b_host="b-h9"))


def test_no_path_says_what_the_underlay_offers(env):
    with pytest.raises(NoPath, match="offers 25 Mbit/s within 0.1 ms; offered: plane 1: 40 Mbit/s free"):
        env.m.create(StitchRequest("acme", "segment", 100, 200, min_mbps=25, max_rtt_ms=0.1))


def test_bandwidth_already_promised_sends_the_next_stitch_to_the_other_plane(env):
    first = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=30))
    second = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=30))
    assert (first.plane, second.plane) == (1, 2)
    with pytest.raises(NoPath):
        env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=30))


def test_a_plane_going_down_moves_the_stitch_and_traffic_follows(env):
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    env.kinds()
    env.m.advertise(_ad("b", up=(False, True)), env.now + 1)
    assert env.m.get(record.id).plane == 2 and "ADJUSTED" in env.kinds()
    headers, delivered = env.send("a", A1, B1)
    assert delivered == [2] and headers["tun_ipv4_dst"] == "10.102.0.2"
    env.m.advertise(_ad("b", up=(False, False)), env.now + 2)
    assert env.m.get(record.id).state == "DEGRADED"


def test_a_silent_site_degrades_its_stitches_until_it_is_back(env):
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    env.m.advertise(_ad("a"), env.now + 5)
    env.m.advertise(_ad("c"), env.now + 5)
    assert env.m.expire(env.now + 8) == ["b"]
    assert env.m.get(record.id).state == "DEGRADED"
    env.m.advertise(_ad("b"), env.now + 9)
    assert env.m.get(record.id).state == "ESTABLISHING"


def test_delete_removes_every_flow_and_meter_it_added(env):
    before = {site: env.m.desired(dp, env.now) for site, dp in DP.items()}
    record = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=10))
    assert env.m.desired(DP["a"], env.now).meters
    env.m.delete(record.id)
    assert {site: env.m.desired(dp, env.now) for site, dp in DP.items()} == before
    assert env.send("a", A1, B1) == (None, [])
    with pytest.raises(StitchNotFound):
        env.m.get(record.id)


def test_an_encrypted_stitch_waits_for_both_sites_tunnel_ports(env):
    record = env.m.create(StitchRequest("acme", "segment", 101, 200))
    assert record.encrypted and record.state == "ESTABLISHING"
    assert env.send("a", A3, B1) == (None, [])                       # nothing until both tunnels are up
    env.m.advertise(_ad("a", tunnels=[(record.id, "vxe-st-0")]), env.now)
    assert env.m.confirmed(record.id).state == "ESTABLISHING"
    env.m.advertise(_ad("b", tunnels=[(record.id, "vxe-st-0")]), env.now)
    headers, delivered = env.send("a", A3, B1)
    assert delivered == [2] and "tunnel_id" not in headers           # its own port, not the shared one
    assert env.m.confirmed(record.id).state == "ESTABLISHED"


def test_stitches_survive_a_restart(tmp_path):
    path = str(tmp_path / "stitching.sqlite")
    first = Env(path)
    record = first.m.create(StitchRequest("acme", "segment", 100, 200, id="web-db"))
    first.m.close()
    again = Env(path, advertise=False)
    # Before any route manager speaks again, the sites are known from the store: the
    # switches keep the stitch's flows across the restart.
    assert again.m.get("web-db").vni == record.vni and again.m.get("web-db").plane == record.plane
    assert again.send("a", A1, B1)[1] == [2]
    for site in DP:
        again.m.advertise(_ad(site), again.now)
    assert again.send("a", A1, B1)[1] == [2]
    assert again.m.create(StitchRequest("acme", "segment", 100, 200)).index == 1    # its index stays taken


def test_a_stitch_is_established_once_the_switches_confirmed_it(env):
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    assert record.state == "ESTABLISHING"
    env.m.expire(env.now)                       # the app's one-second step
    assert env.m.get(record.id).state == "ESTABLISHED"
    assert "ESTABLISHED" in env.kinds()


def test_a_stitch_whose_flows_a_switch_refused_is_degraded_not_established(env):
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    env.refused = ["s1 (dp 0000000000000001) refused flow stitch/200 ...: "
                   "OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT"]
    env.m.expire(env.now)
    got = env.m.get(record.id)
    assert got.state == "DEGRADED" and "OFPBAC_BAD_OUT_PORT" in got.detail
    assert "ESTABLISHED" not in env.kinds()
    env.refused = []
    env.m.expire(env.now + 1)                   # not waited for any more: it stays degraded
    assert env.m.get(record.id).state == "DEGRADED"


def _meter(meter_id, byte_in, dropped=0):
    return SimpleNamespace(meter_id=meter_id, byte_in_count=byte_in,
                           band_stats=[SimpleNamespace(byte_band_count=dropped)])


def test_meters_measure_what_each_end_sends_into_the_stitch():
    env = Env()
    record = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=5))
    meter = dataplane.meter_id_of(record.index)
    env.m.meter_stats(DP["a"], [_meter(meter, 0)], 10.0)
    env.m.meter_stats(DP["a"], [_meter(meter, 5_000_000, 3_750_000)], 12.0)    # 20 offered, 5 through
    env.m.meter_stats(DP["b"], [_meter(meter, 0), _meter(meter + 99, 7)], 10.0)
    env.m.meter_stats(DP["b"], [_meter(meter, 250_000)], 12.0)
    ends = env.m.end_rates(record.id)
    assert ends["a"].offered_mbps == pytest.approx(20.0) and ends["a"].delivered_mbps == pytest.approx(5.0)
    assert ends["b"].offered_mbps == pytest.approx(1.0)
    assert env.m.demand_mbps(record.id, 12.0) == pytest.approx(21.0)
    assert env.m.demand_mbps(record.id, 60.0) is None                       # readings gone stale


def _idle_env(**extra):
    env = Env(idle_mbps=1.0, idle_after_s=10.0, **extra)
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    env.m.expire(env.now)                                                   # ESTABLISHED
    return env, record, dataplane.meter_id_of(record.index)


def test_a_stitch_idle_for_long_enough_is_terminated_and_says_why():
    env, record, meter = _idle_env()
    sub = env.m.bus.subscribe(frozenset({"DELETED"}))
    ended_at = None
    for t in range(0, 16, 2):
        env.now = 200.0 + t
        env.m.meter_stats(DP["a"], [_meter(meter, 1000 * t)], env.now)     # 8 kbit/s
        if env.m.check_idle(env.now) == [record.id]:
            ended_at = t
    assert ended_at == 12                       # below 1 Mbit/s from the first rate (t=2) for 10 s
    with pytest.raises(StitchNotFound):
        env.m.get(record.id)
    assert "idle: measured demand 0.008 Mbit/s below 1 for 10 s" in sub.events.get_nowait().detail


class FakePredictor:
    """Forecasts 2.5 Mbit/s at any quantile for every series it is asked about."""

    def __init__(self):
        self.ingested = []

    def ingest(self, samples, labels):
        self.ingested += list(samples)

    def forecast(self, ids, horizons, quantiles):
        return SimpleNamespace(forecasts=[SimpleNamespace(series_id=i, mean=3.0, quantiles=[
            SimpleNamespace(quantile=quantiles[0], value=2.5)]) for i in ids])


def test_a_forecast_above_the_threshold_keeps_a_quiet_stitch():
    env, record, meter = _idle_env()
    env.m.predictor = FakePredictor()
    for t in range(0, 30, 2):
        env.now = 200.0 + t
        env.m.meter_stats(DP["a"], [_meter(meter, 1000 * t)], env.now)
        assert env.m.check_idle(env.now) == []
    assert env.m.get(record.id).state == "ESTABLISHED"
    assert env.m.predictor.ingested[-1][0] == "stitch:st-0"         # the measured demand went to it
    assert env.m.demand_basis.startswith("forecast")


def test_the_apps_one_second_step_establishes_and_ends_idle_stitches():
    env = Env(cls=StitchingApp, idle_mbps=1.0, idle_after_s=1.0)
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    env.m._tick()
    assert env.m.get(record.id).state == "ESTABLISHED"
    meter = dataplane.meter_id_of(record.index)
    for t in (0.0, 1.0, 2.0, 3.0):
        env.now = 300.0 + t
        for site in DP:                                     # the route managers keep talking
            env.m.advertise(_ad(site), env.now)
        env.m.meter_stats(DP["a"], [_meter(meter, int(t))], env.now)
        env.m._tick()
    assert env.m.list() == []


def test_monitoring_reports_the_planes_round_trip_and_metrics():
    env = Env()
    env.m.advertise(_ad("a"), env.now)
    a = _ad("a")
    env.m.advertise(Advertisement("a", DP["a"], HOSTS["a"], tuple(
        Plane(p.plane, p.address, True, 40.0, p.cost, {"b": 1.5}) for p in a.planes)), env.now)
    record = env.m.create(StitchRequest("acme", "segment", 100, 200))
    assert env.m.rtt_ms(record.id) == 1.5
    meter = dataplane.meter_id_of(record.index)
    env.m.meter_stats(DP["a"], [_meter(meter, 0)], 10.0)
    env.m.meter_stats(DP["a"], [_meter(meter, 250_000)], 12.0)
    families = {f.name: f for f in env.m.metric_families()}
    samples = {tuple(s.labels.values()): s.value for s in families["foresight_stitch_rate_mbps"].samples}
    assert samples[(record.id, "a", "offered")] == pytest.approx(1.0)
    states = {s.labels["state"]: s.value for s in families["foresight_stitches"].samples}
    assert states == {"ESTABLISHING": 1, "ESTABLISHED": 0, "DEGRADED": 0}


def test_a_stitch_is_not_moved_for_the_bandwidth_its_own_traffic_uses(env):
    record = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=30))
    env.m.advertise(_ad("a", free=(8.0, 40.0)), env.now + 1)        # plane 1 busy with the stitch itself
    assert env.m.get(record.id).plane == 1


def test_round_trips_and_free_bandwidth_alone_do_not_resync_the_switches(env):
    resyncs = env.resyncs
    a = _ad("a", free=(12.0, 33.0))
    env.m.advertise(Advertisement("a", DP["a"], HOSTS["a"], tuple(
        Plane(p.plane, p.address, p.up, p.available_mbps, p.cost, {"b": 0.7}) for p in a.planes)),
        env.now + 1)
    assert env.resyncs == resyncs
    assert env.m.registry.get("a").planes[0].available_mbps == 12.0     # the registry has the new figures
    env.m.advertise(_ad("a", up=(False, True)), env.now + 2)
    assert env.resyncs == resyncs + 1


def test_a_bandwidth_stitch_is_adjusted_within_policy_and_capacity(env):
    a = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=5))
    assert env.m.adjust_bandwidth(a.id, 8).mbps == 8
    assert env.switch("a").meter_rate_kbps(dataplane.meter_id_of(a.index)) == 8000
    with pytest.raises(StitchRefused, match="at most 30 Mbit/s"):
        env.m.adjust_bandwidth(a.id, 35)
    # 32 of 40 were free
    assert env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=30)).plane == 1
    moved = env.m.adjust_bandwidth(a.id, 25)            # plane 1 has 10 left beside the 30: a moves
    assert (moved.mbps, moved.plane) == (25, 2) and "moved from plane 1" in moved.history[-1]
    assert env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=14)).plane == 2
    with pytest.raises(NoPath, match="keeps 25"):
        env.m.adjust_bandwidth(a.id, 30)                # plane 1: 10 free, plane 2: 26 beside the 14
    assert (env.m.get(a.id).mbps, env.m.get(a.id).plane) == (25, 2)
    plain = env.m.create(StitchRequest("acme", "segment", 100, 200))
    with pytest.raises(InvalidStitch, match="only a bandwidth stitch"):
        env.m.adjust_bandwidth(plain.id, 5)


class PairPredictor(FakePredictor):
    """Forecasts ``value`` for the VN-pair series."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forecast(self, ids, horizons, quantiles):
        return SimpleNamespace(forecasts=[SimpleNamespace(series_id=i, mean=self.value, quantiles=[
            SimpleNamespace(quantile=quantiles[0], value=self.value)]) for i in ids])


def test_a_stitch_is_made_ahead_of_forecast_demand_once():
    predicted = [{"tenant": "acme", "between": [100, 200], "open_mbps": 2.0},
                 {"tenant": "acme", "between": [100, 300], "open_mbps": 2.0}]
    env = Env(predicted=predicted)
    env.m.predictor = PairPredictor(1.0)
    assert env.m.open_predicted(env.now) == []                      # below open_mbps
    env.m.predictor.value = 3.0
    (made,) = env.m.open_predicted(env.now)                         # 100-300 is refused by the policy
    record = env.m.get(made)
    assert (record.a_vnid, record.b_vnid, record.kind) == (100, 200, "segment")
    assert "created forecast 3 Mbit/s 300 s ahead reaches 2" in record.history[0]
    assert env.m.open_predicted(env.now) == []                      # the pair is joined already
    assert env.send("a", A1, B1)[1] == [2]


def test_ovs_ipsec_orders_carry_a_key_and_a_sites_refusal_shows_on_the_stitch():
    env = Env(encryption="ovs-ipsec")
    record = env.m.create(StitchRequest("acme", "segment", 101, 200))
    (order,) = env.m.tunnels_for("a")
    assert (order.mode, order.peer_endpoint, order.local_endpoint, order.vni) == \
        ("ovs-ipsec", "10.101.0.2", "10.101.0.1", record.vni)
    assert len(order.psk) == 48 and env.m.tunnels_for("b")[0].psk == order.psk      # one key, both ends
    env.m.advertise(Advertisement("a", DP["a"], HOSTS["a"], _ad("a").planes,
                                  tunnel_errors=((record.id, "ovs-monitor-ipsec is not running"),)), env.now)
    got = env.m.get(record.id)
    assert got.state == "ESTABLISHING"
    assert got.detail == "site a cannot build the encrypted tunnel: ovs-monitor-ipsec is not running"
    assert env.send("a", A3, B1) == (None, [])


def test_a_bandwidth_stitch_is_a_knob_within_its_policy_cap():
    env = Env()
    a = env.m.create(StitchRequest("acme", "bandwidth", 100, 200, mbps=5))
    env.m.create(StitchRequest("acme", "segment", 100, 200))
    (knob,) = env.m.knobs()                              # segment stitches reserve no rate
    assert (knob.kind, knob.target, knob.field, knob.value, knob.high) == ("stitch", a.id, "bandwidth_mbps",
                                                                           5, 30)
    assert knob.series_id == f"stitch:{a.id}"
    assert env.m.set_knob("stitch", a.id, "bandwidth_mbps", 8).value == 8
    assert env.switch("a").meter_rate_kbps(dataplane.meter_id_of(a.index)) == 8000
    from controller.appbase import KnobError
    with pytest.raises(KnobError, match="at most 30 Mbit/s"):
        env.m.set_knob("stitch", a.id, "bandwidth_mbps", 35)
    assert env.m.get(a.id).mbps == 8
