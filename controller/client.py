"""A small client for the northbound API, used by the operator CLI, the lab and tests."""

from __future__ import annotations

import time

from proto.serving import ServiceClient
from proto import controller_pb2 as pb
from proto import controller_pb2_grpc as pb_grpc


class ControllerClient(ServiceClient):
    stub_class = pb_grpc.ControllerStub
    what = "controller"
    ready_timeout_s = 20.0

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
