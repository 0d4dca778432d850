"""Resource pools: deterministic all-or-nothing allocation, one slice per member, safe unregistering."""

from __future__ import annotations

import ipaddress

import pytest

from apps.slices.model import Conflict, Exhausted, InvalidMember, InvalidSlice
from apps.slices.pool import Member, ResourcePool


def _pool(*pools: tuple[str, int]) -> ResourcePool:
    """Pools of hosts 02:00:00:00:<pool index>:<n>, registered in reverse order on purpose."""
    rp = ResourcePool()
    for p, (name, size) in enumerate(pools):
        for n in reversed(range(size)):
            rp.register(name, f"02:00:00:00:{p:02x}:{n:02x}", f"10.{p}.0.{n + 1}")
    return rp


def _ids(members) -> list[str]:
    return [m.host_id for m in members]


def test_allocation_takes_free_members_of_the_pool_sorted_by_host_id():
    rp = _pool(("edge", 4), ("core", 2))
    got = rp.allocate("edge", "web", 2)
    assert _ids(got) == ["02:00:00:00:00:00", "02:00:00:00:00:01"]
    assert all(m.pool == "edge" for m in got)
    assert _ids(rp.members_of("web")) == _ids(got)
    assert _ids(rp.allocate("edge", "web", 1)) == ["02:00:00:00:00:02"]


def test_the_same_state_always_allocates_the_same_members():
    first, second = _pool(("edge", 6)), _pool(("edge", 6))
    for rp in (first, second):
        rp.allocate("edge", "a", 2)
        rp.release("a", ["02:00:00:00:00:00"])
    assert _ids(first.allocate("edge", "b", 3)) == _ids(second.allocate("edge", "b", 3))


def test_a_member_is_never_allocated_to_two_slices():
    rp = _pool(("edge", 5))
    a = set(_ids(rp.allocate("edge", "a", 3)))
    b = set(_ids(rp.allocate("edge", "b", 2)))
    assert not a & b and len(a | b) == 5
    assert {rp.owner_of(h) for h in a} == {"a"} and {rp.owner_of(h) for h in b} == {"b"}
    with pytest.raises(Exhausted):
        rp.allocate("edge", "c", 1)


def test_allocation_is_all_or_nothing_and_the_error_says_how_short():
    rp = _pool(("edge", 3))
    rp.allocate("edge", "a", 1)
    with pytest.raises(Exhausted) as err:
        rp.allocate("edge", "b", 3)
    assert str(err.value) == "pool 'edge': wanted 3 member(s) for slice 'b', 2 available"
    assert (err.value.wanted, err.value.available) == (3, 2)
    assert rp.members_of("b") == [] and len(rp.free("edge")) == 2
    assert len(rp.allocate("edge", "b", 2)) == 2


def test_an_unknown_pool_has_nothing_to_give():
    rp = _pool(("edge", 2))
    with pytest.raises(Exhausted, match=r"^pool 'gpu': wanted 1 member\(s\) for slice 'a', 0 available$"):
        rp.allocate("gpu", "a", 1)
    assert rp.allocate("gpu", "a", 0) == []


def test_released_members_can_serve_another_slice_and_releasing_twice_is_harmless():
    rp = _pool(("edge", 2))
    rp.allocate("edge", "a", 2)
    assert rp.release("a", ["02:00:00:00:00:01"]) == ["02:00:00:00:00:01"]
    assert rp.release("a", ["02:00:00:00:00:01"]) == []
    assert _ids(rp.allocate("edge", "b", 1)) == ["02:00:00:00:00:01"]
    assert _ids(rp.members_of("a")) == ["02:00:00:00:00:00"]


def test_a_slice_cannot_release_another_slices_member():
    rp = _pool(("edge", 3))
    rp.allocate("edge", "a", 1)
    rp.allocate("edge", "b", 1)
    with pytest.raises(Conflict, match=r"^member '02:00:00:00:00:01': serves slice 'b', not slice 'a'$"):
        rp.release("a", ["02:00:00:00:00:00", "02:00:00:00:00:01"])
    assert rp.owner_of("02:00:00:00:00:00") == "a" and rp.owner_of("02:00:00:00:00:01") == "b"
    assert rp.release_all("a") == ["02:00:00:00:00:00"] and rp.members_of("a") == []


def test_unregistering_a_member_that_serves_a_slice_is_refused():
    rp = _pool(("edge", 2))
    rp.allocate("edge", "web", 1)
    with pytest.raises(Conflict, match=r"^member '02:00:00:00:00:00': serves slice 'web' in pool 'edge'"):
        rp.unregister("02:00:00:00:00:00")
    assert rp.member("02:00:00:00:00:00") is not None
    rp.release_all("web")
    assert rp.unregister("02:00:00:00:00:00").host_id == "02:00:00:00:00:00"
    assert rp.unregister("02:00:00:00:00:00") is None
    assert _ids(rp.members("edge")) == ["02:00:00:00:00:01"]


def test_a_host_belongs_to_one_pool_and_re_registering_updates_it():
    rp = _pool(("edge", 1))
    with pytest.raises(Conflict, match=r"already in pool 'edge', cannot join pool 'core'"):
        rp.register("core", "02:00:00:00:00:00", "10.9.0.1")
    before = rp.version
    rp.register("edge", "02:00:00:00:00:00", "10.0.0.1")
    assert rp.version == before                          # nothing changed, nothing to save
    moved = rp.register("edge", "02:00:00:00:00:00", "10.0.0.77", {"rack": "r2"})
    assert rp.member("02:00:00:00:00:00") == moved and moved.ipv4 == ipaddress.IPv4Address("10.0.0.77")
    assert dict(moved.labels) == {"rack": "r2"} and rp.version > before


def test_bad_member_input_names_the_field():
    rp = ResourcePool()
    with pytest.raises(InvalidMember, match=r"^ipv4: not an IPv4 address: '10.0.0.300'$"):
        rp.register("edge", "02:00:00:00:00:01", "10.0.0.300")
    with pytest.raises(InvalidMember, match=r"^host_id: must not be empty$"):
        rp.register("edge", "", "10.0.0.1")
    with pytest.raises(InvalidMember, match=r"^labels.rack: label keys and values must be strings$"):
        rp.register("edge", "02:00:00:00:00:01", "10.0.0.1", {"rack": 3})
    with pytest.raises(InvalidSlice, match=r"^count: must be >= 0, got -1$"):
        rp.allocate("edge", "a", -1)
    assert rp.members() == []


def test_a_slice_draws_all_its_members_from_one_pool():
    rp = _pool(("edge", 2), ("core", 2))
    rp.allocate("edge", "web", 1)
    with pytest.raises(Conflict, match=r"^slice 'web': holds members of pool 'edge', cannot take members"):
        rp.allocate("core", "web", 1)
    assert len(rp.free("core")) == 2


def test_labels_cannot_be_changed_behind_the_pools_back():
    labels = {"rack": "r1"}
    m = Member(host_id="h1", pool="edge", ipv4="10.0.0.1", labels=labels)
    labels["rack"] = "r9"
    assert m.labels["rack"] == "r1"
    with pytest.raises(TypeError):
        m.labels["rack"] = "r9"                            # read-only view
    assert m.to_dict() == {"host_id": "h1", "pool": "edge", "ipv4": "10.0.0.1", "labels": {"rack": "r1"}}


def test_restore_rebuilds_the_same_allocations_and_refuses_dangling_ones():
    rp = _pool(("edge", 4))
    rp.allocate("edge", "a", 2)
    copy = ResourcePool.restore(rp.members(), rp.allocations())
    assert copy.allocations() == rp.allocations()
    assert _ids(copy.allocate("edge", "b", 1)) == _ids(rp.allocate("edge", "b", 1))
    with pytest.raises(Conflict, match=r"^member 'ghost': allocated to slice 'a' but not registered$"):
        ResourcePool.restore(rp.members(), {"ghost": "a"})
