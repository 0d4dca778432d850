"""Tests for topologies.catalog: real datasets, toy shapes, validation and errors."""

import collections
import logging
import shutil

import networkx as nx
import pytest

from topologies import catalog
from topologies.catalog import LinkSpec, SwitchSpec, TopologyError, TopologySpec


def _capacity_counts(spec):
    return collections.Counter(link.capacity_mbps for link in spec.links)


def _labels(spec, link):
    return {spec.switch(link.a).label, spec.switch(link.b).label}


def test_abilene_shape_and_capacities():
    spec = catalog.load('abilene')
    assert len(spec.switches) == 12
    assert len(spec.links) == 15
    assert spec.directed_link_count() == 30
    assert _capacity_counts(spec) == {9920.0: 14, 2480.0: 1}
    (slow,) = [link for link in spec.links if link.capacity_mbps == 2480.0]
    assert _labels(spec, slow) == {'ATLAng', 'IPLSng'}
    assert all(link.capacity_known for link in spec.links)


def test_abilene_switch_order_follows_node_index():
    spec = catalog.load('abilene')
    assert [sw.name for sw in spec.switches] == [f's{i}' for i in range(1, 13)]
    assert [sw.dp_id for sw in spec.switches] == list(range(1, 13))
    assert spec.switches[0].label == 'ATLAM5'
    assert spec.switch('s2') == SwitchSpec('s2', 2, 'ATLAng', lon=-85.5, lat=34.5)


def test_links_sorted_by_dp_id_and_unique():
    for name in ('abilene', 'geant', 'zoo:Geant2012', 'zoo:Cogentco'):
        spec = catalog.load(name)
        pairs = [(spec.switch(link.a).dp_id, spec.switch(link.b).dp_id) for link in spec.links]
        assert all(a < b for a, b in pairs), name
        assert pairs == sorted(set(pairs)), name


def test_geant_collapses_directed_links_to_mbps():
    spec = catalog.load('geant')
    assert len(spec.switches) == 22
    assert len(spec.links) == 36
    assert spec.directed_link_count() == 72
    assert _capacity_counts(spec) == {10000.0: 16, 2400.0: 16, 155.0: 4}
    assert spec.switches[0].label == 'at1.at'
    assert nx.is_connected(spec.graph())


def test_geant_asymmetric_directions_use_min(tmp_path, caplog):
    root = tmp_path / 'data'
    shutil.copytree(catalog.data_dir() / 'geant', root / 'geant',
                    ignore=shutil.ignore_patterns('tm_*', 'figret_*', 'sndlib_*'))
    links_csv = root / 'geant' / 'links.csv'
    lines = links_csv.read_text().splitlines()
    # Row 1 is at1.at -> ch1.ch at 10 Gbit/s; make that one direction 2.4 Gbit/s.
    assert lines[1] == '0,2,at1.at,ch1.ch,10000000000'
    lines[1] = '0,2,at1.at,ch1.ch,2400000000'
    links_csv.write_text('\n'.join(lines) + '\n')
    with caplog.at_level(logging.WARNING, logger='topologies.catalog'):
        spec = catalog.load('geant', data_dir=root)
    assert len(spec.links) == 36
    (link,) = [candidate for candidate in spec.links if _labels(spec, candidate) == {'at1.at', 'ch1.ch'}]
    assert link.capacity_mbps == 2400.0
    assert 'differ' in caplog.text


def test_zoo_geant2012_loads_connected_with_partial_capacities():
    spec = catalog.load('zoo:Geant2012')
    assert spec.name == 'zoo:Geant2012'
    assert len(spec.switches) == 40
    assert len(spec.links) == 61
    assert nx.is_connected(spec.graph())
    known = [link for link in spec.links if link.capacity_known]
    unknown = [link for link in spec.links if not link.capacity_known]
    assert len(known) == 39
    assert {link.capacity_mbps for link in unknown} == {catalog.ZOO_DEFAULT_CAPACITY_MBPS}
    assert {link.capacity_mbps for link in known} <= {10000.0, 2500.0, 1000.0, 155.0}
    # Node order is the numeric GraphML id order: id '0' is NL (Amsterdam).
    assert spec.switches[0].label == 'NL'


def test_zoo_cogentco_multigraph_sums_parallel_edges():
    spec = catalog.load('zoo:Cogentco')
    raw = nx.read_graphml(catalog.data_dir() / 'topologyzoo' / 'graphml' / 'Cogentco.graphml')
    assert raw.is_multigraph()
    assert len(spec.switches) == raw.number_of_nodes() == 197
    assert len(spec.links) == nx.Graph(raw).number_of_edges() == 243
    assert _capacity_counts(spec) == {1000.0: 241, 2000.0: 2}
    assert not any(link.capacity_known for link in spec.links)
    assert nx.is_connected(spec.graph())
    labels = [sw.label for sw in spec.switches]
    assert len(set(labels)) == len(labels)  # repeated Zoo labels get '#<id>'


def _write_graphml(path, graph):
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(graph, path)


def test_zoo_drops_self_loops_and_keeps_largest_component(tmp_path, caplog):
    graph = nx.MultiGraph()
    for node, label in (('0', 'A'), ('1', 'B'), ('2', 'C'), ('10', 'D'), ('11', 'E')):
        graph.add_node(node, label=label)
    graph.add_edge('0', '1', LinkSpeedRaw=1e9)
    graph.add_edge('0', '1', LinkSpeedRaw=2e9)
    graph.add_edge('2', '1')
    graph.add_edge('2', '2')
    graph.add_edge('10', '11')
    _write_graphml(tmp_path / 'topologyzoo' / 'graphml' / 'Tiny.graphml', graph)
    with caplog.at_level(logging.WARNING, logger='topologies.catalog'):
        spec = catalog.load('zoo:Tiny', data_dir=tmp_path)
    assert [sw.label for sw in spec.switches] == ['A', 'B', 'C']
    assert spec.links == (LinkSpec('s1', 's2', 3000.0, True),
                          LinkSpec('s2', 's3', 1000.0, False))
    assert 'largest component' in caplog.text


def test_toys():
    expected = {'line2': (2, 1), 'line3': (3, 2), 'triangle': (3, 3), 'ring4': (4, 4),
                'diamond': (4, 4)}
    for name, (n_switches, n_links) in expected.items():
        spec = catalog.load(name)
        assert (len(spec.switches), len(spec.links)) == (n_switches, n_links), name
        assert {link.capacity_mbps for link in spec.links} == {100.0}
        assert nx.is_connected(spec.graph())
    triangle = catalog.load('triangle').graph()
    assert len(list(nx.all_simple_paths(triangle, 's1', 's3'))) == 2
    diamond = catalog.load('diamond').graph()
    assert sorted(nx.all_simple_paths(diamond, 's1', 's4')) == [
        ['s1', 's2', 's4'], ['s1', 's3', 's4']]


def test_graph_attributes():
    graph = catalog.load('abilene').graph()
    assert sorted(graph.nodes, key=lambda n: int(n[1:])) == [f's{i}' for i in range(1, 13)]
    assert graph.nodes['s2']['label'] == 'ATLAng'
    assert graph.nodes['s2']['dp_id'] == 2
    assert graph.edges['s2', 's6']['capacity_mbps'] == 2480.0


def test_controller_topology_scales_capacities():
    spec = catalog.load('abilene')
    topo = spec.controller_topology(bw_scale=0.001)
    assert topo['switches'][:2] == [{'dp_id': 1, 'name': 'ATLAM5'}, {'dp_id': 2, 'name': 'ATLAng'}]
    assert len(topo['links']) == 15
    by_pair = {(link['a'], link['b']): link['capacity_mbps'] for link in topo['links']}
    assert by_pair[(2, 6)] == pytest.approx(2.48)
    assert by_pair[(1, 2)] == pytest.approx(9.92)
    capped = spec.controller_topology(bw_scale=1.0, max_bw_mbps=1000.0)
    assert {link['capacity_mbps'] for link in capped['links']} == {1000.0}
    with pytest.raises(TopologyError, match='bw_scale'):
        spec.controller_topology(bw_scale=0)


def test_unknown_name_lists_valid_names():
    with pytest.raises(TopologyError) as err:
        catalog.load('abilen')
    message = str(err.value)
    assert "'abilen'" in message
    for name in ('abilene', 'geant', 'triangle', 'diamond', 'zoo:Geant2012'):
        assert name in message


def test_unknown_zoo_name_names_the_file():
    with pytest.raises(TopologyError, match=r'Nowhere\.graphml.*Geant2012'):
        catalog.load('zoo:Nowhere')
    with pytest.raises(TopologyError):
        catalog.load('zoo:../abilene/nodes')


def test_names():
    names = catalog.names()
    for name in ('abilene', 'geant', 'line2', 'line3', 'triangle', 'ring4', 'diamond',
                 'zoo:Abilene', 'zoo:Geant2012', 'zoo:Cogentco'):
        assert name in names
    for name in names:
        assert catalog.load(name).switches


def test_data_dir_env_override_missing_path(monkeypatch, tmp_path):
    missing = tmp_path / 'no-such-dir'
    monkeypatch.setenv(catalog.DATA_DIR_ENV, str(missing))
    with pytest.raises(TopologyError, match=str(missing)):
        catalog.data_dir()
    with pytest.raises(TopologyError, match=str(missing)):
        catalog.load('abilene')
    assert catalog.load('triangle').switches  # toys need no data
    assert 'abilene' in catalog.names()


def test_data_dir_env_override_used(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.DATA_DIR_ENV, str(tmp_path))
    assert catalog.data_dir() == tmp_path
    with pytest.raises(TopologyError, match='missing data file'):
        catalog.load('abilene')


def test_malformed_csv_names_file_and_line(tmp_path):
    shutil.copytree(catalog.data_dir() / 'abilene', tmp_path / 'abilene',
                    ignore=shutil.ignore_patterns('tm_*', 'timestamps.csv', '*.xml'))
    links_csv = tmp_path / 'abilene' / 'links.csv'
    lines = links_csv.read_text().splitlines()
    lines[3] = lines[3].replace('2480.0', 'fast')
    links_csv.write_text('\n'.join(lines) + '\n')
    with pytest.raises(TopologyError, match=r'links\.csv line 4: capacity_mbps'):
        catalog.load('abilene', data_dir=tmp_path)


def test_spec_validation():
    switches = (SwitchSpec('s1', 1, 'a'), SwitchSpec('s2', 2, 'b'))
    with pytest.raises(TopologyError, match='a < b'):
        TopologySpec('bad', switches, (LinkSpec('s2', 's1', 1.0),), 'test')
    with pytest.raises(TopologyError, match='unknown switch'):
        TopologySpec('bad', switches, (LinkSpec('s1', 's3', 1.0),), 'test')
    with pytest.raises(TopologyError, match='expected s2'):
        TopologySpec('bad', (switches[0], SwitchSpec('s3', 3, 'c')), (), 'test')
    with pytest.raises(TopologyError, match='no switch named'):
        TopologySpec('ok', switches, (), 'test').switch('s9')


def test_load_is_deterministic():
    assert catalog.load('zoo:Kdl') == catalog.load('zoo:Kdl')
    assert catalog.load('geant') == catalog.load('geant')
