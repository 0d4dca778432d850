"""FrrRouter's configuration rendering (no daemons): route-maps per distinct AS path,
network lines, neighbour timers and the FRR 8.4 knobs the lab needs."""

import pytest

from topologies.bgp import network_lines, render_bgpd_conf, route_map_lines, route_map_name


def conf(**kw):
    args = dict(name="prov", asn=65001, router_id="10.0.0.2", neighbours=[("10.0.0.1", 65000)],
                prefixes=[("100.64.3.0/24", (64701,)), ("100.64.4.0/24", (64701,)),
                          ("100.64.5.0/24", (64702, 64703)), ("100.64.6.0/24", ())])
    args.update(kw)
    return render_bgpd_conf(**args).splitlines()


def test_one_route_map_per_distinct_path_defined_before_use():
    lines = conf()
    assert lines.count("route-map ORIG-64701 permit 10") == 1
    assert " set as-path prepend 64701" in lines
    assert "route-map ORIG-64702-64703 permit 10" in lines
    assert " set as-path prepend 64702 64703" in lines
    assert sum(line.startswith("route-map ") for line in lines) == 2
    assert lines.index("route-map ORIG-64701 permit 10") < lines.index("router bgp 65001")


def test_prefix_lines_name_their_route_map_or_none():
    lines = conf()
    assert "  network 100.64.3.0/24 route-map ORIG-64701" in lines
    assert "  network 100.64.5.0/24 route-map ORIG-64702-64703" in lines
    assert "  network 100.64.6.0/24" in lines


def test_router_knobs_and_neighbour_timers():
    lines = conf(hold_s=6, keepalive_s=2)
    for line in (" bgp router-id 10.0.0.2", " no bgp ebgp-requires-policy", " no bgp network import-check",
                 " neighbor 10.0.0.1 remote-as 65000", " neighbor 10.0.0.1 timers 2 6",
                 " neighbor 10.0.0.1 timers connect 1", "  neighbor 10.0.0.1 activate"):
        assert line in lines


def test_withdraw_lines_and_names():
    assert network_lines([("100.64.3.0/24", (64701,))], withdraw=True) == [
        "no network 100.64.3.0/24 route-map ORIG-64701"]
    assert route_map_name(()) is None
    assert route_map_lines([(), (1, 2), (1, 2)]) == ["route-map ORIG-1-2 permit 10",
                                                     " set as-path prepend 1 2", "exit"]


@pytest.mark.parametrize("prefixes, field", [([("100.64.3.1/24", ())], "prefix"),
                                             ([("nope", ())], "prefix"),
                                             ([("100.64.3.0/24", (0,))], "as_path")])
def test_bad_prefixes_are_refused_naming_the_field(prefixes, field):
    with pytest.raises(ValueError, match=field):
        conf(prefixes=prefixes)


def test_ten_thousand_prefixes_render():
    prefixes = [(f"10.{i // 256}.{i % 256}.0/24", (64600 + i % 50,)) for i in range(10000)]
    lines = conf(prefixes=prefixes)
    assert sum(line.startswith("  network ") for line in lines) == 10000
    assert sum(line.startswith("route-map ") for line in lines) == 50
