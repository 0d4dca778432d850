"""Network topologies Foresight runs on.

`catalog` turns the public datasets in ../shared/data (Abilene, GEANT, Topology Zoo)
and a few small test shapes into immutable `TopologySpec` data with link capacities;
`mininet_topo` builds a Mininet `Topo` from a spec.
"""
