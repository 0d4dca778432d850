"""Foresight controller core: os-ken app shell, topology graph, OpenFlow pipeline,
telemetry, northbound gRPC API."""
