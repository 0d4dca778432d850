"""Catalogue of real and toy network topologies, as plain immutable data.

A `TopologySpec` lists switches (Mininet names 's1'..'sN', dp_ids 1..N, the dataset's
own node label) and undirected links with a per-direction capacity in Mbit/s. Specs
come from the public datasets in ../shared/data (see its README.md):

- 'abilene': SNDlib Abilene, 12 nodes, 15 links (abilene/nodes.csv, links.csv).
- 'geant': SNDlib/FIGRET GEANT, 22 nodes; 72 directed links in bit/s collapsed to
  36 undirected links in Mbit/s (geant/nodes.csv, links.csv).
- 'zoo:<Name>': Internet Topology Zoo GraphML (topologyzoo/graphml/<Name>.graphml).
- 'line2', 'line3', 'triangle', 'ring4', 'diamond': small test shapes, 100 Mbit/s.

Everything here is deterministic: switches keep the dataset's node order and links
are sorted by (dp_id a, dp_id b), so the same name always gives the same spec.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import pathlib
import re
from dataclasses import dataclass, replace
from functools import cached_property

LOG = logging.getLogger(__name__)

DATA_DIR_ENV = 'FORESIGHT_DATA_DIR'
ZOO_PREFIX = 'zoo:'
ZOO_DEFAULT_CAPACITY_MBPS = 1000.0
TOY_CAPACITY_MBPS = 100.0

# Toy shapes: number of switches and links as 1-based dp_id pairs.
_TOYS: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {
    'line2': (2, ((1, 2),)),
    'line3': (3, ((1, 2), (2, 3))),
    'triangle': (3, ((1, 2), (1, 3), (2, 3))),
    'ring4': (4, ((1, 2), (1, 4), (2, 3), (3, 4))),
    'diamond': (4, ((1, 2), (1, 3), (2, 4), (3, 4))),
}
# Dataset folders under data_dir() and whether their links.csv rows are directed.
_CSV_DATASETS: dict[str, bool] = {'abilene': False, 'geant': True}
_ZOO_NAME_RE = re.compile(r'^[A-Za-z0-9_-]+$')


class TopologyError(ValueError):
    """A topology name is unknown, or its data files are missing or malformed."""


@dataclass(frozen=True)
class SwitchSpec:
    """One switch: Mininet name 's{dp_id}', datapath id, dataset label, position."""

    name: str
    dp_id: int
    label: str
    lon: float | None = None
    lat: float | None = None


@dataclass(frozen=True)
class LinkSpec:
    """One undirected link between switch names a < b (by dp_id).

    capacity_mbps is per direction; capacity_known is False when a default was
    filled in because the dataset has no capacity for the link. A ``spare`` link is
    cabled (Mininet builds it, after every other link so the others keep their port
    numbers) but held out of service by the controller until it is brought in
    (``apps.links``); no dataset has one: a lab adds it (``TopologySpec.with_spare``).
    """

    a: str
    b: str
    capacity_mbps: float
    capacity_known: bool = True
    spare: bool = False


@dataclass(frozen=True)
class TopologySpec:
    """A whole topology; validated on construction, raising TopologyError."""

    name: str
    switches: tuple[SwitchSpec, ...]
    links: tuple[LinkSpec, ...]
    source: str

    def __post_init__(self) -> None:
        by_name: dict[str, SwitchSpec] = {}
        labels: set[str] = set()
        for index, sw in enumerate(self.switches):
            if sw.dp_id != index + 1 or sw.name != f's{index + 1}':
                raise TopologyError(
                    f'{self.name}: switch {index} is {sw.name!r} dp_id {sw.dp_id}, '
                    f'expected s{index + 1} dp_id {index + 1}')
            if sw.label in labels:
                raise TopologyError(f'{self.name}: duplicate switch label {sw.label!r}')
            labels.add(sw.label)
            by_name[sw.name] = sw
        previous: tuple[int, int] | None = None
        for link in self.links:
            if link.a not in by_name or link.b not in by_name:
                raise TopologyError(f'{self.name}: link {link.a}-{link.b} names an unknown switch')
            pair = (by_name[link.a].dp_id, by_name[link.b].dp_id)
            if pair[0] >= pair[1]:
                raise TopologyError(f'{self.name}: link {link.a}-{link.b} must have a < b by dp_id')
            if previous is not None and pair <= previous:
                raise TopologyError(
                    f'{self.name}: links must be sorted and unique; '
                    f'{link.a}-{link.b} is out of order')
            if not (math.isfinite(link.capacity_mbps) and link.capacity_mbps > 0):
                raise TopologyError(
                    f'{self.name}: link {link.a}-{link.b} capacity_mbps '
                    f'{link.capacity_mbps!r} is not positive')
            previous = pair

    @cached_property
    def _by_name(self) -> dict[str, SwitchSpec]:
        return {sw.name: sw for sw in self.switches}

    def switch(self, name: str) -> SwitchSpec:
        """The switch called `name` ('s1', ...)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise TopologyError(f'{self.name}: no switch named {name!r}') from None

    def graph(self):
        """A networkx.Graph: switch-name nodes (label, dp_id, lon, lat), capacity_mbps edges."""
        import networkx as nx  # pylint: disable=import-outside-toplevel

        graph = nx.Graph(name=self.name)
        for sw in self.switches:
            graph.add_node(sw.name, label=sw.label, dp_id=sw.dp_id, lon=sw.lon, lat=sw.lat)
        for link in self.links:
            graph.add_edge(link.a, link.b, capacity_mbps=link.capacity_mbps,
                           capacity_known=link.capacity_known)
        return graph

    def directed_link_count(self) -> int:
        """Number of directed links in service (spares are not): each carries both directions."""
        return 2 * sum(1 for link in self.links if not link.spare)

    def cabling(self) -> tuple[LinkSpec, ...]:
        """The links in the order SpecTopo cables them: in service first, spares last."""
        return tuple(sorted(self.links, key=lambda link: link.spare))

    def with_spare(self, a: str, b: str, capacity_mbps: float) -> "TopologySpec":
        """This topology plus a spare link between switches ``a`` and ``b`` (names or labels)."""
        ends = sorted((self._find(a), self._find(b)), key=lambda sw: sw.dp_id)
        if ends[0].dp_id == ends[1].dp_id:
            raise TopologyError(f'{self.name}: a spare link needs two switches, got {a!r} twice')
        if any({link.a, link.b} == {ends[0].name, ends[1].name} for link in self.links):
            raise TopologyError(f'{self.name}: {a} and {b} are linked already')
        spare = LinkSpec(ends[0].name, ends[1].name, capacity_mbps, spare=True)
        links = tuple(sorted(self.links + (spare,), key=lambda link: (self.switch(link.a).dp_id,
                                                                     self.switch(link.b).dp_id)))
        return TopologySpec(self.name, self.switches, links, self.source)

    def with_capacity(self, a: str, b: str, capacity_mbps: float) -> "TopologySpec":
        """This topology with the link between ``a`` and ``b`` (names or labels) at
        ``capacity_mbps`` (dataset Mbit/s, per direction)."""
        ends = {self._find(a).name, self._find(b).name}
        if not any({link.a, link.b} == ends for link in self.links):
            raise TopologyError(f'{self.name}: no link between {a} and {b}')
        links = tuple(replace(link, capacity_mbps=capacity_mbps, capacity_known=True)
                      if {link.a, link.b} == ends else link for link in self.links)
        return TopologySpec(self.name, self.switches, links, self.source)

    def _find(self, name: str) -> SwitchSpec:
        for sw in self.switches:
            if name in (sw.name, sw.label):
                return sw
        raise TopologyError(f'{self.name}: no switch named or labelled {name!r}')

    def link_ports(self, hosts_per_switch: int) -> dict[tuple[str, str], tuple[int, int]]:
        """Each link's port numbers (a's, b's) as SpecTopo cables them: every switch's
        hosts take ports 1..hosts_per_switch, then its links in ``cabling`` order."""
        used = {sw.name: hosts_per_switch for sw in self.switches}
        out = {}
        for link in self.cabling():
            used[link.a] += 1
            used[link.b] += 1
            out[(link.a, link.b)] = (used[link.a], used[link.b])
        return out

    def controller_topology(self, bw_scale: float, max_bw_mbps: float | None = None) -> dict:
        """The topology as the controller configures it, in emulated Mbit/s.

        Capacities are multiplied by bw_scale and, when max_bw_mbps is given, capped
        at it, which matches what SpecTopo asks Mininet's TCLink for.
        """
        if not (isinstance(bw_scale, (int, float)) and math.isfinite(bw_scale) and bw_scale > 0):
            raise TopologyError(f'bw_scale must be a positive number, got {bw_scale!r}')
        if max_bw_mbps is not None and not max_bw_mbps > 0:
            raise TopologyError(f'max_bw_mbps must be positive, got {max_bw_mbps!r}')
        links = []
        for link in self.links:
            capacity_mbps = link.capacity_mbps * bw_scale
            if max_bw_mbps is not None:
                capacity_mbps = min(capacity_mbps, max_bw_mbps)
            links.append({'a': self._by_name[link.a].dp_id, 'b': self._by_name[link.b].dp_id,
                          'capacity_mbps': capacity_mbps})
        return {'switches': [{'dp_id': sw.dp_id, 'name': sw.label} for sw in self.switches],
                'links': links}


def data_dir() -> pathlib.Path:
    """The shared dataset folder: $FORESIGHT_DATA_DIR; else <repo root>/../shared/data;
    else, for a clone of a local checkout (``git clone . /tmp/x``), the shared folder
    beside the repository it was cloned from."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = pathlib.Path(override)
        if not path.is_dir():
            raise TopologyError(f'data directory {path} does not exist (from ${DATA_DIR_ENV})')
        return path
    root = pathlib.Path(__file__).resolve().parent.parent
    tried = [root.parent / 'shared' / 'data']
    origin = _local_origin(root)
    if origin is not None:
        tried.append(origin.parent / 'shared' / 'data')
    for path in tried:
        if path.is_dir():
            return path
    raise TopologyError(f'data directory not found (tried {", ".join(str(p) for p in tried)}); '
                        f'put shared/data beside the repository or set ${DATA_DIR_ENV}')


def _local_origin(root: pathlib.Path) -> pathlib.Path | None:
    """The checkout this repository was cloned from, when that is a local path."""
    import subprocess
    try:
        url = subprocess.run(['git', '-C', str(root), 'config', '--get', 'remote.origin.url'],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not url or '://' in url or ':' in url.split('/')[0]:
        return None
    path = pathlib.Path(url)
    return path.resolve() if path.is_dir() else None


def names() -> list[str]:
    """Catalogue names: built-in datasets and toys, then 'zoo:<Name>' for each GraphML found."""
    builtin = sorted(list(_CSV_DATASETS) + list(_TOYS))
    try:
        zoo = _zoo_names(data_dir())
    except TopologyError:
        zoo = []
    return builtin + [ZOO_PREFIX + name for name in zoo]


# pylint: disable-next=redefined-outer-name
def load(name: str, data_dir: pathlib.Path | None = None) -> TopologySpec:
    """The TopologySpec called `name`; data_dir defaults to data_dir()."""
    if name in _TOYS:
        return _toy(name)
    if name in _CSV_DATASETS:
        return _load_csv(name, _resolve_dir(data_dir) / name, directed=_CSV_DATASETS[name])
    if isinstance(name, str) and name.startswith(ZOO_PREFIX):
        return _load_zoo(name[len(ZOO_PREFIX):], _resolve_dir(data_dir))
    raise TopologyError(f'unknown topology {name!r}; valid names: {", ".join(names())} '
                        f'(or {ZOO_PREFIX}<Name> for any topologyzoo/graphml/<Name>.graphml)')


def _resolve_dir(path: pathlib.Path | None) -> pathlib.Path:
    if path is None:
        return data_dir()
    path = pathlib.Path(path)
    if not path.is_dir():
        raise TopologyError(f'data directory {path} does not exist')
    return path


def _toy(name: str) -> TopologySpec:
    count, pairs = _TOYS[name]
    switches = tuple(SwitchSpec(name=f's{i}', dp_id=i, label=f's{i}') for i in range(1, count + 1))
    links = tuple(LinkSpec(f's{a}', f's{b}', TOY_CAPACITY_MBPS) for a, b in pairs)
    return TopologySpec(name=name, switches=switches, links=links, source='builtin')


def _read_csv(path: pathlib.Path, required: set[str]) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise TopologyError(f'missing data file {path}')
    with path.open(newline='', encoding='utf-8') as stream:
        reader = csv.DictReader(stream)
        header = list(reader.fieldnames or [])
        missing = sorted(required - set(header))
        if missing:
            raise TopologyError(
                f'{path}: missing column(s) {", ".join(missing)}; header is {header}')
        return header, list(reader)


def _number(path: pathlib.Path, line: int, column: str, text: str | None) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TopologyError(f'{path} line {line}: {column} {text!r} is not a number') from None
    if not math.isfinite(value):
        raise TopologyError(f'{path} line {line}: {column} {text!r} is not finite')
    return value


def _index(path: pathlib.Path, line: int, column: str, text: str | None) -> int:
    value = _number(path, line, column, text)
    if not value.is_integer():
        raise TopologyError(f'{path} line {line}: {column} {text!r} is not an integer')
    return int(value)


def _load_csv(name: str, folder: pathlib.Path, directed: bool) -> TopologySpec:
    """nodes.csv (node_index,node_id,longitude,latitude) + links.csv (src_index,dst_index,
    capacity_mbps or capacity_bps); directed rows are merged, taking the min of both ways."""
    nodes_path, links_path = folder / 'nodes.csv', folder / 'links.csv'
    _, node_rows = _read_csv(nodes_path, {'node_index', 'node_id', 'longitude', 'latitude'})
    switches = []
    for line, row in enumerate(node_rows, start=2):
        index = _index(nodes_path, line, 'node_index', row['node_index'])
        if index != len(switches):
            raise TopologyError(
                f'{nodes_path} line {line}: node_index {index}, expected {len(switches)}')
        switches.append(SwitchSpec(name=f's{index + 1}', dp_id=index + 1, label=row['node_id'],
                                   lon=_number(nodes_path, line, 'longitude', row['longitude']),
                                   lat=_number(nodes_path, line, 'latitude', row['latitude'])))
    header, link_rows = _read_csv(links_path, {'src_index', 'dst_index'})
    if 'capacity_mbps' in header:
        column, to_mbps = 'capacity_mbps', 1.0
    elif 'capacity_bps' in header:
        column, to_mbps = 'capacity_bps', 1e-6
    else:
        raise TopologyError(
            f'{links_path}: no capacity_mbps or capacity_bps column; header is {header}')
    rates: dict[tuple[int, int], float] = {}  # (src, dst) 0-based -> Mbit/s
    for line, row in enumerate(link_rows, start=2):
        ends = []
        for end in ('src', 'dst'):
            index = _index(links_path, line, f'{end}_index', row[f'{end}_index'])
            if not 0 <= index < len(switches):
                raise TopologyError(f'{links_path} line {line}: {end}_index {index} is not a node')
            if row.get(end) and row[end] != switches[index].label:
                raise TopologyError(f'{links_path} line {line}: {end} {row[end]!r} does not match '
                                    f'node {index} {switches[index].label!r}')
            ends.append(index)
        src, dst = ends
        capacity_mbps = _number(links_path, line, column, row[column]) * to_mbps
        if src == dst or capacity_mbps <= 0:
            raise TopologyError(f'{links_path} line {line}: self-loop or non-positive capacity')
        key = (src, dst) if directed else (min(src, dst), max(src, dst))
        if key in rates:
            raise TopologyError(f'{links_path} line {line}: duplicate link {src}-{dst}')
        rates[key] = capacity_mbps
    merged: dict[tuple[int, int], float] = {}
    for (src, dst), capacity_mbps in sorted(rates.items()):
        pair = (min(src, dst), max(src, dst))
        if pair in merged:
            continue
        if directed:
            reverse = rates.get((dst, src))
            if reverse is None:
                LOG.warning('%s: link %s->%s has no reverse direction; using %s Mbit/s both ways',
                            name, switches[src].label, switches[dst].label, capacity_mbps)
            elif reverse != capacity_mbps:
                LOG.warning('%s: link %s-%s capacities differ by direction (%s, %s Mbit/s); '
                            'using the min',
                            name, switches[src].label, switches[dst].label, capacity_mbps, reverse)
                capacity_mbps = min(capacity_mbps, reverse)
        merged[pair] = capacity_mbps
    links = tuple(LinkSpec(f's{a + 1}', f's{b + 1}', capacity_mbps)
                  for (a, b), capacity_mbps in sorted(merged.items()))
    return TopologySpec(name=name, switches=tuple(switches), links=links,
                        source=f'{nodes_path}, {links_path}')


def _zoo_dir(root: pathlib.Path) -> pathlib.Path:
    return root / 'topologyzoo' / 'graphml'


def _zoo_names(root: pathlib.Path) -> list[str]:
    folder = _zoo_dir(root)
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob('*.graphml') if _ZOO_NAME_RE.match(path.stem))


def _node_order(node_id: str) -> tuple[int, int, str]:
    """Sort key: numeric GraphML ids in numeric order, then any others by text."""
    return (0, int(node_id), '') if node_id.isdigit() else (1, 0, node_id)


def _zoo_capacity_mbps(path: pathlib.Path, u: str, v: str, data: dict) -> float | None:
    raw = data.get('LinkSpeedRaw')
    if raw is None or raw == '':
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise TopologyError(f'{path}: edge {u}-{v} LinkSpeedRaw {raw!r} is not a number') from None
    if not (math.isfinite(value) and value > 0):
        raise TopologyError(f'{path}: edge {u}-{v} LinkSpeedRaw {raw!r} is not positive')
    return value / 1e6


def _load_zoo(zoo_name: str, root: pathlib.Path) -> TopologySpec:
    """A Topology Zoo GraphML file: parallel edges summed, self-loops dropped, largest
    connected component kept, LinkSpeedRaw (bit/s) or ZOO_DEFAULT_CAPACITY_MBPS."""
    import networkx as nx  # pylint: disable=import-outside-toplevel

    path = _zoo_dir(root) / f'{zoo_name}.graphml'
    if not _ZOO_NAME_RE.match(zoo_name) or not path.is_file():
        raise TopologyError(f'no Topology Zoo file {path}; available: '
                            + (', '.join(_zoo_names(root)) or 'none'))
    try:
        graph = nx.read_graphml(path)
    except Exception as exc:  # read_graphml raises XML, networkx and value errors alike
        raise TopologyError(f'{path}: cannot read GraphML: {exc}') from exc
    if graph.is_directed():
        raise TopologyError(f'{path}: expected an undirected graph')
    # Canonical pair (by node order) -> [capacity_mbps sum, all parallel edges known].
    edges: dict[tuple[str, str], list] = {}
    ordered_edges = sorted(graph.edges(data=True),
                           key=lambda e: (_node_order(e[0]), _node_order(e[1])))
    for u, v, data in ordered_edges:
        if u == v:
            LOG.warning('%s: dropping self-loop on node %s', path.name, u)
            continue
        pair = tuple(sorted((u, v), key=_node_order))
        capacity_mbps = _zoo_capacity_mbps(path, u, v, data)
        entry = edges.setdefault(pair, [0.0, True])
        entry[0] += ZOO_DEFAULT_CAPACITY_MBPS if capacity_mbps is None else capacity_mbps
        entry[1] = entry[1] and capacity_mbps is not None
    simple = nx.Graph()
    simple.add_nodes_from(graph.nodes)
    simple.add_edges_from(edges)
    components = sorted((sorted(c, key=_node_order) for c in nx.connected_components(simple)),
                        key=lambda c: (-len(c), _node_order(c[0])))
    kept = components[0] if components else []
    if len(components) > 1:
        LOG.warning('%s: graph is disconnected; keeping the largest component (%d of %d nodes)',
                    path.name, len(kept), graph.number_of_nodes())
    raw_labels = {n: str(graph.nodes[n].get('label', n)) for n in kept}
    label_counts: dict[str, int] = {}
    for label in raw_labels.values():
        label_counts[label] = label_counts.get(label, 0) + 1
    switch_of: dict[str, str] = {}
    switches = []
    for index, node in enumerate(kept):
        attrs = graph.nodes[node]
        label = raw_labels[node]
        if label_counts[label] > 1:  # Zoo labels repeat (towns, 'None'); keep them unique
            label = f'{label}#{node}'
        switch_of[node] = f's{index + 1}'
        switches.append(SwitchSpec(name=switch_of[node], dp_id=index + 1, label=label,
                                   lon=_optional_float(attrs.get('Longitude')),
                                   lat=_optional_float(attrs.get('Latitude'))))
    links = sorted(
        (LinkSpec(switch_of[u], switch_of[v], capacity_mbps, known)
         for (u, v), (capacity_mbps, known) in edges.items() if u in switch_of),
        key=lambda link: (int(link.a[1:]), int(link.b[1:])))
    return TopologySpec(name=ZOO_PREFIX + zoo_name, switches=tuple(switches), links=tuple(links),
                        source=str(path))


def _optional_float(value) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None
