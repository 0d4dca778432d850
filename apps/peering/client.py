"""A small client for the peering API (``proto/peering.proto``), for the CLI, labs and tests.

Methods return the protobuf messages; refused requests raise ``grpc.RpcError`` with
the status code and a message naming the field or neighbour.
"""

from __future__ import annotations

from proto import peering_pb2 as pb
from proto import peering_pb2_grpc as pb_grpc
from proto.serving import ServiceClient


class PeeringClient(ServiceClient):
    stub_class = pb_grpc.PeeringStub
    what = "peering API"

    def list(self) -> list[pb.Session]:
        return list(self.stub.ListPeerings(pb.ListPeeringsRequest(), timeout=self.timeout_s).peerings)

    def candidates(self) -> list[pb.Candidate]:
        return list(self.stub.ListCandidates(pb.ListCandidatesRequest(), timeout=self.timeout_s).candidates)

    def plan(self, decisions: int = 0) -> pb.Plan:
        return self.stub.GetPlan(pb.GetPlanRequest(decisions=decisions), timeout=self.timeout_s)

    def establish(self, name: str) -> pb.Session:
        return self.stub.Establish(pb.EstablishRequest(name=name), timeout=self.timeout_s)

    def withdraw(self, name: str) -> pb.Session:
        return self.stub.Withdraw(pb.WithdrawRequest(name=name), timeout=self.timeout_s)

    def release(self, name: str) -> pb.Session:
        return self.stub.Release(pb.ReleaseRequest(name=name), timeout=self.timeout_s)

    def watch(self, name: str = "", timeout_s: float | None = None):
        """``PeeringEvent``s: SNAPSHOT per neighbour, one WATCHING, then changes. ``cancel()`` ends it."""
        return self.stub.WatchPeering(pb.WatchPeeringRequest(name=name), timeout=timeout_s)
