"""Tests for controller.cookies: who owns a flow cookie, a group id, a meter id."""

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller import cookies
from controller.cookies import CookieError


@pytest.mark.parametrize("owner", sorted(cookies.OWNERS))
@pytest.mark.parametrize("low", [0, 1, 0xBEEF, cookies.LOW_MASK])
def test_cookie_owner_round_trip(owner, low):
    value = cookies.cookie(owner, low)
    assert cookies.owner_of(value) == owner
    assert value & cookies.LOW_MASK == low
    assert value < 2 ** 64


def test_owner_codes_are_distinct():
    assert len(set(cookies.OWNERS.values())) == len(cookies.OWNERS)
    assert len(set(cookies.ID_OWNERS.values())) == len(cookies.ID_OWNERS)


def test_unknown_owner_is_an_error():
    with pytest.raises(CookieError, match="unknown cookie owner 'acl'"):
        cookies.cookie("acl")


@pytest.mark.parametrize("low", [cookies.LOW_MASK + 1, 1 << 60, -1])
def test_low_part_that_does_not_fit_is_an_error(low):
    with pytest.raises(CookieError, match="does not fit in 48 bits"):
        cookies.cookie("forwarding", low)


@pytest.mark.parametrize("value", [0, 0xDEAD << cookies.OWNER_SHIFT, 0x1234])
def test_cookies_nobody_owns_have_no_owner(value):
    assert cookies.owner_of(value) is None


# ---- group and meter ids -----------------------------------------------------------------------

def test_slices_own_cookies_groups_and_meters():
    assert cookies.owner_of(cookies.cookie("slices", 7)) == "slices"
    assert cookies.id_owner(cookies.group_id("slices", 7)) == "slices"
    assert cookies.id_owner(cookies.meter_id("slices", 7)) == "slices"


@pytest.mark.parametrize("owner", sorted(cookies.ID_OWNERS))
@pytest.mark.parametrize("low", [0, 1, 0xBEEF, cookies.ID_LOW_MASK])
def test_group_and_meter_ids_round_trip_and_stay_below_the_reserved_ids(owner, low):
    gid, mid = cookies.group_id(owner, low), cookies.meter_id(owner, low)
    assert gid == mid and gid & cookies.ID_LOW_MASK == low
    assert cookies.id_owner(gid) == owner
    assert 0 < gid <= ofp.OFPG_MAX and 0 < mid <= ofp.OFPM_MAX


@pytest.mark.parametrize("value", [0, 1, 0x00FFFFFF, 0xFE000001, ofp.OFPG_ANY, ofp.OFPM_ALL, 1 << 40])
def test_ids_nobody_owns_have_no_owner(value):
    # Low ids are where ovs-ofctl users and other controllers put theirs.
    assert cookies.id_owner(value) is None


def test_owners_without_an_id_range_cannot_make_ids():
    with pytest.raises(CookieError, match="unknown group id owner 'flooding'"):
        cookies.group_id("flooding", 1)
    with pytest.raises(CookieError, match="unknown meter id owner 'acl'"):
        cookies.meter_id("acl", 1)


@pytest.mark.parametrize("low", [cookies.ID_LOW_MASK + 1, -1])
def test_id_low_part_that_does_not_fit_is_an_error(low):
    with pytest.raises(CookieError, match="does not fit in 24 bits"):
        cookies.group_id("slices", low)
