"""A small client for the provisioning API (``proto/provisioning.proto``), for the CLI, labs and tests.

Methods return the protobuf messages; refused requests raise ``grpc.RpcError`` with
the status code and a message naming the field, change or state.
"""

from __future__ import annotations

import json

from proto import provisioning_pb2 as pb
from proto import provisioning_pb2_grpc as pb_grpc
from proto.serving import ServiceClient


class ProvisioningClient(ServiceClient):
    stub_class = pb_grpc.ProvisioningStub
    what = "provisioning API"

    def recommendations(self) -> pb.ListRecommendationsResponse:
        return self.stub.ListRecommendations(pb.ListRecommendationsRequest(), timeout=self.timeout_s)

    def queue(self) -> list[pb.Change]:
        return list(self.stub.GetQueue(pb.GetQueueRequest(), timeout=self.timeout_s).changes)

    def stage(
        self,
        change_id: str = "",
        recommendation_id: str = "",
        template: str = "",
        params: dict | None = None,
        crossing_s: float = 0.0,
        need_mbps: float = 0.0,
        timeout_s: float | None = None,
    ) -> pb.Change:
        request = pb.StageRequest(
            change_id=change_id,
            recommendation_id=recommendation_id,
            template=template,
            params_json=json.dumps(params) if params is not None else "",
            crossing_s=crossing_s,
            need_mbps=need_mbps,
        )
        return self.stub.Stage(request, timeout=timeout_s or max(self.timeout_s, 120))

    def deploy(self, change_id: str, timeout_s: float | None = None) -> pb.Change:
        return self.stub.Deploy(
            pb.DeployRequest(change_id=change_id), timeout=timeout_s or max(self.timeout_s, 60)
        )

    def rollback(self, change_id: str, reason: str = "") -> pb.Change:
        return self.stub.Rollback(
            pb.RollbackRequest(change_id=change_id, reason=reason), timeout=max(self.timeout_s, 60)
        )

    def change(self, change_id: str) -> pb.Change:
        return self.stub.GetChange(pb.GetChangeRequest(change_id=change_id), timeout=self.timeout_s)

    def changes(self, limit: int = 0) -> list[pb.Change]:
        return list(self.stub.ListChanges(pb.ListChangesRequest(limit=limit), timeout=self.timeout_s).changes)

    def templates(self) -> list[pb.Template]:
        return list(self.stub.ListTemplates(pb.ListTemplatesRequest(), timeout=self.timeout_s).templates)

    def watch(self, change_id: str = "", timeout_s: float | None = None):
        """``ProvisioningEvent``s: SNAPSHOT per open change, one WATCHING, then events.
        ``cancel()`` ends it."""
        return self.stub.WatchProvisioning(
            pb.WatchProvisioningRequest(change_id=change_id), timeout=timeout_s
        )
