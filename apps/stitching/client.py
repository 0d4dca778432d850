"""A small client for the stitching API (``proto/stitching.proto``), used by the lab
and tests. Methods return protobuf messages; refused requests raise
``grpc.RpcError`` (a policy refusal: PERMISSION_DENIED naming the rule)."""

from __future__ import annotations

from proto import stitching_pb2 as pb
from proto import stitching_pb2_grpc as pb_grpc
from proto.serving import ServiceClient

KINDS = {"direct": pb.DIRECT, "segment": pb.SEGMENT, "bandwidth": pb.BANDWIDTH}


class StitchingClient(ServiceClient):
    stub_class = pb_grpc.StitchingStub
    what = "stitching API"

    def query(self, tenant: str, src_vnid: int, dst_vnid: int, min_mbps: float = 0.0, max_rtt_ms: float = 0.0,
              bandwidth_mbps: float = 0.0) -> pb.StitchAvailability:
        return self.stub.QueryStitchAvailability(pb.QueryStitchAvailabilityRequest(
            tenant=tenant, src_vnid=src_vnid, dst_vnid=dst_vnid, bandwidth_mbps=bandwidth_mbps,
            requirements=pb.Requirements(min_mbps=min_mbps, max_rtt_ms=max_rtt_ms)), timeout=self.timeout_s)

    def create(self, tenant: str, kind: str, src_vnid: int, dst_vnid: int, *, id: str = "",
               src_host: str = "", dst_host: str = "", bandwidth_mbps: float = 0.0, min_mbps: float = 0.0,
               max_rtt_ms: float = 0.0, enforce_timeout_s: float = 0.0) -> pb.Stitch:
        request = pb.CreateStitchRequest(
            id=id, tenant=tenant, kind=KINDS.get(kind, 0), src_vnid=src_vnid, dst_vnid=dst_vnid,
            src_host=src_host, dst_host=dst_host, bandwidth_mbps=bandwidth_mbps,
            requirements=pb.Requirements(min_mbps=min_mbps, max_rtt_ms=max_rtt_ms),
            enforce_timeout_s=enforce_timeout_s)
        return self.stub.CreateStitch(request, timeout=self.timeout_s + max(0.0, enforce_timeout_s))

    def adjust(self, stitch_id: str, bandwidth_mbps: float, enforce_timeout_s: float = 0.0) -> pb.Stitch:
        return self.stub.AdjustStitch(pb.AdjustStitchRequest(id=stitch_id, bandwidth_mbps=bandwidth_mbps,
                                                             enforce_timeout_s=enforce_timeout_s),
                                      timeout=self.timeout_s + max(0.0, enforce_timeout_s))

    def get(self, stitch_id: str) -> pb.Stitch:
        return self.stub.GetStitch(pb.GetStitchRequest(id=stitch_id), timeout=self.timeout_s)

    def list(self, tenant: str = "") -> list[pb.Stitch]:
        return list(self.stub.ListStitches(pb.ListStitchesRequest(tenant=tenant),
                                           timeout=self.timeout_s).stitches)

    def delete(self, stitch_id: str) -> pb.Stitch:
        return self.stub.DeleteStitch(pb.DeleteStitchRequest(id=stitch_id), timeout=self.timeout_s).stitch

    def watch(self, stitch_id: str = ""):
        """The server stream of StitchEvents (cancel it to stop)."""
        return self.stub.WatchStitches(pb.WatchStitchesRequest(id=stitch_id))

    def sites(self) -> list[pb.SiteInfo]:
        return list(self.stub.ListSites(pb.ListSitesRequest(), timeout=self.timeout_s).sites)
