"""A small client for the slices API (``proto/slices.proto``), used by the lab, benchmarks and tests.

The slices service is served on the controller's gRPC port. Methods return the
protobuf messages; refused requests raise ``grpc.RpcError`` with the status code
and a message naming the field, slice, pool or range concerned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from proto.serving import ServiceClient
from proto import slices_pb2 as pb
from proto import slices_pb2_grpc as pb_grpc


def priority_value(priority: str | int) -> int:
    """``"gold"``/``"GOLD"`` (or a ``PriorityClass``) -> ``pb.Priority``; ints pass through unchanged."""
    if isinstance(priority, int):
        return priority
    return pb.Priority.Value(getattr(priority, "name", str(priority)).upper())


class SlicesClient(ServiceClient):
    stub_class = pb_grpc.SlicesStub
    what = "slices API"
    ready_timeout_s = 20.0

    # --- slices ---------------------------------------------------------------------

    def create(self, name: str, *, client: str, vip_cidr: str, bandwidth_mbps: float, per_member_mbps: float,
               pool: str, max_members: int, priority: str | int, min_members: int | None = None,
               sla_quantile: float | None = None, dissolve_after_s: float = 0.0, members: int = 0,
               enforce_timeout_s: float = 0.0) -> pb.Slice:
        """Create a slice; the keywords are ``Slice.to_dict()``'s, so ``create(**spec)`` works.

        ``members`` 0 starts with ``min_members``; ``min_members`` and ``sla_quantile``
        left as None take the server's defaults (1 and 0.9). ``enforce_timeout_s`` > 0:
        return only once every switch has confirmed the slice's rules (the answer's
        ``enforced_s`` says how long that took), else DEADLINE_EXCEEDED after that long."""
        request = pb.CreateSliceRequest(
            name=name, client=client, vip_cidr=str(vip_cidr), bandwidth_mbps=bandwidth_mbps,
            per_member_mbps=per_member_mbps, priority=priority_value(priority), pool=pool,
            max_members=max_members, dissolve_after_s=dissolve_after_s, members=members,
            min_members=min_members, sla_quantile=sla_quantile, enforce_timeout_s=enforce_timeout_s)
        return self.stub.CreateSlice(request, timeout=self._deadline_s(enforce_timeout_s))

    def scale(self, name: str, members: int, enforce_timeout_s: float = 0.0) -> pb.Slice:
        """Set the active member count; ``enforce_timeout_s`` as in ``create``."""
        request = pb.ScaleSliceRequest(name=name, members=members, enforce_timeout_s=enforce_timeout_s)
        return self.stub.ScaleSlice(request, timeout=self._deadline_s(enforce_timeout_s))

    def _deadline_s(self, enforce_timeout_s: float) -> float:
        # The server's own wait comes on top of the usual call time (a bad value is its to refuse).
        extra = enforce_timeout_s if math.isfinite(enforce_timeout_s) and enforce_timeout_s > 0 else 0.0
        return self.timeout_s + extra

    def delete(self, name: str) -> None:
        self.stub.DeleteSlice(pb.DeleteSliceRequest(name=name), timeout=self.timeout_s)

    def get(self, name: str) -> pb.Slice:
        return self.stub.GetSlice(pb.GetSliceRequest(name=name), timeout=self.timeout_s)

    def list(self) -> list[pb.Slice]:
        return list(self.stub.ListSlices(pb.ListSlicesRequest(), timeout=self.timeout_s).slices)

    def watch(self, name: str = "", timeout_s: float | None = None):
        """The stream of ``SliceEvent``s for ``name`` ("" for all slices and pool events):
        SNAPSHOT events of the current state first, one WATCHING event, then changes.
        Iterate it; ``cancel()`` ends it."""
        return self.stub.WatchSlice(pb.WatchSliceRequest(name=name), timeout=timeout_s)

    def watch_started(self, name: str = "", timeout_s: float | None = None):
        """``watch`` once the server is watching: (the SNAPSHOT events, the stream). Every
        change made after this returns is on the stream."""
        stream = self.watch(name, timeout_s)
        snapshot = []
        for event in stream:
            if event.kind == pb.WATCHING:
                return snapshot, stream
            snapshot.append(event)
        raise RuntimeError("the watch ended before the snapshot was complete")

    # --- the pool -------------------------------------------------------------------

    def register_member(self, pool: str, host_id: str, ipv4: str, labels: Mapping[str, str] | None = None
                        ) -> pb.Member:
        request = pb.Member(host_id=host_id, pool=pool, ipv4=str(ipv4), labels=dict(labels or {}))
        return self.stub.RegisterMember(request, timeout=self.timeout_s)

    def unregister_member(self, host_id: str) -> None:
        self.stub.UnregisterMember(pb.UnregisterMemberRequest(host_id=host_id), timeout=self.timeout_s)

    def list_members(self, pool: str = "") -> list[pb.Member]:
        return list(self.stub.ListMembers(pb.ListMembersRequest(pool=pool), timeout=self.timeout_s).members)
