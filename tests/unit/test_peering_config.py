"""The ``peering`` config section: what loads, and that every refusal names the bad key."""

from __future__ import annotations

import textwrap

import pytest

from controller import config
from controller.config import ConfigError

NEIGHBOURS = """\
      - {name: transit, asn: 64500, address: 10.100.0.2, kind: transit, capacity_mbps: 100,
         cost_per_mbps: 1.0,
         always: true}
      - {name: west, asn: 64501, address: 10.100.0.3, capacity_mbps: 20, cost_per_mbps: 0.3, hour_cost: 0.02}
"""


def _peering(extra: str = "", neighbours: str = NEIGHBOURS) -> str:
    return (
        "peering:\n  asn: 65000\n  router_id: 10.100.0.1\n"
        + extra
        + "  neighbours:\n"
        + textwrap.indent(textwrap.dedent(neighbours), "    ")
    )


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        config.parse(text, "lab.yaml")
    return str(err.value)


def test_a_good_section_loads_with_its_defaults():
    cfg = config.parse(_peering()).section("peering")
    assert [n.name for n in cfg.neighbours] == ["transit", "west"]
    assert cfg.scheme == "predictive" and cfg.neighbour("west").kind == "peer"
    assert cfg.horizons_s == (300.0, 900.0, 3600.0)


@pytest.mark.parametrize("asn, why", [(0, "RFC 7607"), (23456, "AS_TRANS"), (4294967296, "outside")])
def test_an_invalid_neighbour_asn_names_the_key(asn, why):
    text = _peering(neighbours=NEIGHBOURS.replace("asn: 64501", f"asn: {asn}"))
    message = _error(text)
    assert "peering.neighbours.1.asn" in message and why in message


def test_an_invalid_address_names_the_key():
    message = _error(_peering(neighbours=NEIGHBOURS.replace("10.100.0.3", "10.100.0.300")))
    assert "peering.neighbours.1.address" in message and "10.100.0.300" in message


def test_duplicates_our_own_as_and_no_transit_are_refused():
    assert "duplicate neighbour 'transit'" in _error(
        _peering(neighbours=NEIGHBOURS.replace("name: west", "name: transit"))
    )
    assert "our own AS" in _error(_peering(neighbours=NEIGHBOURS.replace("asn: 64501", "asn: 65000")))
    message = _error(_peering(neighbours=NEIGHBOURS.replace("kind: transit", "kind: peer")))
    assert "peering.neighbours" in message and "transit" in message


def test_thresholds_and_timers_must_make_sense():
    assert "peering.restore" in _error(_peering("  detour: 0.6\n  restore: 0.7\n"))
    assert "peering.gobgp.keepalive_s" in _error(_peering("  gobgp: {hold_s: 9, keepalive_s: 5}\n"))
    assert "peering.scheme" in _error(_peering("  scheme: magic\n"))
    assert "peering.router_mac" in _error(_peering("  router_mac: nope\n"))
