"""Northbound gRPC API: translates between protobuf and the controller core.

The servicer holds no state of its own. Domain errors map to status codes in one
place (``_status``): NotFound -> NOT_FOUND, InvalidArgument -> INVALID_ARGUMENT.
``create_server(core, address)`` returns ``(server, port)`` and registers the
standard health and reflection services; ``port`` is the bound port (use
``127.0.0.1:0`` in tests).
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Callable, Iterator, NamedTuple

import grpc

from controller.appbase import CoreView
from controller.core import ChangeRefused, ControllerCore, InvalidArgument, Mark, NotFound, SwitchLost
from controller.events import Event, Subscription
from proto import controller_pb2 as pb
from proto import controller_pb2_grpc as pb_grpc
from proto.serving import build_server, status_for

LOG = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Controller"].full_name


def _status(context: grpc.ServicerContext):
    return status_for(context, {NotFound: grpc.StatusCode.NOT_FOUND,
                                InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT})


def _link_pb(view) -> pb.Link:
    return pb.Link(src_dp_id=view.src_dp, src_port=view.src_port, dst_dp_id=view.dst_dp,
                   dst_port=view.dst_port, capacity_mbps=view.capacity_mbps,
                   capacity_source=view.capacity_source, rate_mbps=view.rate_mbps,
                   utilisation=view.utilisation, name=view.name)


def _event_pb(event: Event, core: ControllerCore) -> pb.TopologyEvent:
    msg = pb.TopologyEvent(kind=pb.EventKind.Value(event.kind), time=event.time,
                           dp_id=event.dp_id, port_no=event.port_no, host_mac=event.host_mac,
                           detail=event.detail)
    if event.link:
        s, sp, d, dp = event.link
        msg.link.CopyFrom(pb.Link(src_dp_id=s, src_port=sp, dst_dp_id=d, dst_port=dp,
                                  name=f"{s}:{sp}-{d}:{dp}"))
    return msg


class ControllerServicer(pb_grpc.ControllerServicer):
    def __init__(self, core: ControllerCore, started_at: float | None = None):
        self.core = core
        self.started_at = started_at or time.time()
        self.stopping = False

    def GetTopology(self, request, context):
        core = self.core
        with core.lock:
            now = time.time()
            topo = pb.Topology(time=now)
            edge_after = core.config.controller.discovery.edge_after_s
            for dp_id in sorted(core.topology.switches):
                sw = core.topology.switches[dp_id]
                edges = core.topology.edge_ports(dp_id, now, edge_after)
                msg = topo.switches.add(dp_id=dp_id, name=sw.name, connected_since=sw.connected_since,
                                       connected=sw.connected)
                for port in sorted(sw.ports.values(), key=lambda p: p.port_no):
                    msg.ports.add(port_no=port.port_no, name=port.name, hw_addr=port.hw_addr,
                                  up=port.up, speed_mbps=port.speed_mbps,
                                  is_edge=port.port_no in edges, tx_rate_mbps=port.tx_rate_mbps,
                                  rx_rate_mbps=port.rx_rate_mbps)
            topo.links.extend(_link_pb(v) for v in core.topology.links())
        return topo

    def ListHosts(self, request, context):
        hosts = self.core.hosts_list(request.dp_id)
        return pb.ListHostsResponse(hosts=[
            pb.Host(mac=h.mac, ipv4=sorted(h.ipv4), dp_id=h.dp_id, port_no=h.port_no,
                    last_seen=h.last_seen) for h in hosts])

    def GetPath(self, request, context):
        with _status(context):
            if not request.src.strip():
                raise InvalidArgument("src: empty; give a host IPv4 or MAC, or a switch dp_id or name")
            if not request.dst.strip():
                raise InvalidArgument("dst: empty; give a host IPv4 or MAC, or a switch dp_id or name")
            hops, cost, installed = self.core.path(request.src, request.dst)
        with self.core.lock:
            names = {dp: sw.name for dp, sw in self.core.topology.switches.items()}
        return pb.Path(src=request.src, dst=request.dst, cost=cost, installed=installed,
                       hops=[pb.Hop(dp_id=h.dp_id, name=names.get(h.dp_id, ""), in_port=h.in_port,
                                    out_port=h.out_port) for h in hops])

    def WatchEvents(self, request, context):
        kinds = set()
        for kind in request.kinds:
            if kind == pb.EVENT_KIND_UNSPECIFIED or kind not in pb.EventKind.values():
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"kinds: {kind} is not a valid EventKind")
            kinds.add(pb.EventKind.Name(kind))
        sub = self.core.bus.subscribe(frozenset(kinds))
        try:
            yield from stream(sub, context, lambda e: _event_pb(e, self.core), lambda: self.stopping)
        finally:
            self.core.bus.unsubscribe(sub)

    def GetStatus(self, request, context):
        core = self.core
        with core.lock:
            return pb.Status(uptime_s=time.time() - self.started_at, mode=core.mode(),
                             switches=len(core.switches), links=core.topology.graph.number_of_edges(),
                             hosts=len(core.hosts), counters={k: int(v) for k, v in core.counters.items()})


def app_service(servicer, add_to_server: Callable, name: str) -> tuple[str, Callable[[grpc.Server], None]]:
    """What an app's ``grpc_services()`` returns for one service: its full name (for
    health and reflection) and how to add ``servicer`` to the controller's server
    (``add_to_server``, the generated ``add_<Service>Servicer_to_server``)."""
    return name, lambda server: add_to_server(servicer, server)


WATCH_POLL_S = 0.5      # how often a quiet Watch* stream checks its client is still there


def stream(sub: Subscription, context: grpc.ServicerContext, to_pb: Callable[[Event], object],
           stopping: Callable[[], bool] = lambda: False) -> Iterator:
    """The loop of every Watch* stream: yield each event of ``sub`` as ``to_pb`` makes
    it while the client is there and ``stopping()`` is false; a closed bus (None) ends
    the stream; a subscriber the bus dropped for falling behind gets
    RESOURCE_EXHAUSTED. The caller subscribed (and sent any snapshot) first, and
    unsubscribes after."""
    while context.is_active() and not stopping():
        try:
            event = sub.events.get(timeout=WATCH_POLL_S)
        except queue.Empty:
            if sub.overflowed:      # dropped by the bus and drained: say so
                break
            continue
        if event is None:
            return
        yield to_pb(event)
    if sub.overflowed:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "watcher fell behind; watch again")


class NotEnforced(RuntimeError):
    """A change is made and stays, but not every switch confirmed it in time (DEADLINE_EXCEEDED)."""


class EnforceLost(RuntimeError):
    """A change is made and stays, but a switch disconnected before confirming it (UNAVAILABLE)."""


class EnforceRefused(RuntimeError):
    """A change is made and stays in the controller's intent, but a switch refused part of
    it with an OpenFlow error (FAILED_PRECONDITION). ``dp_ids`` names the switches.

    FAILED_PRECONDITION, as gRPC defines it: the request was valid and accepted, but
    the system is not in a state to carry it out, and asking again will not help until
    that changes — here, a switch that cannot hold the entry as asked (an output port
    or meter band it does not have). Not INVALID_ARGUMENT (another switch may take
    the same request), not UNAVAILABLE (retrying is what must not happen), not
    INTERNAL (the controller did what it should)."""

    def __init__(self, message: str, dp_ids: list[int]):
        super().__init__(message)
        self.dp_ids = dp_ids


class Arrival(NamedTuple):
    """An enforcing request as it arrived, before its change was sent: the
    ``time.monotonic()`` then, and the core's mark then (what every switch had
    confirmed: whatever a switch refuses after that fails the wait)."""
    monotonic: float
    mark: Mark


def arrival(core: ControllerCore | CoreView) -> Arrival:
    """Take this first thing in an enforcing request (before it changes anything)."""
    return Arrival(time.monotonic(), core.sync_mark())


def wait_enforced(core: ControllerCore | CoreView, arrived: Arrival | float, timeout_s: float,
                  stays: str) -> float:
    """For an app's API: after a change was sent (its resync ran in this thread), wait
    until every switch has confirmed everything sent so far, at most ``timeout_s``
    from ``arrived`` (``arrival(core)``, or a bare ``time.monotonic()`` whose wait
    fails only for refusals of what switches had not confirmed by now); the seconds
    since ``arrived``. ``stays`` ends the error messages ("slice 'web' is created and
    stays so")."""
    if isinstance(arrived, Arrival):
        arrived, mark = arrived.monotonic, core.sync_mark(since=arrived.mark)
    else:
        mark = core.sync_mark()
    try:
        confirmed = core.wait_confirmed(mark, timeout_s - (time.monotonic() - arrived))
    except ChangeRefused as err:
        raise EnforceRefused(f"{err}; {stays} in the controller's intent (the switch is reconciled without "
                             f"what it refused, until that intent changes)", err.dp_ids) from None
    except SwitchLost as err:
        raise EnforceLost(f"{err}; {stays} (a switch that reconnects is given it then)") from None
    if not confirmed:
        due = ", ".join(core.switch_label(dp_id) for dp_id in core.unconfirmed(mark))
        raise NotEnforced(f"enforce_timeout_s: {due or 'a switch'} did not confirm within {timeout_s:g} s; "
                          f"{stays}")
    return time.monotonic() - arrived


def create_server(core: ControllerCore, address: str, max_workers: int = 8,
                  services: list[tuple[str, Callable[[grpc.Server], None]]] = ()
                  ) -> tuple[grpc.Server, int, ControllerServicer]:
    """The northbound server: the Controller service plus ``services`` (apps' own
    APIs, as (full service name, register(server))), health and reflection."""
    servicer = ControllerServicer(core)

    def register(srv: grpc.Server) -> None:
        pb_grpc.add_ControllerServicer_to_server(servicer, srv)
        for _, add in services:
            add(srv)
    server, port = build_server(SERVICE_NAME, register, address, max_workers, "grpc", "gRPC server",
                                extra_services=[name for name, _ in services])
    return server, port, servicer
