"""Tests for topologies.mininet_topo: the Topo graph only, no network is started."""

import pytest

from topologies import catalog
from topologies.catalog import TopologyError
from topologies.mininet_topo import SpecTopo, topos


def _switch_links(topo):
    return [(a, b, info) for a, b, info in topo.links(withInfo=True)
            if topo.isSwitch(a) and topo.isSwitch(b)]


def test_abilene_counts_and_switch_options():
    topo = SpecTopo(catalog.load('abilene'))
    assert len(topo.switches()) == 12
    assert len(topo.hosts()) == 12
    assert len(topo.links()) == 12 + 15
    assert len(_switch_links(topo)) == 15
    info = topo.nodeInfo('s12')
    assert info['dpid'] == '000000000000000c'
    assert info['protocols'] == 'OpenFlow13'
    assert topo.spec.name == 'abilene'


def test_bw_scaled_and_capped():
    topo = SpecTopo(catalog.load('abilene'), bw_scale=0.001)
    bws = {frozenset((a, b)): info['bw'] for a, b, info in _switch_links(topo)}
    assert bws[frozenset(('s2', 's6'))] == pytest.approx(2.48)
    assert sorted(set(round(bw, 6) for bw in bws.values())) == [2.48, 9.92]
    capped = SpecTopo(catalog.load('abilene'), bw_scale=1.0, max_bw_mbps=1000.0)
    assert {info['bw'] for _, _, info in _switch_links(capped)} == {1000.0}
    assert capped.linkInfo('s2', 's6')['bw'] == 1000.0


def test_bw_matches_controller_topology():
    spec = catalog.load('geant')
    topo = SpecTopo(spec, bw_scale=0.01, max_bw_mbps=50.0)
    expected = spec.controller_topology(bw_scale=0.01, max_bw_mbps=50.0)['links']
    for link, entry in zip(spec.links, expected):
        assert topo.linkInfo(link.a, link.b)['bw'] == pytest.approx(entry['capacity_mbps'])


def test_no_link_bw():
    topo = SpecTopo(catalog.load('triangle'), link_bw=False)
    assert all('bw' not in info for _, _, info in topo.links(withInfo=True))
    assert all('bw' not in info for _, _, info in SpecTopo(catalog.load('line2'), link_bw='false')
               .links(withInfo=True))


def test_host_is_on_port_1():
    spec = catalog.load('abilene')
    topo = SpecTopo(spec)
    for sw in spec.switches:
        host = f'h{sw.dp_id}'
        assert topo.host_for_switch(sw.name) == [host]
        assert topo.port(host, sw.name) == (0, 1)
    # Switch-switch ports follow the hosts, in spec link order.
    assert topo.port('s1', 's2') == (2, 2)


def test_several_hosts_per_switch():
    topo = SpecTopo(catalog.load('diamond'), hosts_per_switch=3)
    assert len(topo.hosts()) == 12
    assert topo.host_for_switch('s2') == ['h2x1', 'h2x2', 'h2x3']
    assert [topo.port(h, 's2')[1] for h in topo.host_for_switch('s2')] == [1, 2, 3]
    assert topo.port('s1', 's2') == (4, 4)
    with pytest.raises(TopologyError, match='s9'):
        topo.host_for_switch('s9')


def _host_opts(topo):
    return [topo.nodeInfo(h) for h in topo.hosts()]


def test_ips_and_macs_unique_and_valid():
    topo = SpecTopo(catalog.load('zoo:Kdl'), hosts_per_switch=2)
    opts = _host_opts(topo)
    assert len(opts) == 1508
    ips = [o['ip'] for o in opts]
    macs = [o['mac'] for o in opts]
    assert len(set(ips)) == len(ips)
    assert len(set(macs)) == len(macs)
    for ip in ips:
        address, prefix = ip.split('/')
        octets = [int(x) for x in address.split('.')]
        assert prefix == '16' and octets[:2] == [10, 0] and all(0 <= o <= 255 for o in octets)
        assert address not in ('10.0.0.0', '10.0.255.255')
    small = SpecTopo(catalog.load('line2'))
    assert small.nodeInfo('h1') == {'ip': '10.0.0.1/16', 'mac': '00:00:00:00:00:01'}
    assert small.nodeInfo('h2') == {'ip': '10.0.0.2/16', 'mac': '00:00:00:00:00:02'}


def test_bad_arguments():
    spec = catalog.load('line2')
    for params in ({'bw_scale': 0}, {'max_bw_mbps': -1}, {'hosts_per_switch': -1},
                   {'hosts_per_switch': 1.5}):
        with pytest.raises(TopologyError):
            SpecTopo(spec, **params)


def test_mn_custom_topos():
    for name in ('abilene', 'geant', 'line2', 'line3', 'triangle', 'ring4', 'diamond'):
        topo = topos[name]()
        assert len(topo.switches()) == len(catalog.load(name).switches)
    assert len(topos['abilene'](bw_scale=0.01, hosts_per_switch=2).hosts()) == 24
    assert len(topos['zoo']('Geant2012').switches()) == 40


def test_a_prefix_names_every_node_and_keeps_ids_addresses_and_ports():
    spec = catalog.load('abilene')
    plain, copy = SpecTopo(spec), SpecTopo(spec, prefix='st')
    assert copy.switches() == ['st' + s for s in plain.switches()]
    assert copy.hosts() == ['st' + h for h in plain.hosts()]
    for name in plain.switches() + plain.hosts():
        assert copy.nodeInfo('st' + name) == plain.nodeInfo(name)      # dpid, IP, MAC
    for a, b in plain.links():
        assert copy.port('st' + a, 'st' + b) == plain.port(a, b)
        assert copy.linkInfo('st' + a, 'st' + b).get('bw') == plain.linkInfo(a, b).get('bw')
    assert copy.host_for_switch('s2') == ['sth2']                     # keyed by the spec's name
    several = SpecTopo(catalog.load('diamond'), hosts_per_switch=2, prefix='st')
    assert several.host_for_switch('s4') == ['sth4x1', 'sth4x2']
    assert SpecTopo(spec, prefix='').switches() == plain.switches()


def test_a_bad_or_too_long_prefix_is_refused():
    spec = catalog.load('line2')
    for prefix in ('ST', '1st', 'st-', 'toolong', 7):
        with pytest.raises(TopologyError, match='prefix'):
            SpecTopo(spec, prefix=prefix)
    abilene = catalog.load('abilene')
    SpecTopo(abilene, prefix='abcdef')                          # abcdefh12-eth0, abcdefs12-eth5
    with pytest.raises(TopologyError, match="'abcdefh1.x2-eth0' is longer than 15"):
        SpecTopo(abilene, hosts_per_switch=2, prefix='abcdef')
    SpecTopo(abilene, hosts_per_switch=2, prefix='abcd')       # abcdh12x2-eth0


def test_a_spare_link_is_cabled_last_and_its_ports_are_known_before_the_network_starts():
    plain = catalog.load('abilene')
    spec = plain.with_spare('HSTNng', 'IPLSng', 9920.0)
    topo = SpecTopo(spec, hosts_per_switch=2)
    ports = spec.link_ports(2)
    assert all(topo.port(a, b) == ports[(a, b)] for a, b in ports)
    # The links in service keep the ports they have without the spare.
    before = SpecTopo(plain, hosts_per_switch=2)
    assert all(before.port(link.a, link.b) == ports[(link.a, link.b)] for link in plain.links)
    assert ports[('s5', 's6')] == (6, 6)
    assert spec.directed_link_count() == plain.directed_link_count() == 30
    assert [link.spare for link in spec.links].count(True) == 1


def test_a_spare_link_must_join_two_unlinked_switches_that_exist():
    spec = catalog.load('abilene')
    with pytest.raises(TopologyError, match='ATLAng and IPLSng are linked already'):
        spec.with_spare('ATLAng', 'IPLSng', 1.0)
    with pytest.raises(TopologyError, match="no switch named or labelled 'nowhere'"):
        spec.with_spare('nowhere', 's1', 1.0)
    with pytest.raises(TopologyError, match='twice'):
        spec.with_spare('s3', 'CHINng', 1.0)


def test_a_link_capacity_is_set_for_the_controller_and_the_emulation_alike():
    spec = catalog.load('abilene').with_capacity('ATLAng', 'IPLSng', 400.0)
    assert [link.capacity_mbps for link in spec.links if {link.a, link.b} == {'s2', 's6'}] == [400.0]
    links = spec.controller_topology(0.02)['links']
    assert [link['capacity_mbps'] for link in links if {link['a'], link['b']} == {2, 6}] == [8.0]
    topo = SpecTopo(spec, bw_scale=0.02)
    bws = {frozenset((a, b)): info['bw'] for a, b, info in _switch_links(topo)}
    assert bws[frozenset(('s2', 's6'))] == pytest.approx(8.0)
    with pytest.raises(TopologyError, match='no link between s1 and s3'):
        spec.with_capacity('s1', 's3', 1.0)
