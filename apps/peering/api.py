"""The peering gRPC API (``proto/peering.proto``): protobuf <-> ``PeeringManager``.

The servicer holds no state; errors map to status codes in one place (``_CODES``).
"""

from __future__ import annotations

from typing import Callable

import grpc

from apps.peering.gobgp import GoBgpError, GoBgpUnavailable
from apps.peering.manager import DecisionRecord, InvalidRequest, PeeringManager, Refused, UnknownNeighbour
from apps.peering.sessions import Session, SessionEvent
from apps.peering.store import PeeringStoreError
from controller.api import app_service, stream
from proto import peering_pb2 as pb
from proto import peering_pb2_grpc as pb_grpc
from proto.serving import status_for

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Peering"].full_name
DEFAULT_DECISIONS = 50

_CODES = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownNeighbour: grpc.StatusCode.NOT_FOUND,
    Refused: grpc.StatusCode.FAILED_PRECONDITION,
    GoBgpUnavailable: grpc.StatusCode.UNAVAILABLE,
    GoBgpError: grpc.StatusCode.UNAVAILABLE,
    PeeringStoreError: grpc.StatusCode.UNAVAILABLE,
}
_OVERRIDES = {"none": pb.OVERRIDE_NONE, "up": pb.FORCE_UP, "down": pb.FORCE_DOWN}


def session_pb(manager: PeeringManager, s: Session, rates: dict[str, float] | None = None) -> pb.Session:
    n = manager.neighbours[s.name]
    rate = (rates or {}).get(s.name, 0.0)
    ports = {p.name: p for p in manager.exit_ports()} if s.established else {}
    port = ports.get(s.name)
    return pb.Session(
        name=s.name,
        asn=n.asn,
        address=n.address,
        kind=n.kind,
        state=pb.SessionState.Value(s.state),
        detail=s.detail,
        override=_OVERRIDES[s.override],
        since=s.since,
        prefixes=manager.rib.prefixes_from(s.name),
        capacity_mbps=n.capacity_mbps,
        rate_mbps=rate,
        utilisation=rate / n.capacity_mbps,
        slice_mbps=(port.slice_kbps / 1000.0) if port is not None else 0.0,
        slice_priority=n.priority if n.kind == "peer" else "",
        sla=pb.Sla(
            committed_mbps=s.sla.committed_mbps,
            max_latency_ms=s.sla.max_latency_ms,
            requested_at=s.sla.requested_at,
        ),
        groups=sum(1 for e in manager.assignment.values() if e == s.name),
        lead_s=s.lead_s,
    )


def decision_pb(d: DecisionRecord) -> pb.Decision:
    return pb.Decision(time=d.time, kind=d.kind, target=d.target, detail=d.detail, numbers=d.numbers)


class PeeringServicer(pb_grpc.PeeringServicer):
    def __init__(self, manager: PeeringManager):
        self.manager = manager

    def ListCandidates(self, request, context):
        with self.manager.lock:
            return pb.ListCandidatesResponse(candidates=[pb.Candidate(**c) for c in self.manager.candidates])

    def GetPlan(self, request, context):
        m = self.manager
        limit = request.decisions or DEFAULT_DECISIONS
        with m.lock:
            groups = []
            for g in m.rib.groups():
                order = m.exit_order(g)
                groups.append(
                    pb.GroupPlan(
                        group=g.name,
                        prefixes=len(g.prefixes),
                        exit=order[0] if order else "",
                        backups=order[1:],
                        measured_mbps=m.group_rate(g.name),
                        forecast_mbps=m.forecast_mbps.get(g.name, 0.0),
                        moved_at=m.moved_at.get(g.name, 0.0),
                    )
                )
            decisions = [decision_pb(d) for d in reversed(list(m.decisions)[-limit:])]
            return pb.Plan(
                scheme=m.settings.scheme,
                basis=m.basis(),
                time=m.plan_time,
                groups=groups,
                decisions=decisions,
                transit_p95_mbps=m.transit_p95(),
                degraded=bool(m.degraded),
                degraded_reason=m.degraded,
            )

    def Establish(self, request, context):
        with status_for(context, _CODES):
            return session_pb(self.manager, self.manager.establish(request.name))

    def Withdraw(self, request, context):
        with status_for(context, _CODES):
            return session_pb(self.manager, self.manager.withdraw(request.name))

    def Release(self, request, context):
        with status_for(context, _CODES):
            return session_pb(self.manager, self.manager.release(request.name))

    def ListPeerings(self, request, context):
        m = self.manager
        rates = m.exit_rates()
        with m.lock:
            return pb.ListPeeringsResponse(peerings=[session_pb(m, s, rates) for s in m.sessions.values()])

    def WatchPeering(self, request, context):
        m = self.manager
        wanted = request.name
        if wanted and wanted not in m.neighbours:
            context.abort(grpc.StatusCode.NOT_FOUND, f"neighbour {wanted!r}: not configured")

        def accept(event) -> bool:
            return not wanted or getattr(event, "name", getattr(event, "target", "")) == wanted

        sub = m.bus.subscribe(frozenset(), accept=accept)
        try:
            now = m.clock.virtual(m.wall())
            with m.lock:
                snapshot = [session_pb(m, s) for s in m.sessions.values() if not wanted or s.name == wanted]
            for s in snapshot:
                yield pb.PeeringEvent(
                    kind=pb.SNAPSHOT, time=now, name=s.name, detail="current state", peering=s
                )
            yield pb.PeeringEvent(kind=pb.WATCHING, time=now, name=wanted, detail="snapshot complete")
            yield from stream(sub, context, self._event_pb)
        finally:
            m.bus.unsubscribe(sub)

    def _event_pb(self, event) -> pb.PeeringEvent:
        if isinstance(event, SessionEvent):
            with self.manager.lock:
                session = session_pb(self.manager, self.manager.sessions[event.name])
            return pb.PeeringEvent(
                kind=pb.SESSION,
                time=event.time,
                name=event.name,
                detail=f"{event.old} -> {event.new}: {event.detail}",
                peering=session,
            )
        kind = pb.FAILOVER if event.event == "FAILOVER" else pb.DECISION
        return pb.PeeringEvent(
            kind=kind, time=event.time, name=event.target, detail=event.detail, decision=decision_pb(event)
        )


def services(manager: PeeringManager) -> list[tuple[str, Callable[[grpc.Server], None]]]:
    return [app_service(PeeringServicer(manager), pb_grpc.add_PeeringServicer_to_server, SERVICE_NAME)]
