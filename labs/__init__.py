"""Lab scenarios: Foresight's controller, predictor and apps run against an emulated
network (Mininet or the multi-site builder) with real traffic, measured and reported.

`lab` starts a controller process and a Mininet network of a catalogue topology
together; `sites_lab` does the same for the multi-site builder; the scenarios
(`demo`, `slices_lab`, `te_lab`, `stitching_lab`, `failover_lab`) are what
``foresight lab run`` runs; `udp_probe`, `tm_peer`, `slice_peer`, `pair_burst` and
`miss_flood` are standard-library scripts run inside the emulated hosts.

Labs import topologies, the controller and the apps; nothing below imports labs.
"""
