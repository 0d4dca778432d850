"""Routes into prefix groups: by origin AS, split by reach, withdrawals, resyncs."""

from __future__ import annotations

from dataclasses import dataclass

from apps.peering.rib import Rib


@dataclass(frozen=True)
class R:
    prefix: str
    neighbour: str
    as_path: tuple[int, ...]
    withdrawn: bool = False


def _rib() -> Rib:
    return Rib({"10.100.0.2": "transit", "10.100.0.3": "west"}, {"transit": 64500, "west": 64501})


def test_prefixes_group_by_origin_with_each_neighbours_path_length():
    rib = _rib()
    assert (
        rib.update(
            [
                R("100.64.0.0/24", "10.100.0.2", (64500, 64999, 64600)),
                R("100.64.1.0/24", "10.100.0.2", (64500, 64999, 64600)),
                R("100.64.0.0/24", "10.100.0.3", (64501, 64600)),
                R("100.64.1.0/24", "10.100.0.3", (64501, 64600)),
                R("100.64.8.0/24", "10.100.0.2", (64500, 64999, 64601)),
            ]
        )
        == 5
    )
    groups = {g.name: g for g in rib.groups()}
    assert set(groups) == {"as64600", "as64601"}
    assert groups["as64600"].prefixes == ("100.64.0.0/24", "100.64.1.0/24")
    assert dict(groups["as64600"].reach) == {"transit": 3, "west": 2}
    assert dict(groups["as64601"].reach) == {"transit": 3}
    assert rib.prefixes_from("west") == 2


def test_an_origin_whose_prefixes_differ_in_reach_splits_and_the_larger_part_keeps_the_name():
    rib = _rib()
    rib.update(
        [R(f"100.64.{i}.0/24", "10.100.0.2", (64500, 64600)) for i in range(3)]
        + [R("100.64.0.0/24", "10.100.0.3", (64501, 64600))]
    )
    groups = {g.name: g.prefixes for g in rib.groups()}
    assert groups == {"as64600": ("100.64.1.0/24", "100.64.2.0/24"), "as64600.2": ("100.64.0.0/24",)}


def test_withdrawals_and_a_dropped_neighbour_remove_routes_and_unknown_senders_are_ignored():
    rib = _rib()
    rib.update(
        [R("100.64.0.0/24", "10.100.0.2", (64500, 64600)), R("100.64.0.0/24", "10.100.0.3", (64501, 64600))]
    )
    version = rib.version
    assert rib.update([R("100.64.0.0/24", "10.100.0.3", (), withdrawn=True)]) == 1
    assert rib.version > version
    assert dict(rib.groups()[0].reach) == {"transit": 2}
    assert (
        rib.update(
            [
                R("100.64.9.0/24", "192.0.2.1", (65001,)),
                R("not a prefix", "10.100.0.2", (1,)),
                R("2001:db8::/32", "10.100.0.2", (64500,)),
            ]
        )
        == 0
    )
    assert rib.ignored == 3
    assert rib.drop("transit") == 1 and rib.groups() == []


def test_replace_makes_a_neighbours_table_exactly_what_the_speaker_holds():
    rib = _rib()
    rib.update(
        [R("100.64.0.0/24", "10.100.0.2", (64500, 64600)), R("100.64.1.0/24", "10.100.0.2", (64500, 64600))]
    )
    rib.replace(
        "transit",
        [R("100.64.1.0/24", "10.100.0.2", (64500, 64600)), R("100.64.2.0/24", "10.100.0.2", (64500, 64601))],
    )
    assert sorted(rib.routes) == ["100.64.1.0/24", "100.64.2.0/24"]


def test_a_neighbours_own_prefix_is_its_own_origin():
    rib = _rib()
    rib.update([R("100.64.0.0/24", "10.100.0.3", (64501,))])
    assert rib.groups()[0].name == "as64501"
