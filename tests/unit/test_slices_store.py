"""The slices state file: a restart restores the same allocations, addresses and next decisions;
changes are atomic; deleting a slice takes its state with it; newer files are refused."""

from __future__ import annotations

import sqlite3
from ipaddress import IPv4Address

import pytest

from apps.slices.model import Slice
from apps.slices.pool import ResourcePool
from apps.slices.scaling import Forecast, ScalingPolicy
from apps.slices.store import SCHEMA_VERSION, SliceStore, StoreError
from apps.slices.vips import VipAllocator


def _slice(name: str, cidr: str, **changes) -> Slice:
    data = {"name": name, "client": "ACME", "vip_cidr": cidr, "bandwidth_mbps": 100, "per_member_mbps": 10,
            "pool": "edge", "max_members": 4, "dissolve_after_s": 600}
    data.update(changes)
    return Slice(**data)


class _Live:
    """What the controller keeps in memory, saved to the store after every change."""

    def __init__(self, store: SliceStore, hosts: int = 8):
        self.store = store
        self.pool, self.vips, self.policy = ResourcePool(), VipAllocator(), ScalingPolicy()
        self.slices: dict[str, Slice] = {}
        for n in range(hosts):
            store.put_member(self.pool.register("edge", f"02:00:00:00:00:{n:02x}", f"10.0.0.{n + 1}",
                                                {"rack": f"r{n % 2}"}))

    def create(self, slice_: Slice, members: int) -> None:
        with self.store.transaction():
            self.slices[slice_.name] = slice_
            self.store.put_slice(slice_)
            self.vips.reserve_range(slice_.name, slice_.vip_cidr)
            self.resize(slice_.name, members)

    def resize(self, name: str, members: int) -> None:
        have = self.pool.members_of(name)
        with self.store.transaction():
            if members > len(have):
                for m in self.pool.allocate(self.slices[name].pool, name, members - len(have)):
                    self.vips.assign(name, m.host_id)
            for m in have[members:]:
                self.pool.release(name, [m.host_id])
                self.vips.reclaim(name, m.host_id)
            self.store.put_allocations(name, [m.host_id for m in self.pool.members_of(name)])
            self.store.put_vip_range(self.vips.range_state(name))

    def tick(self, now: float, name: str, forecast_mbps: float, measured_mbps: float):
        d = self.policy.decide(now, self.slices[name], len(self.pool.members_of(name)),
                               Forecast(forecast_mbps, 600.0), measured_mbps)
        with self.store.transaction():
            if d.target_members and d.action in ("scale_up", "scale_down"):
                self.resize(name, d.target_members)
            self.store.put_policy(self.policy)
        return d


def _scenario(tmp_path) -> tuple[_Live, str]:
    path = str(tmp_path / "slices.sqlite")
    live = _Live(SliceStore(path))
    live.create(_slice("web", "10.20.0.0/29"), 1)
    live.create(_slice("db", "10.30.0.0/24", max_members=3), 2)
    live.tick(0.0, "web", 35.0, 5.0)            # web -> 4 members
    live.tick(10.0, "web", 12.0, 5.0)           # a lower target appears: timer starts
    live.tick(20.0, "web", 12.0, 5.0)
    live.resize("db", 1)                        # db gives one member back: its address is reclaimed
    return live, path


def test_a_restart_restores_the_same_allocations_addresses_and_next_decision(tmp_path):
    live, path = _scenario(tmp_path)
    live.store.close()
    stored = SliceStore(path).load()
    assert stored.slices == live.slices
    assert stored.pool.members() == live.pool.members()
    assert stored.pool.allocations() == live.pool.allocations()
    assert stored.vips.ranges() == live.vips.ranges()
    assert stored.vips.service_vip("web") == live.slices["web"].service_vip
    policy = stored.policy()
    assert policy.to_dict() == live.policy.to_dict()
    # The next decision is the same: the scale-down wait carries on from t=10 s.
    after = policy.decide(70.0, stored.slices["web"], len(stored.pool.members_of("web")),
                          Forecast(12.0, 600.0), 5.0)
    assert after == live.policy.decide(70.0, live.slices["web"], 4, Forecast(12.0, 600.0), 5.0)
    assert (after.action, after.target_members) == ("scale_down", 2)
    # And so are the next members and addresses: db's reclaimed address is still not reused first.
    assert [m.host_id for m in stored.pool.allocate("edge", "db", 1)] == \
        [m.host_id for m in live.pool.allocate("edge", "db", 1)]
    assert stored.vips.range_state("db").reclaimed == (IPv4Address("10.30.0.3"),)
    assert stored.vips.assign("db", "new") == live.vips.assign("db", "new") == IPv4Address("10.30.0.4")


def test_a_failed_change_leaves_nothing_of_itself_behind(tmp_path):
    live, path = _scenario(tmp_path)
    before = live.store.load()
    with pytest.raises(StoreError, match=r"change not saved: FOREIGN KEY constraint failed"):
        with live.store.transaction():
            live.store.put_slice(_slice("cache", "10.40.0.0/24"))
            live.store.put_allocations("cache", ["02:00:00:00:00:07", "no-such-host"])
    after = SliceStore(path).load()
    assert sorted(after.slices) == sorted(before.slices) == ["db", "web"]
    assert after.pool.allocations() == before.pool.allocations()


def test_an_exception_in_the_callers_code_rolls_the_transaction_back(tmp_path):
    store = SliceStore(tmp_path / "s.sqlite")
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.put_slice(_slice("web", "10.20.0.0/29"))
            raise RuntimeError("boom")
    assert store.load().slices == {}
    store.put_slice(_slice("web", "10.20.0.0/29"))              # the store is still usable
    assert list(store.load().slices) == ["web"]


def test_deleting_a_slice_takes_its_allocations_addresses_and_timers_with_it(tmp_path):
    live, path = _scenario(tmp_path)
    live.store.del_slice("web")
    stored = SliceStore(path).load()
    assert list(stored.slices) == ["db"]
    assert set(stored.pool.allocations().values()) == {"db"}
    assert stored.vips.slices() == ["db"]
    assert "web" not in stored.policy_state["slices"]
    assert len(stored.pool.members()) == 8                       # the hosts stay in their pool
    assert len(stored.pool.allocate("edge", "other", 7)) == 7    # and are free again


def test_updating_a_slice_keeps_its_members_and_range(tmp_path):
    live, path = _scenario(tmp_path)
    live.store.put_slice(_slice("web", "10.20.0.0/29", bandwidth_mbps=250, priority="gold"))
    stored = SliceStore(path).load()
    assert stored.slices["web"].bandwidth_mbps == 250 and stored.slices["web"].priority.dscp == 46
    assert len(stored.pool.members_of("web")) == 4 and len(stored.vips.assignments("web")) == 4


def test_a_member_that_serves_a_slice_cannot_be_deleted(tmp_path):
    live, path = _scenario(tmp_path)
    busy = live.pool.members_of("web")[0].host_id
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        live.store.del_member(busy)
    assert SliceStore(path).load().pool.owner_of(busy) == "web"


def test_policy_timers_of_unstored_slices_are_not_kept(tmp_path):
    store = SliceStore(tmp_path / "s.sqlite")
    policy = ScalingPolicy()
    policy.decide(0.0, _slice("ghost", "10.50.0.0/24"), 3, None, 0.0)
    store.put_policy(policy)
    assert store.load().policy_state["slices"] == {}


def test_a_fresh_file_gives_an_empty_state_and_a_policy_from_the_configuration(tmp_path):
    stored = SliceStore(tmp_path / "new" / "s.sqlite").load()
    assert stored.slices == {} and stored.pool.members() == [] and stored.vips.ranges() == []
    assert stored.policy_state is None
    assert stored.policy(scale_down_after_s=5).scale_down_after_s == 5


def test_the_file_uses_wal_and_records_its_schema_version(tmp_path):
    path = tmp_path / "s.sqlite"
    SliceStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)


def test_a_file_from_a_newer_version_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.sqlite"
    SliceStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError,
                       match=rf"written by a newer version \(schema version {SCHEMA_VERSION + 1}\); "
                             rf"this version reads schema {SCHEMA_VERSION}"):
        SliceStore(path)
    assert sqlite3.connect(path).execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] \
        == str(SCHEMA_VERSION + 1)


def test_unusable_files_and_rows_are_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create its directory"):
        SliceStore(blocker / "sub" / "s.sqlite")
    path = tmp_path / "s.sqlite"
    store = SliceStore(path)
    store.put_slice(_slice("web", "10.20.0.0/29"))
    store.db.execute("UPDATE slices SET bandwidth_mbps=-5")          # written by hand, say
    with pytest.raises(StoreError, match=r"unusable stored state: bandwidth_mbps: must be > 0, got -5"):
        store.load()
