"""apps.stitching.registry: the route managers' advertisements, their expiry, and
the underlay paths between two sites they offer, best first."""

from __future__ import annotations

import pytest

from apps.stitching.registry import AdHost, Advertisement, AdvertisementError, Plane, Registry


def _ad(site, dp_id, hosts=(), planes=None):
    planes = planes if planes is not None else (
        Plane(1, f"10.101.0.{dp_id}", True, 40.0, 1.0, {}),
        Plane(2, f"10.102.0.{dp_id}", True, 40.0, 2.0, {}))
    return Advertisement(site, dp_id, tuple(hosts), tuple(planes))


H100 = AdHost("a-h1", "02:00:00:0a:01:01", "10.60.1.1", 100, "acme")
H200 = AdHost("b-h1", "02:00:00:0b:02:01", "10.60.2.1", 200, "acme")


def test_sites_are_found_by_tenant_and_vnid_and_forgotten_when_silent():
    reg = Registry(ttl_s=6.0)
    assert reg.advertise(_ad("a", 1, [H100]), now=0.0)
    assert reg.advertise(_ad("b", 2, [H200]), now=4.0)
    assert not reg.advertise(_ad("a", 1, [H100]), now=5.0)      # a refresh, not a new site
    assert reg.sites_with("acme", 200) == ["b"]
    assert reg.sites_with("globex", 200) == []
    assert reg.expire(now=10.5) == ["b"]                         # a was refreshed at 5.0
    assert reg.sites_with("acme", 200) == [] and reg.get("a") is not None


def test_candidates_are_planes_up_at_both_ends_cheapest_first():
    reg = Registry(6.0)
    reg.advertise(_ad("a", 1), 0.0)
    reg.advertise(_ad("b", 2), 0.0)
    assert [c.plane for c in reg.candidates("a", "b")] == [1, 2]               # cost 2 vs 4
    reg.advertise(_ad("b", 2, planes=(Plane(1, "10.101.0.2", False, 40.0, 1.0),
                                      Plane(2, "10.102.0.2", True, 40.0, 2.0))), 1.0)
    (only,) = reg.candidates("a", "b")
    assert only.plane == 2 and only.cost == 4.0


def test_bandwidth_is_the_tighter_end_less_what_is_reserved():
    reg = Registry(6.0)
    reg.advertise(_ad("a", 1, planes=(Plane(1, "10.101.0.1", True, 30.0),)), 0.0)
    reg.advertise(_ad("b", 2, planes=(Plane(1, "10.101.0.2", True, 50.0),)), 0.0)
    assert reg.candidates("a", "b")[0].available_mbps == 30.0
    assert reg.candidates("a", "b", min_mbps=25.0, reserved={("a", 1): 10.0}) == []
    assert reg.candidates("a", "b", min_mbps=15.0, reserved={("a", 1): 10.0})[0].available_mbps == 20.0


def test_latency_is_measured_by_the_ends_and_can_be_required():
    reg = Registry(6.0)
    reg.advertise(_ad("a", 1, planes=(Plane(1, "10.101.0.1", True, 40.0, 1.0, {"b": 2.0}),
                                      Plane(2, "10.102.0.1", True, 40.0, 1.0, {"b": 0.5}))), 0.0)
    reg.advertise(_ad("b", 2, planes=(Plane(1, "10.101.0.2", True, 40.0, 1.0, {"a": 4.0}),
                                      Plane(2, "10.102.0.2", True, 40.0, 1.0, {}))), 0.0)
    best, second = reg.candidates("a", "b")
    assert (best.plane, best.rtt_ms) == (2, 0.5) and (second.plane, second.rtt_ms) == (1, 3.0)
    assert [c.plane for c in reg.candidates("a", "b", max_rtt_ms=1.0)] == [2]


@pytest.mark.parametrize("ad, field", [
    (Advertisement("", 1), "site"),
    (Advertisement("a", 0), "dp_id"),
    (Advertisement("a", 1, (H100, H100)), "hosts"),
    (Advertisement("a", 1, (AdHost("x", "02:00:00:00:00:01", "10.0.0.1", 0, "t"),)), "hosts.0.vnid"),
    (Advertisement("a", 1, planes=(Plane(1, "10.0.0.1"), Plane(1, "10.0.0.2"))), "planes.1.plane"),
    (Advertisement("a", 1, planes=(Plane(1, "10.0.0.1", True, -5.0),)), "planes.0.available_mbps"),
])
def test_a_bad_advertisement_is_refused_naming_the_field(ad, field):
    with pytest.raises(AdvertisementError, match=rf"^{field.replace('.', '[.]')}: "):
        Registry(6.0).advertise(ad, 0.0)


def test_two_sites_cannot_claim_one_switch():
    reg = Registry(6.0)
    reg.advertise(_ad("a", 1), 0.0)
    with pytest.raises(AdvertisementError, match="dp_id: 0x1 is site a's"):
        reg.advertise(_ad("b", 1), 0.0)


def test_probe_loss_on_a_plane_is_the_mean_of_what_the_ends_measured():
    reg = Registry(6.0)
    reg.advertise(_ad("a", 1, planes=(Plane(1, "10.101.0.1", True, 40.0, 1.0, {}, {"b": 0.2}),)), 0.0)
    reg.advertise(_ad("b", 2, planes=(Plane(1, "10.101.0.2", True, 40.0, 1.0, {}, {"a": 0.4}),)), 0.0)
    assert reg.probe_loss("a", "b", 1) == pytest.approx(0.3)
    assert reg.probe_loss("a", "b", 2) is None
