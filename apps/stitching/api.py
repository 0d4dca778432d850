"""The stitching gRPC API (``proto/stitching.proto``): protobuf <-> ``StitchManager``.

The servicer holds no state. Errors map to status codes in one place (``_CODES``);
a policy refusal is PERMISSION_DENIED whose details are the verdict (naming the
rule) and whose trailing metadata ``foresight-rule`` is the rule's name alone.
``Advertise`` is the route managers' side: a bad advertisement is INVALID_ARGUMENT
naming the field, and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Callable

import grpc

from apps.stitching.manager import (InvalidStitch, NoPath, StitchEvent, StitchExists, StitchManager,
                                    StitchNotFound, StitchRefused, StitchRequest)
from apps.stitching.registry import AdHost, Advertisement, AdvertisementError, Plane
from apps.stitching.store import StitchRecord, StitchStoreError
from controller.api import (EnforceLost, EnforceRefused, NotEnforced, app_service, arrival, stream,
                            wait_enforced)
from proto import stitching_pb2 as pb
from proto import stitching_pb2_grpc as pb_grpc
from proto.serving import status_for

LOG = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Stitching"].full_name
WATCH_POLL_S = 0.5
RULE_METADATA = "foresight-rule"

_CODES = {InvalidStitch: grpc.StatusCode.INVALID_ARGUMENT,
          AdvertisementError: grpc.StatusCode.INVALID_ARGUMENT,
          StitchNotFound: grpc.StatusCode.NOT_FOUND,
          StitchExists: grpc.StatusCode.ALREADY_EXISTS,
          StitchRefused: grpc.StatusCode.PERMISSION_DENIED,
          NoPath: grpc.StatusCode.FAILED_PRECONDITION,
          StitchStoreError: grpc.StatusCode.UNAVAILABLE,
          NotEnforced: grpc.StatusCode.DEADLINE_EXCEEDED,
          EnforceLost: grpc.StatusCode.UNAVAILABLE,
          # A switch cannot hold the change as asked: asking again will not help
          # (controller.api.EnforceRefused says why this code).
          EnforceRefused: grpc.StatusCode.FAILED_PRECONDITION}

_KINDS = {pb.DIRECT: "direct", pb.SEGMENT: "segment", pb.BANDWIDTH: "bandwidth"}
_STATES = {"ESTABLISHING": pb.STATE_ESTABLISHING, "ESTABLISHED": pb.STATE_ESTABLISHED,
           "DEGRADED": pb.STATE_DEGRADED}


@contextlib.contextmanager
def _status(context: grpc.ServicerContext):
    """status_for, and for a refusal the rule as trailing metadata first."""
    with status_for(context, _CODES):
        try:
            yield
        except StitchRefused as err:
            context.set_trailing_metadata(((RULE_METADATA, err.verdict.rule),))
            raise


def _number(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidStitch(f"{name}: must be a finite number >= 0, got {value}")
    return value


def _kind(value: int) -> str:
    if value not in _KINDS:
        raise InvalidStitch(f"kind: required, one of {', '.join(pb.StitchKind.Name(k) for k in _KINDS)}"
                            + (f"; got {value}" if value else ""))
    return _KINDS[value]


def _request(msg, kind: str, with_id: bool = True) -> StitchRequest:
    req = msg.requirements
    return StitchRequest(
        tenant=msg.tenant, kind=kind, a_vnid=msg.src_vnid, b_vnid=msg.dst_vnid, a_site=msg.src_site,
        b_site=msg.dst_site, a_host=getattr(msg, "src_host", ""), b_host=getattr(msg, "dst_host", ""),
        mbps=_number("bandwidth_mbps", msg.bandwidth_mbps),
        min_mbps=_number("requirements.min_mbps", req.min_mbps),
        max_rtt_ms=_number("requirements.max_rtt_ms", req.max_rtt_ms), id=msg.id if with_id else "")


def _stitch_pb(r: StitchRecord, rates: dict | None = None) -> pb.Stitch:
    kind = {v: k for k, v in _KINDS.items()}[r.kind]
    ends = [pb.EndRates(site=site, offered_mbps=e.offered_mbps, delivered_mbps=e.delivered_mbps, time=e.time)
            for site, e in sorted((rates or {}).items())]
    return pb.Stitch(rates=ends, id=r.id, tenant=r.tenant, kind=kind, src_site=r.a_site, src_vnid=r.a_vnid,
                     dst_site=r.b_site, dst_vnid=r.b_vnid, src_host=r.a_host, dst_host=r.b_host,
                     bandwidth_mbps=r.mbps,
                     requirements=pb.Requirements(min_mbps=r.min_mbps, max_rtt_ms=r.max_rtt_ms),
                     encrypted=r.encrypted, rule=r.rule, vni=r.vni, plane=r.plane, state=_STATES[r.state],
                     detail=r.detail, created_at=r.created_at, changed_at=r.changed_at, history=r.history)


def _event_pb(event: StitchEvent) -> pb.StitchEvent:
    msg = pb.StitchEvent(kind=pb.StitchEventKind.Value(event.kind), time=event.time,
                         stitch_id=event.stitch_id, detail=event.detail)
    if event.record is not None:
        msg.stitch.CopyFrom(_stitch_pb(event.record))
    return msg


def advertisement(msg: pb.Advertisement) -> Advertisement:
    return Advertisement(
        site=msg.site, dp_id=msg.dp_id,
        hosts=tuple(AdHost(h.name, h.mac.lower(), h.ip, h.vnid, h.tenant) for h in msg.hosts),
        planes=tuple(Plane(p.plane, p.address, p.up, p.available_mbps, p.cost, dict(p.rtt_ms), dict(p.loss))
                     for p in msg.planes),
        wg_public_key=msg.wg_public_key, tunnels=tuple((t.stitch_id, t.port) for t in msg.tunnels),
        tunnel_errors=tuple((e.stitch_id, e.reason) for e in msg.tunnel_errors))


class StitchingServicer(pb_grpc.StitchingServicer):
    def __init__(self, manager: StitchManager):
        self.manager = manager

    def QueryStitchAvailability(self, request, context):
        with _status(context):
            kind = "bandwidth" if request.bandwidth_mbps else "segment"
            a, b, candidates = self.manager.query(_request(request, kind, with_id=False))
        return pb.StitchAvailability(src_site=a, dst_site=b, paths=[
            pb.CandidatePath(plane=c.plane, available_mbps=c.available_mbps, rtt_ms=c.rtt_ms or 0.0,
                             rtt_known=c.rtt_ms is not None, cost=c.cost) for c in candidates])

    def CreateStitch(self, request, context):
        arrived = arrival(self.manager.view)
        with _status(context):
            timeout_s = _number("enforce_timeout_s", request.enforce_timeout_s)
            record = self.manager.create(_request(request, _kind(request.kind)))
            enforced = 0.0
            if timeout_s:
                enforced = wait_enforced(self.manager.view, arrived, timeout_s,
                                         f"stitch {record.id!r} is created and stays so")
                record = self.manager.confirmed(record.id)
            msg = _stitch_pb(record)
            msg.enforced_s = enforced
            return msg

    def AdjustStitch(self, request, context):
        arrived = arrival(self.manager.view)
        with _status(context):
            timeout_s = _number("enforce_timeout_s", request.enforce_timeout_s)
            record = self.manager.adjust_bandwidth(request.id, request.bandwidth_mbps)
            msg = _stitch_pb(record, self.manager.end_rates(record.id))
            if timeout_s:
                msg.enforced_s = wait_enforced(self.manager.view, arrived, timeout_s,
                                               f"stitch {record.id!r} is adjusted and stays so")
            return msg

    def GetStitch(self, request, context):
        with _status(context):
            msg = _stitch_pb(self.manager.get(request.id), self.manager.end_rates(request.id))
            msg.rtt_ms = self.manager.rtt_ms(request.id) or 0.0
            msg.probe_loss = self.manager.probe_loss(request.id) or 0.0
            return msg

    def ListStitches(self, request, context):
        return pb.ListStitchesResponse(stitches=[_stitch_pb(r, self.manager.end_rates(r.id))
                                                 for r in self.manager.list(request.tenant)])

    def DeleteStitch(self, request, context):
        with _status(context):
            return pb.DeleteStitchResponse(stitch=_stitch_pb(self.manager.delete(request.id)))

    def WatchStitches(self, request, context):
        wanted = request.id
        accept = (lambda e: e.stitch_id == wanted) if wanted else None
        sub = self.manager.bus.subscribe(frozenset(), accept=accept)
        try:
            now = self.manager.clock()
            for record in self.manager.list():
                if not wanted or record.id == wanted:
                    yield pb.StitchEvent(kind=pb.SNAPSHOT, time=now, stitch_id=record.id,
                                         detail="current state", stitch=_stitch_pb(record))
            yield pb.StitchEvent(kind=pb.WATCHING, time=now, stitch_id=wanted, detail="snapshot complete")
            yield from stream(sub, context, _event_pb)
        finally:
            self.manager.bus.unsubscribe(sub)

    def Advertise(self, request, context):
        with _status(context):
            ad = advertisement(request)
            self.manager.advertise(ad)
            peers = [pb.PeerAddress(site=site, plane=plane, address=address)
                     for site, plane, address in self.manager.peer_addresses(ad.site)]
            tunnels = [pb.EncryptedTunnel(**vars(t)) for t in self.manager.tunnels_for(ad.site)]
            return pb.SiteInstructions(ttl_s=self.manager.settings.advert_ttl_s, peers=peers, tunnels=tunnels)

    def ListSites(self, request, context):
        return pb.ListSitesResponse(sites=[pb.SiteInfo(advertisement=_advertisement_pb(ad), last_seen=seen)
                                           for ad, seen in self.manager.sites()])


def _advertisement_pb(ad: Advertisement) -> pb.Advertisement:
    return pb.Advertisement(
        site=ad.site, dp_id=ad.dp_id,
        hosts=[pb.AdvertisedHost(name=h.name, mac=h.mac, ip=h.ip, vnid=h.vnid, tenant=h.tenant)
               for h in ad.hosts],
        planes=[pb.PlaneStatus(plane=p.plane, address=p.address, up=p.up, available_mbps=p.available_mbps,
                               cost=p.cost, rtt_ms=p.rtt_ms, loss=p.loss) for p in ad.planes],
        wg_public_key=ad.wg_public_key, tunnels=[pb.TunnelPort(stitch_id=i, port=n) for i, n in ad.tunnels])


def services(manager: StitchManager) -> list[tuple[str, Callable[[grpc.Server], None]]]:
    """The stitching service for ``controller.api.create_server``: [(full name, register(server))]."""
    return [app_service(StitchingServicer(manager), pb_grpc.add_StitchingServicer_to_server, SERVICE_NAME)]
