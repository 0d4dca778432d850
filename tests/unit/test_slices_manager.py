"""SliceManager: intent changes are atomic, durable and published; counters become rates."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

from apps.slices import dataplane
from apps.slices.manager import SliceManager
from apps.slices.model import Conflict, Exhausted, InvalidSlice, SliceExists, SliceNotFound
from apps.slices.scaling import Forecast
from apps.slices.store import SliceStore
from controller.config import Config
from controller.core import ControllerCore


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def spec(name="web", cidr="10.50.0.0/29", **over):
    data = dict(name=name, client="acme", vip_cidr=cidr, bandwidth_mbps=10, per_member_mbps=5, pool="servers",
                min_members=1, max_members=4, priority="gold")
    data.update(over)
    return data


@pytest.fixture
def env(tmp_path):
    core = ControllerCore(Config())
    clock = Clock()
    resyncs = []
    store = SliceStore(tmp_path / "slices.sqlite")
    manager = SliceManager(core.view, lambda: resyncs.append(1), store, drain_s=30, clock=clock,
                           auto_drain=False)
    for i in range(1, 7):
        manager.register_member("servers", f"h{i}", f"10.0.0.{i}")
    yield SimpleNamespace(core=core, clock=clock, manager=manager, store=store,
                          path=tmp_path / "slices.sqlite", resyncs=resyncs)
    store.close()


def state(manager):
    return ([(v.slice, v.members) for v in manager.list()], manager.pool.allocations(), manager.vips.ranges())


def test_create_allocates_members_and_addresses(env):
    view = env.manager.create(spec(), members=2)
    assert view.service_vip == "10.50.0.1"
    assert view.virtual_mac == "02:fe:0a:32:00:01"
    assert [(m.host_id, m.vip) for m in view.members] == [("h1", "10.50.0.2"), ("h2", "10.50.0.3")]
    assert env.resyncs, "the controller is asked to install the slice"
    assert env.manager.claims("10.50.0.1") == "02:fe:0a:32:00:01"


def test_refused_changes_leave_state_unchanged(env):
    env.manager.create(spec(), members=2)
    before = state(env.manager)
    with pytest.raises(Conflict, match="overlaps vip range 10.50.0.0/29"):
        env.manager.create(spec(name="other", cidr="10.50.0.0/30", max_members=1))
    with pytest.raises(SliceExists):
        env.manager.create(spec(cidr="10.60.0.0/29"))
    with pytest.raises(InvalidSlice, match="bandwidth_mbps: must be > 0"):
        env.manager.create(spec(name="zero", cidr="10.70.0.0/29", bandwidth_mbps=0))
    with pytest.raises(Exhausted, match="wanted 5 member.*4 available"):
        env.manager.create(spec(name="big", cidr="10.80.0.0/28", max_members=8), members=5)
    with pytest.raises(SliceNotFound):
        env.manager.scale("nope", 2)
    with pytest.raises(InvalidSlice, match="members: must be within"):
        env.manager.scale("web", 5)
    with pytest.raises(SliceNotFound):
        env.manager.delete("nope")
    assert state(env.manager) == before
    # ... and so does the file: a restarted manager sees the same.
    again = SliceManager(env.core.view, store=SliceStore(env.path), auto_drain=False)
    assert state(again) == before


def test_a_failed_store_write_rolls_memory_back(env, monkeypatch):
    env.manager.create(spec(), members=1)
    before = state(env.manager)

    def broken(*_a, **_k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(env.store, "put_vip_range", broken)
    with pytest.raises(RuntimeError):
        env.manager.scale("web", 3)
    assert state(env.manager) == before
    assert len(env.manager.pool.free("servers")) == 5


def test_scale_down_drains_then_reclaims(env):
    env.manager.create(spec(), members=3)
    view = env.manager.scale("web", 1)
    draining = [m.host_id for m in view.members if m.draining_until is not None]
    assert draining == ["h2", "h3"], "the newest members leave first"
    assert [m.host_id for m in view.active] == ["h1"]
    assert env.manager.pool.owner_of("h3") == "web", "still allocated while draining"
    env.clock.now += 29
    assert env.manager.finish_drains() == []
    env.clock.now += 1
    assert env.manager.finish_drains() == ["h2", "h3"]
    assert [m.host_id for m in env.manager.get("web").members] == ["h1"]
    assert env.manager.pool.owner_of("h3") is None
    # Reclaimed addresses are not handed out while never-used ones remain.
    view = env.manager.scale("web", 2)
    assert [m.vip for m in view.members] == ["10.50.0.2", "10.50.0.5"]


def test_scale_up_revives_draining_members_first(env):
    env.manager.create(spec(), members=3)
    env.manager.scale("web", 1)
    view = env.manager.scale("web", 4)
    assert [(m.host_id, m.vip, m.draining_until) for m in view.members] == [
        ("h1", "10.50.0.2", None), ("h2", "10.50.0.3", None), ("h3", "10.50.0.4", None),
        ("h4", "10.50.0.5", None)]


def test_drains_survive_a_restart(env):
    env.manager.create(spec(), members=2)
    env.manager.scale("web", 1)
    again = SliceManager(env.core.view, store=SliceStore(env.path), clock=env.clock, auto_drain=False)
    assert [(m.host_id, m.draining_until) for m in again.get("web").members] == [("h1", None), ("h2", 1030.0)]
    env.clock.now += 31
    assert again.finish_drains() == ["h2"]


def test_delete_returns_everything(env):
    env.manager.create(spec(), members=2)
    env.manager.delete("web")
    assert env.manager.list() == []
    assert len(env.manager.pool.free("servers")) == 6
    assert env.manager.claims("10.50.0.1") is None
    env.manager.create(spec(), members=1)          # the range is free again
    assert env.manager.get("web").index == 0, "indices are reused"


def test_events_tell_the_story(env):
    sub = env.manager.bus.subscribe()
    env.manager.create(spec(), members=2)
    env.manager.scale("web", 1)
    env.clock.now += 60
    env.manager.finish_drains()
    env.manager.delete("web")
    events = []
    while not sub.events.empty():
        events.append(sub.events.get())
    assert [e.kind for e in events] == ["CREATED", "SCALED", "DRAINED", "DELETED"]
    assert "2 -> 1: draining h2" in events[1].detail
    assert "reclaimed 10.50.0.3" in events[2].detail
    assert events[3].view is None


def test_member_vip_arp_answers_with_the_member_mac(env):
    env.manager.create(spec(), members=1)
    assert env.manager.claims("10.50.0.2") is None, "member not seen yet"
    env.core.switch_connected(1, [], 0.0)
    env.core.hosts.learn("00:00:00:00:00:01", 1, 3, "10.0.0.1", 0.0)
    assert env.manager.claims("10.50.0.2") == "00:00:00:00:00:01"
    assert env.manager.claims("10.50.0.9") is None


def meter_stat(meter_id, byte_in, dropped):
    return SimpleNamespace(meter_id=meter_id, byte_in_count=byte_in,
                           band_stats=[SimpleNamespace(byte_band_count=dropped)])


def test_meter_counters_become_offered_and_delivered_rates(env):
    env.manager.create(spec(), members=1)
    sid = dataplane.ids(env.manager.get("web").index)
    env.manager.meter_stats(1, [meter_stat(sid.meter_in, 0, 0), meter_stat(sid.meter_out, 0, 0)], 10.0)
    # 20 Mbit/s offered for 2 s, 10 Mbit/s of it dropped; 1 Mbit/s back.
    env.manager.meter_stats(1, [meter_stat(sid.meter_in, 5_000_000, 2_500_000),
                                meter_stat(sid.meter_out, 250_000, 0)], 12.0)
    rates = env.manager.get("web").rates
    assert rates.offered_in_mbps == pytest.approx(20.0)
    assert rates.delivered_in_mbps == pytest.approx(10.0)
    assert rates.offered_out_mbps == pytest.approx(1.0)
    assert rates.dropped_bytes_in == 2_500_000
    # A counter reset (meter modified or re-created) gives no negative rate and no drop
    # to zero: the rate before it stands until the next reading; the byte totals
    # (Prometheus counters) keep growing by what the new meter counted.
    env.manager.meter_stats(1, [meter_stat(sid.meter_in, 100, 0)], 14.0)
    rates = env.manager.get("web").rates
    assert rates.offered_in_mbps == pytest.approx(20.0)
    assert (rates.bytes_in, rates.dropped_bytes_in) == (5_000_100, 2_500_000)


def test_decisions_scale_ahead_of_forecast_demand(env):
    env.manager.create(spec(), members=1)
    decision = env.manager.decide("web", 5000.0, Forecast(18.0, 300.0), measured_mbps=4.0)
    assert (decision.action, decision.target_members, decision.basis, decision.lead_time_s) == \
        ("scale_up", 4, "forecast", 300.0)
    assert len(env.manager.get("web").active) == 4
    assert env.manager.get("web").last_decision == decision
    # Without a forecast the measured load decides, and says so.
    decision = env.manager.decide("web", 5010.0, None, measured_mbps=3.0)
    assert decision.basis == "measured" and "no forecast" in decision.reason


def test_a_scale_up_the_pool_cannot_serve_is_reported_not_raised(env):
    env.manager.create(spec(name="a", cidr="10.50.0.0/28", max_members=10), members=5)
    decision = env.manager.decide("a", 100.0, Forecast(50.0, 300.0), measured_mbps=0.0)
    assert decision.action == "scale_up"
    assert len(env.manager.get("a").active) == 5
    assert (ipaddress.IPv4Address(env.manager.get("a").members[-1].vip)
            in ipaddress.IPv4Network("10.50.0.0/28"))
