"""A small client for the northbound API, used by the operator CLI, the lab and tests."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2_grpc

from proto.serving import wait_serving
from proto import controller_pb2 as pb
from proto import controller_pb2_grpc as pb_grpc


class ControllerClient:
    def __init__(self, address: str, timeout_s: float = 5.0):
        self.address = address
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.ControllerStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout_s: float = 20.0, alive=lambda: True) -> None:
        """Until the health service says SERVING; ``alive()`` False aborts early."""
        wait_serving(self.health, f"controller at {self.address}", timeout_s, alive)

    def topology(self) -> pb.Topology:
        return self.stub.GetTopology(pb.GetTopologyRequest(), timeout=self.timeout_s)

    def hosts(self, dp_id: int = 0) -> list[pb.Host]:
        return list(self.stub.ListHosts(pb.ListHostsRequest(dp_id=dp_id), timeout=self.timeout_s).hosts)

    def path(self, src: str, dst: str) -> pb.Path:
        return self.stub.GetPath(pb.GetPathRequest(src=src, dst=dst), timeout=self.timeout_s)

    def status(self) -> pb.Status:
        return self.stub.GetStatus(pb.GetStatusRequest(), timeout=self.timeout_s)

    def watch(self, kinds: list[str] = ()):
        request = pb.WatchEventsRequest(kinds=[pb.EventKind.Value(k) for k in kinds])
        return self.stub.WatchEvents(request)

    def wait_topology(self, switches: int, links: int, timeout_s: float = 60.0) -> pb.Topology:
        """Poll until exactly this many switches and directed links are discovered."""
        deadline = time.monotonic() + timeout_s
        topo = self.topology()
        while time.monotonic() < deadline:
            topo = self.topology()
            if len(topo.switches) == switches and len(topo.links) == links:
                return topo
            time.sleep(0.25)
        raise TimeoutError(f"discovery: expected {switches} switches and {links} links, "
                           f"have {len(topo.switches)} and {len(topo.links)} after {timeout_s} s")
