"""Mininet topologies built from catalogue specs.

`SpecTopo` only describes the network (Mininet's `topo.py` style: everything happens
in `build()`); starting an emulation is left to whoever creates the `Mininet` object.

Port numbering, which flow tables and tests rely on: each switch gets its hosts first,
so a switch's ports 1..hosts_per_switch face its hosts (port 1 = its first host), and
its switch-switch ports follow in the spec's link order. Hosts are numbered n = 1, 2, ...
in switch order; host n has IP 10.0.0.0/16 + n (Mininet's own scheme, so h1 is
10.0.0.1) and MAC 00:00:00:00:<n high byte>:<n low byte>.

``prefix`` (default none) goes in front of every switch and host name (``sts1``,
``sth1``) and so of their interfaces in the root namespace (``sts1-eth1``), with the
same datapath ids, IPs and MACs: a second copy of a topology (the staging copy,
``labs.staging``) runs beside the first on one machine without a name clash.

Link rates are the dataset capacity times bw_scale, capped at max_bw_mbps (TCLink
cannot shape much above 1 Gbit/s). From the command line, from the repository root:

    sudo mn --custom topologies/mininet_topo.py --topo abilene,bw_scale=0.001 \\
        --link tc --switch ovs,protocols=OpenFlow13 --controller remote
    sudo mn --custom topologies/mininet_topo.py --topo zoo,Geant2012 --link tc ...

`mn` must run a Python that has networkx for the 'zoo' topologies (for example
`sudo /tmp/venvtest/bin/python /usr/bin/mn ...`).
"""

import inspect
import ipaddress
import os
import re
import sys

from mininet.topo import Topo

try:
    from topologies.catalog import TopologyError, TopologySpec, load
except ImportError:
    # `mn --custom` exec()s this file without __file__ or the repository on sys.path;
    # the compiled code still knows its file name, which locates the repository.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
        inspect.currentframe().f_code.co_filename))))
    from topologies.catalog import TopologyError, TopologySpec, load

HOST_NETWORK = ipaddress.IPv4Network('10.0.0.0/16')
MAX_HOSTS = HOST_NETWORK.num_addresses - 2  # no network or broadcast address
OPENFLOW_PROTOCOLS = 'OpenFlow13'
MAX_INTF_NAME = 15           # Linux IFNAMSIZ less the terminating NUL
PREFIX_RE = re.compile(r'^[a-z][a-z0-9]{0,5}$')


def _as_bool(value) -> bool:
    """mn passes topo arguments as text: accept 'false', '0', 'no' as False."""
    if isinstance(value, str):
        return value.strip().lower() not in ('', '0', 'false', 'no', 'off')
    return bool(value)


class SpecTopo(Topo):
    """A Mininet Topo for a TopologySpec: one OpenFlow 1.3 switch per spec switch,
    hosts_per_switch hosts on each, and one link per spec link; node names carry
    ``prefix`` (see the module docstring)."""

    # pylint: disable-next=arguments-differ
    def build(self, spec: TopologySpec, bw_scale: float = 0.001, hosts_per_switch: int = 1,
              max_bw_mbps: float = 1000.0, link_bw: bool = True, prefix: str = '') -> None:
        if not isinstance(spec, TopologySpec):
            raise TopologyError(f'spec must be a TopologySpec, got {type(spec).__name__}')
        if not (isinstance(bw_scale, (int, float)) and bw_scale > 0):
            raise TopologyError(f'bw_scale must be a positive number, got {bw_scale!r}')
        if not (isinstance(max_bw_mbps, (int, float)) and max_bw_mbps > 0):
            raise TopologyError(f'max_bw_mbps must be a positive number, got {max_bw_mbps!r}')
        if not isinstance(hosts_per_switch, int) or hosts_per_switch < 0:
            raise TopologyError(
                f'hosts_per_switch must be a non-negative integer, got {hosts_per_switch!r}')
        if hosts_per_switch * len(spec.switches) > MAX_HOSTS:
            raise TopologyError(
                f'{spec.name}: {hosts_per_switch * len(spec.switches)} hosts do not '
                f'fit in {HOST_NETWORK} ({MAX_HOSTS} addresses)')
        if not isinstance(prefix, str) or (prefix and not PREFIX_RE.match(prefix)):
            raise TopologyError(
                f'prefix must be 1-6 lower-case letters or digits, starting with a letter, got {prefix!r}')
        if prefix:
            _check_names(spec, hosts_per_switch, prefix)
        self.spec = spec
        self.prefix = prefix
        self.bw_scale = bw_scale
        self.max_bw_mbps = max_bw_mbps
        self.link_bw = _as_bool(link_bw)
        self._hosts_of: dict[str, list[str]] = {}

        for sw in spec.switches:
            self.addSwitch(prefix + sw.name, dpid='%016x' % sw.dp_id, protocols=OPENFLOW_PROTOCOLS)
        # Host links go in before any switch-switch link so that port 1 of every
        # switch is its first host, whatever the topology.
        number = 0
        for sw in spec.switches:
            self._hosts_of[sw.name] = []
            for k in range(1, hosts_per_switch + 1):
                number += 1
                host = prefix + host_name(sw.dp_id, k, hosts_per_switch)
                self.addHost(host, ip=f'{HOST_NETWORK[number]}/{HOST_NETWORK.prefixlen}',
                             mac='00:00:00:00:%02x:%02x' % (number >> 8, number & 0xff))
                self.addLink(host, prefix + sw.name)
                self._hosts_of[sw.name].append(host)
        for link in spec.cabling():       # spares last: the other links keep their ports
            if self.link_bw:
                self.addLink(prefix + link.a, prefix + link.b, bw=self.link_bw_mbps(link.capacity_mbps))
            else:
                self.addLink(prefix + link.a, prefix + link.b)

    def link_bw_mbps(self, capacity_mbps: float) -> float:
        """The emulated rate for a link of dataset capacity capacity_mbps."""
        return min(capacity_mbps * self.bw_scale, self.max_bw_mbps)

    def host_for_switch(self, name: str) -> list[str]:
        """Names of the hosts attached to spec switch `name` (unprefixed), in port order."""
        try:
            return list(self._hosts_of[name])
        except KeyError:
            raise TopologyError(f'{self.spec.name}: no switch named {name!r}') from None


def host_name(dp_id: int, k: int, hosts_per_switch: int) -> str:
    """The k-th (1-based) host of switch ``dp_id``, without a prefix."""
    return f'h{dp_id}' if hosts_per_switch == 1 else f'h{dp_id}x{k}'


def _check_names(spec: TopologySpec, hosts_per_switch: int, prefix: str) -> None:
    """Every interface name Mininet will make (``<node>-eth<port>``) fits IFNAMSIZ."""
    degree = {sw.name: hosts_per_switch for sw in spec.switches}
    for link in spec.links:
        degree[link.a] += 1
        degree[link.b] += 1
    names = [f'{prefix}{sw.name}-eth{degree[sw.name]}' for sw in spec.switches]
    names += [f'{prefix}{host_name(sw.dp_id, hosts_per_switch, hosts_per_switch)}-eth0'
              for sw in spec.switches if hosts_per_switch]
    longest = max(names, key=len, default='')
    if len(longest) > MAX_INTF_NAME:
        raise TopologyError(f'{spec.name}: with prefix {prefix!r} the interface name {longest!r} is longer '
                            f'than {MAX_INTF_NAME} characters; use a shorter prefix')


class EdgeTopo(Topo):
    """One border switch (``edge``, dp_id 1) of an AS that exchanges traffic with other
    networks: our senders (10.0.0.0/24, port 1 onwards; their gateway is the
    controller's virtual router), our BGP speaker ``bgp`` (10.100.0.1/24 on the
    peering LAN), then one host per neighbour (its router, on the peering LAN), each
    link shaped to the neighbour's capacity. ``neighbours`` is [(name, ip, capacity
    Mbit/s)]. (Mininet's ``max_queue_size`` needs netem, which these machines lack:
    the shaped links keep HTB's default queue.)"""

    # pylint: disable-next=arguments-differ
    def build(self, neighbours=(), senders: int = 1) -> None:
        self.addSwitch('edge', dpid='%016x' % 1, protocols=OPENFLOW_PROTOCOLS)
        for k in range(1, senders + 1):
            self.addHost(f'src{k}', ip=f'10.0.0.{k}/24', mac='00:00:00:00:00:%02x' % k,
                         defaultRoute='via 10.0.0.254')
            self.addLink(f'src{k}', 'edge')
        self.addHost('bgp', ip='10.100.0.1/24', mac='00:00:00:00:01:01')
        self.addLink('bgp', 'edge')
        for k, (name, ip, capacity_mbps) in enumerate(neighbours, start=2):
            self.addHost(name, ip=f'{ip}/24', mac='00:00:00:00:01:%02x' % k)
            self.addLink(name, 'edge', bw=capacity_mbps)


def _catalog_topo(name: str):
    def make(*args, **params) -> SpecTopo:
        return SpecTopo(load(name), *args, **params)
    return make


def _zoo_topo(zoo_name: str, *args, **params) -> SpecTopo:
    return SpecTopo(load('zoo:' + zoo_name), *args, **params)


# For `mn --custom topologies/mininet_topo.py --topo <name>[,arg=value...]`.
topos = {name: _catalog_topo(name)
         for name in ('abilene', 'geant', 'line2', 'line3', 'triangle', 'ring4', 'diamond')}
topos['zoo'] = _zoo_topo
