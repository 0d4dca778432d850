"""The slices gRPC API (``proto/slices.proto``): translates between protobuf and ``SliceManager``.

The servicer holds no state of its own. Requests become the manager's plain
arguments (``CreateSliceRequest`` -> the dict ``slice_from_dict`` validates); the
manager's views become messages. Errors map to status codes in one place
(``_CODES``) and the details are the error's message, which starts with the
field, slice, pool or range concerned. ``services(manager)`` is what the
controller shell serves next to its own API (``controller.api.create_server``).

``enforce_timeout_s`` > 0 on CreateSlice or ScaleSlice: the manager has sent the
change (its resync runs in this thread) when it returns; the servicer then waits
until every switch has answered the barrier after it (``core.wait_confirmed``)
and reports the time since the request arrived in ``enforced_s``. If that takes
too long (DEADLINE_EXCEEDED), a switch disconnects first (UNAVAILABLE) or a switch
refuses part of it (FAILED_PRECONDITION, naming the switch and the OpenFlow error),
the change stays made, and the message says so.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import grpc

from apps.slices.manager import MemberView, SliceEvent, SliceManager, SliceView
from apps.slices.model import (Conflict, Exhausted, InvalidSlice, MemberNotFound, PriorityClass, SliceExists,
                               SliceNotFound, check_slug, check_text)
from apps.slices.pool import Member
from apps.slices.scaling import ScalingDecision
from apps.slices.store import StoreError
from controller.api import (Arrival, EnforceLost, EnforceRefused, NotEnforced, app_service, arrival, stream,
                            wait_enforced)
from proto import slices_pb2 as pb
from proto import slices_pb2_grpc as pb_grpc
from proto.serving import status_for

LOG = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Slices"].full_name
WATCH_POLL_S = 0.5                   # how often a watch checks that its caller is still there


# InvalidMember derives from InvalidSlice; order matters only between base and subclass.
_CODES = {InvalidSlice: grpc.StatusCode.INVALID_ARGUMENT,
          SliceNotFound: grpc.StatusCode.NOT_FOUND,
          MemberNotFound: grpc.StatusCode.NOT_FOUND,
          SliceExists: grpc.StatusCode.ALREADY_EXISTS,
          Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
          Conflict: grpc.StatusCode.FAILED_PRECONDITION,
          StoreError: grpc.StatusCode.UNAVAILABLE,
          NotEnforced: grpc.StatusCode.DEADLINE_EXCEEDED,
          EnforceLost: grpc.StatusCode.UNAVAILABLE,
          # A switch cannot hold the change as asked: asking again will not help
          # (controller.api.EnforceRefused says why this code).
          EnforceRefused: grpc.StatusCode.FAILED_PRECONDITION}


def _status(context: grpc.ServicerContext):
    return status_for(context, _CODES)


# --- protobuf <-> domain ---------------------------------------------------------------

def _priority(value: int) -> PriorityClass:
    names = ", ".join(p.name for p in PriorityClass)
    if value == pb.PRIORITY_UNSPECIFIED:
        raise InvalidSlice("priority", f"required, one of {names}")
    if value not in pb.Priority.values():
        raise InvalidSlice("priority", f"must be one of {names}, got {value}")
    return PriorityClass(pb.Priority.Name(value).lower())


def _spec(request: pb.CreateSliceRequest) -> dict:
    """The request as the plain mapping ``slice_from_dict`` validates."""
    spec = {"name": request.name, "client": request.client, "vip_cidr": request.vip_cidr,
            "bandwidth_mbps": request.bandwidth_mbps, "per_member_mbps": request.per_member_mbps,
            "pool": request.pool, "max_members": request.max_members,
            "priority": _priority(request.priority), "dissolve_after_s": request.dissolve_after_s}
    if request.HasField("min_members"):
        spec["min_members"] = request.min_members
    if request.HasField("sla_quantile"):
        spec["sla_quantile"] = request.sla_quantile
    return spec


def _decision_pb(decision: ScalingDecision) -> pb.ScalingDecision:
    return pb.ScalingDecision(action=pb.ScalingAction.Value(decision.action.upper()),
                              basis=pb.DemandBasis.Value(decision.basis.upper()),
                              current_members=decision.current_members,
                              target_members=decision.target_members, demand_mbps=decision.demand_mbps,
                              lead_time_s=decision.lead_time_s, reason=decision.reason,
                              decided_at_s=decision.decided_at_s, measured_mbps=decision.measured_mbps,
                              forecast_mbps=decision.forecast_mbps,
                              forecast_horizon_s=decision.forecast_horizon_s)


def _member_view_pb(m: MemberView) -> pb.SliceMember:
    return pb.SliceMember(host_id=m.host_id, ipv4=m.ipv4, vip=m.vip, draining_until_s=m.draining_until or 0.0,
                          placed=m.placed, mac=m.mac, dp_id=m.dp_id, port_no=m.port_no)


def _slice_pb(view: SliceView) -> pb.Slice:
    s, r = view.slice, view.rates
    rates = pb.SliceRates(offered_in_mbps=r.offered_in_mbps, delivered_in_mbps=r.delivered_in_mbps,
                          offered_out_mbps=r.offered_out_mbps, delivered_out_mbps=r.delivered_out_mbps,
                          time=r.time, bytes_in=r.bytes_in, dropped_bytes_in=r.dropped_bytes_in,
                          bytes_out=r.bytes_out, dropped_bytes_out=r.dropped_bytes_out)
    msg = pb.Slice(name=s.name, client=s.client, vip_cidr=str(s.vip_cidr), bandwidth_mbps=s.bandwidth_mbps,
                   per_member_mbps=s.per_member_mbps, priority=pb.Priority.Value(s.priority.name),
                   pool=s.pool, min_members=s.min_members, max_members=s.max_members,
                   sla_quantile=s.sla_quantile, dissolve_after_s=s.dissolve_after_s,
                   service_vip=view.service_vip, virtual_mac=view.virtual_mac, index=view.index,
                   members=[_member_view_pb(m) for m in view.members], active_members=len(view.active),
                   rates=rates)
    if view.last_decision is not None:
        msg.last_decision.CopyFrom(_decision_pb(view.last_decision))
    return msg


def _event_pb(event: SliceEvent) -> pb.SliceEvent:
    msg = pb.SliceEvent(kind=pb.SliceEventKind.Value(event.kind), time=event.time,
                        slice_name=event.slice_name, detail=event.detail)
    if event.view is not None:
        msg.slice.CopyFrom(_slice_pb(event.view))
    if event.decision is not None:
        msg.decision.CopyFrom(_decision_pb(event.decision))
    return msg


def _member_pb(member: Member, owners: dict[str, str]) -> pb.Member:
    return pb.Member(host_id=member.host_id, pool=member.pool, ipv4=str(member.ipv4),
                     labels=dict(member.labels), slice_name=owners.get(member.host_id, ""))


def _slice_name(name: str) -> str:
    return check_slug("name", name)


def _enforce_timeout(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidSlice("enforce_timeout_s", f"must be a finite number of seconds >= 0 (0: do not wait), "
                                                f"got {value}")
    return value


# --- the servicer ----------------------------------------------------------------------

class SlicesServicer(pb_grpc.SlicesServicer):
    def __init__(self, manager: SliceManager):
        self.manager = manager

    def CreateSlice(self, request, context):
        arrived = arrival(self.manager.view)
        with _status(context):
            timeout_s = _enforce_timeout(request.enforce_timeout_s)
            members = request.members or None
            view = self.manager.create(_spec(request), members=members)
            return self._enforced(_slice_pb(view), arrived, timeout_s, "is created")

    def ScaleSlice(self, request, context):
        arrived = arrival(self.manager.view)
        with _status(context):
            timeout_s = _enforce_timeout(request.enforce_timeout_s)
            view = self.manager.scale(_slice_name(request.name), request.members)
            return self._enforced(_slice_pb(view), arrived, timeout_s,
                                  f"is scaled to {len(view.active)} active member(s)")

    def _enforced(self, msg: pb.Slice, arrived: Arrival, timeout_s: float, change: str) -> pb.Slice:
        """``msg`` once every switch confirmed what was sent so far (if timeout_s > 0)."""
        if timeout_s:
            msg.enforced_s = wait_enforced(self.manager.view, arrived, timeout_s,
                                           f"slice {msg.name!r} {change} and stays so")
        return msg

    def DeleteSlice(self, request, context):
        with _status(context):
            self.manager.delete(_slice_name(request.name))
        return pb.DeleteSliceResponse()

    def GetSlice(self, request, context):
        with _status(context):
            return _slice_pb(self.manager.get(_slice_name(request.name)))

    def ListSlices(self, request, context):
        return pb.ListSlicesResponse(slices=[_slice_pb(v) for v in self.manager.list()])

    def WatchSlice(self, request, context):
        with _status(context):
            name = _slice_name(request.name) if request.name else ""
        bus = self.manager.bus
        # Filtered at the bus: a watcher of one slice never queues (nor falls behind on)
        # the others' events.
        sub = bus.subscribe(frozenset(), accept=(lambda e: e.slice_name == name) if name else None)
        try:
            # Subscribed first, so no change between the snapshot and the stream is lost.
            now = self.manager.clock()
            for view in self.manager.list():
                if not name or view.slice.name == name:
                    yield pb.SliceEvent(kind=pb.SNAPSHOT, time=now, slice_name=view.slice.name,
                                        detail="current state", slice=_slice_pb(view))
            yield pb.SliceEvent(kind=pb.WATCHING, time=now, slice_name=name, detail="snapshot complete")
            yield from stream(sub, context, _event_pb)
        finally:
            bus.unsubscribe(sub)

    def RegisterMember(self, request, context):
        with _status(context):
            member = self.manager.register_member(request.pool, request.host_id, request.ipv4,
                                                  dict(request.labels))
        return _member_pb(member, self._owners())

    def UnregisterMember(self, request, context):
        with _status(context):
            host_id = check_text("host_id", request.host_id, max_chars=128)
            self.manager.unregister_member(host_id)
        return pb.UnregisterMemberResponse()

    def ListMembers(self, request, context):
        owners = self._owners()
        return pb.ListMembersResponse(members=[_member_pb(m, owners)
                                               for m in self.manager.members(request.pool or None)])

    def _owners(self) -> dict[str, str]:
        """host_id -> the slice it serves (the manager's members carry no owner)."""
        return {m.host_id: view.slice.name for view in self.manager.list() for m in view.members}


def services(manager: SliceManager) -> list[tuple[str, Callable[[grpc.Server], None]]]:
    """The slices service for ``controller.api.create_server``: [(full name, register(server))]."""
    return [app_service(SlicesServicer(manager), pb_grpc.add_SlicesServicer_to_server, SERVICE_NAME)]
