"""The multi-site lab (labs/sites_lab.py on topologies/sites.py): three sites, each its own Open vSwitch in
its own namespace, controlled by the controller, joined by a two-plane underlay;
hosts carry their virtual network in OVSDB. Before any stitch, sites do not reach
each other; the underlay does, on both planes; and stopping leaves nothing behind."""

from __future__ import annotations

import subprocess

import pytest

from labs.sites_lab import SitesLab
from topologies.sites import PLANES, SitesSpec, SiteHost, default_spec


@pytest.fixture(scope="module")
def lab():
    lab = SitesLab(default_spec()).start()
    yield lab
    lab.stop()


def test_every_site_switch_is_controlled_by_the_controller(lab):
    switches = {s.dp_id: (s.name, s.connected) for s in lab.client.topology().switches}
    assert switches == {lab.spec.dp_id(s): (f"site-{s}", True) for s in lab.spec.sites}
    for site in lab.sites.values():
        assert "goto_table:1" in site.ofctl("dump-flows")          # the controller's pipeline


def test_hosts_carry_their_virtual_network_in_ovsdb(lab):
    for host in lab.spec.hosts:
        ids = lab.sites[host.site].vsctl("get", "interface", host.name, "external_ids")
        assert f'foresight-vnid="{host.vnid}"' in ids and f'foresight-tenant={host.tenant}' in ids


def test_sites_do_not_reach_each_other_without_a_stitch(lab):
    assert not lab.ping("a-h1", "b-h1")
    assert not lab.ping("b-h1", "c-h1")


def test_the_underlay_joins_every_pair_of_sites_on_both_planes(lab):
    for plane in PLANES:
        for src in lab.spec.sites:
            for dst in lab.spec.sites:
                if src != dst:
                    out = lab.sites[src].exec("ping", "-c1", "-W1", lab.spec.underlay_ip(dst, plane),
                                              check=False)
                    assert out.returncode == 0, f"{src} -> {dst} on plane {plane}: {out.stdout[-200:]}"


def test_a_cut_plane_uplink_isolates_that_plane_only(lab):
    lab.set_plane("a", 1, up=False)
    try:
        a = lab.sites["a"]
        assert a.exec("ping", "-c1", "-W1", lab.spec.underlay_ip("b", 1), check=False).returncode != 0
        assert a.exec("ping", "-c1", "-W1", lab.spec.underlay_ip("b", 2), check=False).returncode == 0
    finally:
        lab.set_plane("a", 1, up=True)


def test_stop_leaves_no_namespace_process_or_file():
    spec = SitesSpec(("x", "y"), (SiteHost("x-h1", "x", 7, "t", "10.61.0.1/24", "02:00:00:00:61:01"),))
    lab = SitesLab(spec).start()
    procs = [p for site in lab.sites.values() for p in site.procs.values()] + [lab.controller.proc]
    namespaces = [site.ns for site in lab.sites.values()] + list(lab.host_ns.values()) + [lab.underlay]
    rundir = lab.sites["x"].rundir.parent
    lab.stop()
    assert all(p.poll() is not None for p in procs)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [ns for ns in namespaces if ns in listed.split()]
    assert not rundir.exists()


def test_a_bad_spec_names_what_is_wrong():
    with pytest.raises(ValueError, match="host h9: unknown site 'q'"):
        SitesSpec(("a",), (SiteHost("h9", "q", 1, "t", "10.0.0.1/24", "02:00:00:00:00:01"),))
    with pytest.raises(ValueError, match="vnid 0 outside"):
        SitesSpec(("a",), (SiteHost("h9", "a", 0, "t", "10.0.0.1/24", "02:00:00:00:00:01"),))
