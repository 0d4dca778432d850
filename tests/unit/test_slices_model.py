"""Slice definitions: what a valid slice looks like, and bad input refused with the field named."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from apps.slices.model import (Conflict, Exhausted, InvalidSlice, PriorityClass, Slice, SliceError,
                               SliceExists, SliceNotFound, slice_from_dict)


def _request(**changes) -> dict:
    data = {"name": "web-a", "client": "ACME Corp", "vip_cidr": "10.20.0.0/24", "bandwidth_mbps": 100,
            "per_member_mbps": 10, "pool": "edge", "max_members": 4}
    data.update(changes)
    return data


def test_a_request_with_only_required_fields_gets_documented_defaults():
    s = slice_from_dict(_request())
    assert s.vip_cidr == ipaddress.IPv4Network("10.20.0.0/24")
    assert s.bandwidth_mbps == 100.0 and isinstance(s.bandwidth_mbps, float)
    defaults = (s.priority, s.min_members, s.sla_quantile, s.dissolve_after_s)
    assert defaults == (PriorityClass.BRONZE, 1, 0.9, 0.0)
    assert str(s.service_vip) == "10.20.0.1"
    assert s.capacity_mbps(3) == 30.0


def test_to_dict_round_trips_and_is_plain_data():
    s = slice_from_dict(_request(priority="gold", min_members=2, sla_quantile=0.95, dissolve_after_s=600))
    data = s.to_dict()
    assert data["vip_cidr"] == "10.20.0.0/24" and data["priority"] == "gold"
    assert slice_from_dict(data) == s


def test_priority_classes_map_to_dscp_and_rank_in_flow_priority():
    classes = (PriorityClass.GOLD, PriorityClass.SILVER, PriorityClass.BRONZE)
    assert [p.dscp for p in classes] == [46, 34, 0]
    offsets = [p.flow_priority_offset for p in classes]
    assert offsets == sorted(offsets, reverse=True) and len(set(offsets)) == 3


@pytest.mark.parametrize("change, message", [
    ({"bandwidth_mbps": -5}, "bandwidth_mbps: must be > 0, got -5"),
    ({"bandwidth_mbps": float("inf")}, "bandwidth_mbps: must be finite"),
    ({"bandwidth_mbps": "100"}, "bandwidth_mbps: must be a number, got str"),
    ({"per_member_mbps": 0}, "per_member_mbps: must be > 0, got 0"),
    ({"name": "Web"}, "name: must be lowercase letters"),
    ({"name": "-web"}, "name: must be lowercase letters"),
    ({"name": ""}, "name: must be 1..63 characters, got 0"),
    ({"name": "a" * 64}, "name: must be 1..63 characters, got 64"),
    ({"client": "   "}, "client: must not be empty"),
    ({"pool": ""}, "pool: must not be empty"),
    ({"vip_cidr": "10.20.0.1/24"}, "vip_cidr: not an IPv4 network: 10.20.0.1/24 has host bits set"),
    ({"vip_cidr": "10.0.0.0/8"}, "vip_cidr: prefix length must be 16..30, got /8"),
    ({"vip_cidr": "10.0.0.0/31"}, "vip_cidr: prefix length must be 16..30, got /31"),
    ({"vip_cidr": "fd00::/64"}, "vip_cidr: must be an IPv4 network"),
    ({"vip_cidr": "224.1.0.0/16"}, "vip_cidr: 224.1.0.0/16 is not a unicast range"),
    ({"min_members": 0}, "min_members: must be >= 1, got 0"),
    ({"min_members": 2.0}, "min_members: must be an integer, got float 2.0"),
    ({"max_members": True}, "max_members: must be an integer, got bool"),
    ({"min_members": 5, "max_members": 4}, "max_members: must be >= min_members (5), got 4"),
    ({"sla_quantile": 1.0}, "sla_quantile: must be < 1, got 1"),
    ({"sla_quantile": 0}, "sla_quantile: must be > 0, got 0"),
    ({"dissolve_after_s": -1}, "dissolve_after_s: must be >= 0, got -1"),
    ({"priority": "platinum"}, "priority: must be one of gold, silver, bronze, got 'platinum'"),
])
def test_bad_values_are_refused_naming_the_field(change, message):
    with pytest.raises(InvalidSlice) as err:
        slice_from_dict(_request(**change))
    assert str(err.value).startswith(message)
    assert err.value.field == message.split(":")[0]


def test_missing_and_unknown_keys_are_named():
    data = _request()
    del data["per_member_mbps"]
    with pytest.raises(InvalidSlice, match=r"^per_member_mbps: required$"):
        slice_from_dict(data)
    with pytest.raises(InvalidSlice, match=r"^bandwith_mbps: unknown field$"):
        slice_from_dict(_request(bandwith_mbps=5))
    with pytest.raises(InvalidSlice, match=r"^slice: must be a mapping"):
        slice_from_dict(["name", "web-a"])


def test_max_members_must_fit_in_the_vip_range():
    # A /29 has 6 usable addresses: the service VIP and 5 member addresses.
    assert slice_from_dict(_request(vip_cidr="10.20.0.0/29", max_members=5)).max_members == 5
    with pytest.raises(InvalidSlice, match=r"^max_members: 10.20.0.0/29 has room for 5 member address"):
        slice_from_dict(_request(vip_cidr="10.20.0.0/29", max_members=6))


def test_a_slice_cannot_be_changed_into_an_invalid_one():
    s = slice_from_dict(_request())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.bandwidth_mbps = 1.0
    with pytest.raises(InvalidSlice, match="^bandwidth_mbps: must be > 0"):
        dataclasses.replace(s, bandwidth_mbps=0)
    bigger = dataclasses.replace(s, max_members=8)
    assert bigger.max_members == 8 and s.max_members == 4


def test_errors_form_one_family_whose_messages_name_the_subject():
    errors = [InvalidSlice("bandwidth_mbps", "must be > 0"), SliceNotFound("web-a"), SliceExists("web-a"),
              Exhausted("pool 'edge'", "wanted 3 member(s), 1 available", wanted=3, available=1),
              Conflict("vip range 10.0.0.0/24 of slice 'b'", "overlaps vip range 10.0.0.0/16 of slice 'a'")]
    for err in errors:
        assert isinstance(err, SliceError)
        assert str(err) == f"{err.subject}: {err.message}"
    assert str(SliceNotFound("web-a")) == "slice 'web-a': no such slice"
    assert str(SliceExists("web-a")) == "slice 'web-a': already exists"
    assert isinstance(errors[0], ValueError)         # an API maps it to INVALID_ARGUMENT
    assert (errors[3].wanted, errors[3].available) == (3, 1)


def test_slices_are_constructible_directly_with_loose_types():
    s = Slice(name="db", client="ACME", vip_cidr="172.16.0.0/16", bandwidth_mbps=1000, per_member_mbps=250,
              pool="db-pool", max_members=8, priority="silver")
    assert s.priority is PriorityClass.SILVER and s.priority.dscp == 34
    assert isinstance(s.vip_cidr, ipaddress.IPv4Network)
