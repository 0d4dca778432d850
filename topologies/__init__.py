"""Network topologies Foresight runs on.

`catalog` turns the public datasets in ../shared/data (Abilene, GEANT, Topology Zoo)
and a few small test shapes into immutable `TopologySpec` data with link capacities;
`mininet_topo` builds a Mininet `Topo` from a spec; `sites` builds several substrate
sites, each its own Open vSwitch, joined by an underlay; `processes` starts Open
vSwitch and stops child processes by handle. Nothing here imports the labs.
"""
