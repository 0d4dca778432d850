"""VIP ranges: no overlaps between slices, the service VIP first, addresses never handed out twice,
a released address reused last, virtual MACs, and state that survives a restart."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network

import pytest

from apps.slices.model import Conflict, Exhausted, InvalidSlice, SliceNotFound
from apps.slices.vips import VipAllocator, VipRange, virtual_mac


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_the_first_usable_address_is_the_service_vip_and_members_follow_in_order():
    va = VipAllocator()
    assert va.reserve_range("web", "10.20.0.0/29") == ip("10.20.0.1")
    assert va.service_vip("web") == ip("10.20.0.1")
    handed = [va.assign("web", m) for m in ("m1", "m2", "m3")]
    assert handed == [ip("10.20.0.2"), ip("10.20.0.3"), ip("10.20.0.4")]
    assert va.assign("web", "m2") == ip("10.20.0.3")            # same member, same address
    assert va.assignments("web") == {"m1": ip("10.20.0.2"), "m2": ip("10.20.0.3"), "m3": ip("10.20.0.4")}
    assert va.owner_of("10.20.0.1") == ("web", None) and va.owner_of("10.20.0.3") == ("web", "m2")
    assert va.owner_of("10.20.0.6") is None and va.owner_of("192.0.2.1") is None


def test_an_overlapping_range_is_refused_and_the_first_slices_range_still_works():
    va = VipAllocator()
    va.reserve_range("a", "10.20.0.0/24")
    va.assign("a", "m1")
    with pytest.raises(Conflict) as err:
        va.reserve_range("b", "10.20.0.128/25")
    assert str(err.value) == ("vip range 10.20.0.128/25 of slice 'b': overlaps vip range 10.20.0.0/24 "
                              "of slice 'a'")
    with pytest.raises(Conflict, match="overlaps vip range 10.20.0.0/24 of slice 'a'"):
        va.reserve_range("b", "10.20.0.0/16")                  # a supernet overlaps too
    assert va.assign("a", "m2") == ip("10.20.0.3")
    assert va.range_of("a") == IPv4Network("10.20.0.0/24")
    with pytest.raises(SliceNotFound, match=r"^slice 'b': has no vip range$"):
        va.assign("b", "m1")
    assert va.reserve_range("b", "10.20.1.0/24") == ip("10.20.1.1")   # adjacent is fine


def test_a_slice_holds_one_range():
    va = VipAllocator()
    va.reserve_range("a", "10.20.0.0/24")
    assert va.reserve_range("a", "10.20.0.0/24") == ip("10.20.0.1")   # again: no-op
    with pytest.raises(Conflict, match=r"^slice 'a': already holds vip range 10.20.0.0/24"):
        va.reserve_range("a", "10.30.0.0/24")
    with pytest.raises(InvalidSlice, match=r"^vip_cidr: prefix length must be 16..30"):
        va.reserve_range("c", "10.40.0.0/31")
    assert va.slices() == ["a"]


def test_a_reclaimed_address_is_not_the_next_one_handed_out():
    va = VipAllocator()
    va.reserve_range("web", "10.20.0.0/29")                     # members: .2 .. .6
    va.assign("web", "m1")
    va.assign("web", "m2")
    assert va.reclaim("web", "m1") == ip("10.20.0.2")
    assert va.assign("web", "m3") == ip("10.20.0.4")
    assert va.assign("web", "m1") == ip("10.20.0.5")            # m1 returns: a fresh address, not .2
    va.reclaim("web", "m3")
    assert va.assign("web", "m4") == ip("10.20.0.6")            # last never-used address
    # Only now are reclaimed addresses reused, oldest reclaimed first.
    assert va.assign("web", "m5") == ip("10.20.0.2")
    assert va.assign("web", "m6") == ip("10.20.0.4")


def test_a_full_range_is_exhausted_until_an_address_is_reclaimed():
    va = VipAllocator()
    va.reserve_range("web", "10.20.0.0/30")                     # .1 VIP, .2 the only member address
    va.assign("web", "m1")
    with pytest.raises(Exhausted) as err:
        va.assign("web", "m2")
    assert str(err.value) == ("vip range 10.20.0.0/30 of slice 'web': no address left for member 'm2': "
                              "all 1 member address(es) are assigned")
    va.reclaim("web", "m1")
    assert va.reclaim("web", "m1") is None
    assert va.assign("web", "m2") == ip("10.20.0.2")


def test_no_address_is_ever_held_by_two_members():
    rnd = random.Random(7)
    va = VipAllocator()
    cidr = IPv4Network("10.20.0.0/28")
    va.reserve_range("web", cidr)
    members = [f"m{i}" for i in range(20)]
    for _ in range(2000):
        member = rnd.choice(members)
        if rnd.random() < 0.55:
            try:
                va.assign("web", member)
            except Exhausted:
                assert len(va.assignments("web")) == 13          # 14 usable minus the VIP
        else:
            va.reclaim("web", member)
        held = list(va.assignments("web").values())
        assert len(held) == len(set(held))
        assert all(a in cidr and a != va.service_vip("web") and a != cidr.broadcast_address for a in held)


def test_a_released_range_frees_it_for_other_slices():
    va = VipAllocator()
    va.reserve_range("a", "10.20.0.0/24")
    va.assign("a", "m1")
    assert va.release_range("a") == IPv4Network("10.20.0.0/24")
    assert va.release_range("a") is None
    with pytest.raises(SliceNotFound):
        va.assign("a", "m1")
    assert va.reserve_range("b", "10.20.0.0/16") == ip("10.20.0.1")


def test_virtual_macs_are_deterministic_locally_administered_unicast_and_distinct():
    assert virtual_mac("10.20.0.1") == "02:fe:0a:14:00:01"
    assert virtual_mac(ip("10.20.0.1")) == virtual_mac("10.20.0.1")
    first_octet = int(virtual_mac("192.168.7.9").split(":")[0], 16)
    assert first_octet & 0b10 and not first_octet & 0b01      # locally administered, unicast
    macs = {virtual_mac(a) for a in IPv4Network("10.20.0.0/24")}
    assert len(macs) == 256


def test_restored_state_hands_out_the_same_next_addresses():
    va = VipAllocator()
    va.reserve_range("web", "10.20.0.0/29")
    va.reserve_range("db", "10.30.0.0/30")
    for m in ("m1", "m2", "m3"):
        va.assign("web", m)
    va.reclaim("web", "m2")
    copy = VipAllocator.restore(va.ranges())
    assert copy.ranges() == va.ranges()
    assert copy.assignments("web") == va.assignments("web")
    for m in ("m4", "m5", "m6"):
        assert copy.assign("web", m) == va.assign("web", m)
    assert copy.assign("web", "m6") == ip("10.20.0.3")           # the reclaimed one, only at the end
    with pytest.raises(Conflict, match="overlaps"):
        copy.reserve_range("x", "10.30.0.0/29")


def test_restore_refuses_state_that_would_hand_out_an_address_twice():
    net = IPv4Network("10.20.0.0/29")
    twice = VipRange("web", net, 4, (("m1", ip("10.20.0.2")), ("m2", ip("10.20.0.2"))))
    with pytest.raises(Conflict, match=r"^vip range 10.20.0.0/29 of slice 'web': an address is both"):
        VipAllocator.restore([twice])
    beyond = VipRange("web", net, 3, (("m1", ip("10.20.0.5")),))
    with pytest.raises(Conflict, match="address 10.20.0.5 was never handed out"):
        VipAllocator.restore([beyond])
    overlapping = [VipRange("a", net), VipRange("b", IPv4Network("10.20.0.0/30"))]
    with pytest.raises(Conflict, match="overlaps"):
        VipAllocator.restore(overlapping)
