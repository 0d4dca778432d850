"""A small typed client for GoBGP 3.10's gRPC API: the peering app talks to gobgpd
only through :class:`GoBgp`.

The stubs are generated from the Debian package's .proto files (``proto/gobgp``,
``python -m proto.generate``). The target is a gRPC target string: ``"127.0.0.1:50051"``
or ``"unix:/path/sock"`` (``topologies.bgp.GoBgpDaemon.target``). Every gRPC failure
becomes :class:`GoBgpUnavailable` (the daemon is not reachable or did not answer in
time; the message names the target) or :class:`GoBgpError` (the server's message).
Bad input is refused before it is sent, with a ``ValueError`` naming the field: GoBGP
itself accepts a peer with ASN 0 and resolves a peer "address" through DNS.

What GoBGP 3.10 does that shapes this client (read in its source, seen in tests):

- ``StartBgp`` on a running server is accepted and ignored, even with another ASN;
  :meth:`GoBgp.start` therefore reads ``GetBgp`` first (ASN 0 = not started).
- ``AddPeer`` of an existing peer and ``DeletePeer`` of a missing one fail with
  UNKNOWN; :meth:`add_peer` and :meth:`delete_peer` compare with ``ListPeer`` first, and
  a changed peer is deleted and added again (its session restarts).
- GoBGP dials out only every 5-10 s whatever ``connect_retry`` says (a floor of 5 s and
  a random extra in its connect loop). Start it with ``listen_port=179`` (in its own
  namespace) and let the provider connect: FRR with ``timers connect 1`` established
  within ~1-2 s in the tests, against 5-10 s when GoBGP dials.
- A prefix limit (``max_prefixes``) sends a CEASE/maximum-prefixes NOTIFICATION and
  drops the session; the peer stays down with ``admin_state`` ``"pfx_ct"`` (prefix count over the limit;
  ``admin_down`` True, ``notifications_sent`` 1) and its routes gone, until it is
  re-added (``add_peer`` with a changed spec) or reset. The API gives no other reason
  for a session going down; the NOTIFICATION counters are the nearest.
- After gobgpd comes back, the channel may still be in its reconnect back-off and calls
  fail fast with UNAVAILABLE: :meth:`GoBgp.wait_ready` waits for the connection.
- A response field is named ``global``: read with ``getattr``.

Measured (FRR 8.4 -> GoBGP 3.10 over a veth between two namespaces, 2 cores): from the
session's established event, 10,000 prefixes (50 distinct AS paths) were all seen by
:meth:`GoBgp.watch` in 1.4 s (100 paths: 1.6 s), i.e. ~6,500 routes/s, arriving as one
RouteEvent per distinct path set; 1,000 prefixes took ~1.1 s (mostly FRR's first
UPDATE delay). :meth:`routes` lists 10,000 adj-rib-in routes in ~1.0 s and the global
RIB in ~0.85 s; 1,000 in ~0.13 s.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from proto.gobgp import attribute_pb2 as attr
from proto.gobgp import gobgp_pb2 as pb
from proto.gobgp import gobgp_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

IPV4_UNICAST = pb.Family(afi=pb.Family.AFI_IP, safi=pb.Family.SAFI_UNICAST)
MAX_ASN = 4294967295
_STATES = {pb.PeerState.UNKNOWN: "unknown", pb.PeerState.IDLE: "idle", pb.PeerState.CONNECT: "connect",
           pb.PeerState.ACTIVE: "active", pb.PeerState.OPENSENT: "opensent",
           pb.PeerState.OPENCONFIRM: "openconfirm", pb.PeerState.ESTABLISHED: "established"}
_ADMIN = {pb.PeerState.UP: "up", pb.PeerState.DOWN: "down", pb.PeerState.PFX_CT: "pfx_ct"}


class GoBgpError(Exception):
    """gobgpd refused a request; the message is the server's."""


class GoBgpUnavailable(GoBgpError):
    """gobgpd is not reachable (or did not answer in time); the message names the target."""


@dataclass(frozen=True)
class PeerSpec:
    """A neighbour as configured. Times in seconds; ``max_prefixes`` 0 means no limit
    (above it GoBGP tears the session down)."""

    address: str
    asn: int
    description: str = ""
    max_prefixes: int = 0
    hold_s: int = 9
    keepalive_s: int = 3
    connect_retry_s: int = 1
    passive: bool = False

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise ValueError(f"address: {self.address!r} is not an IP address") from None
        if not isinstance(self.asn, int) or not 1 <= self.asn <= MAX_ASN:
            raise ValueError(f"asn: {self.asn!r} is not in 1..{MAX_ASN}")
        for name in ("max_prefixes", "hold_s", "keepalive_s", "connect_retry_s"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or value > MAX_ASN:
                raise ValueError(f"{name}: {value!r} is not a non-negative 32-bit integer")
        if self.hold_s and not 3 <= self.hold_s:
            raise ValueError(f"hold_s: {self.hold_s} must be 0 or at least 3 (RFC 4271)")
        if self.hold_s and self.keepalive_s >= self.hold_s:
            raise ValueError(f"keepalive_s: {self.keepalive_s} must be below hold_s {self.hold_s}")


@dataclass(frozen=True)
class PeerState:
    """A neighbour as gobgpd sees it now. ``state`` is the FSM state in lower case;
    ``received``/``accepted`` count IPv4 unicast prefixes; ``uptime_s`` is 0 unless
    established; ``flops`` counts sessions lost; ``admin_state`` is ``"up"``, ``"down"``
    or ``"pfx_ct"`` (torn down by the prefix limit: the only down reason the API gives)."""

    address: str
    asn: int
    state: str
    admin_down: bool
    admin_state: str
    received: int
    accepted: int
    uptime_s: float
    flops: int
    notifications_sent: int
    notifications_received: int
    description: str = ""

    @property
    def established(self) -> bool:
        return self.state == "established"


@dataclass(frozen=True)
class Route:
    """One path: ``prefix`` as ``a.b.c.d/len``, learnt from ``neighbour`` (peer address)."""

    prefix: str
    neighbour: str
    as_path: tuple[int, ...]
    next_hop: str
    withdrawn: bool = False


@dataclass(frozen=True)
class PeerEvent:
    """A peer's state changed (``init`` marks the snapshot a watch starts with)."""

    address: str
    asn: int
    state: str
    admin_down: bool
    init: bool = False


@dataclass(frozen=True)
class RouteEvent:
    """Paths received or withdrawn (one UPDATE's worth, usually)."""

    routes: tuple[Route, ...]


@dataclass(frozen=True)
class EndOfInit:
    """The initial snapshot of a watch (existing peers) is complete."""


Event = PeerEvent | RouteEvent | EndOfInit


def _check_ipv4(field: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an IPv4 address") from None


def _check_asn(field: str, value: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= MAX_ASN:
        raise ValueError(f"{field}: {value!r} is not in 1..{MAX_ASN}")


def route_from_path(path: pb.Path) -> Route | None:
    """A Route from GoBGP's Path (None for a family other than IP unicast)."""
    nlri = attr.IPAddressPrefix()
    if not path.nlri.Unpack(nlri):
        return None
    as_path: list[int] = []
    next_hop = ""
    for any_attr in path.pattrs:
        if any_attr.Is(attr.AsPathAttribute.DESCRIPTOR):
            value = attr.AsPathAttribute()
            any_attr.Unpack(value)
            for segment in value.segments:
                as_path.extend(segment.numbers)
        elif any_attr.Is(attr.NextHopAttribute.DESCRIPTOR):
            value = attr.NextHopAttribute()
            any_attr.Unpack(value)
            next_hop = value.next_hop
        elif any_attr.Is(attr.MpReachNLRIAttribute.DESCRIPTOR):
            value = attr.MpReachNLRIAttribute()
            any_attr.Unpack(value)
            next_hop = value.next_hops[0] if value.next_hops else next_hop
    return Route(prefix=f"{nlri.prefix}/{nlri.prefix_len}", neighbour=path.neighbor_ip,
                 as_path=tuple(as_path), next_hop=next_hop, withdrawn=path.is_withdraw)


def _spec_from_peer(peer: pb.Peer) -> PeerSpec:
    limit = 0
    for afi_safi in peer.afi_safis:
        if afi_safi.config.family == IPV4_UNICAST:
            limit = afi_safi.prefix_limits.max_prefixes
    timers = peer.timers.config
    return PeerSpec(address=peer.conf.neighbor_address, asn=peer.conf.peer_asn,
                    description=peer.conf.description, max_prefixes=limit,
                    hold_s=timers.hold_time, keepalive_s=timers.keepalive_interval,
                    connect_retry_s=timers.connect_retry, passive=peer.transport.passive_mode)


def _peer_from_spec(spec: PeerSpec) -> pb.Peer:
    return pb.Peer(
        conf=pb.PeerConf(neighbor_address=spec.address, peer_asn=spec.asn, description=spec.description),
        timers=pb.Timers(config=pb.TimersConfig(connect_retry=spec.connect_retry_s, hold_time=spec.hold_s,
                                                keepalive_interval=spec.keepalive_s)),
        transport=pb.Transport(passive_mode=spec.passive),
        afi_safis=[pb.AfiSafi(config=pb.AfiSafiConfig(family=IPV4_UNICAST, enabled=True),
                              prefix_limits=pb.PrefixLimit(family=IPV4_UNICAST,
                                                           max_prefixes=spec.max_prefixes))])


def _peer_state(peer: pb.Peer, now_s: float) -> PeerState:
    state = peer.state
    received = accepted = 0
    for afi_safi in peer.afi_safis:
        if afi_safi.state.family == IPV4_UNICAST or afi_safi.config.family == IPV4_UNICAST:
            received, accepted = afi_safi.state.received, afi_safi.state.accepted
    name = _STATES.get(state.session_state, "unknown")
    uptime = peer.timers.state.uptime.seconds
    return PeerState(
        address=peer.conf.neighbor_address or state.neighbor_address,
        asn=peer.conf.peer_asn or state.peer_asn, state=name,
        admin_down=state.admin_state != pb.PeerState.UP, admin_state=_ADMIN.get(state.admin_state, "up"),
        received=received, accepted=accepted,
        uptime_s=max(0.0, now_s - uptime) if name == "established" and uptime else 0.0,
        flops=state.flops, notifications_sent=state.messages.sent.notification,
        notifications_received=state.messages.received.notification, description=peer.conf.description)


class Watch:
    """An iterator of :data:`Event` from ``WatchEvent``; :meth:`cancel` ends it (from any
    thread). Ends with GoBgpUnavailable if the daemon goes away."""

    def __init__(self, call, target: str):
        self._call = call
        self._target = target
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()
        self._call.cancel()

    def __iter__(self) -> Iterator[Event]:
        try:
            for response in self._call:
                yield from _events(response)
        except grpc.RpcError as exc:
            if self._cancelled.is_set() or exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise _translate(exc, self._target, "WatchEvent") from None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


def _events(response: pb.WatchEventResponse) -> Iterator[Event]:
    kind = response.WhichOneof("event")
    if kind == "peer":
        event = response.peer
        if event.type == pb.WatchEventResponse.PeerEvent.END_OF_INIT:
            yield EndOfInit()
            return
        peer = event.peer
        yield PeerEvent(address=peer.conf.neighbor_address or peer.state.neighbor_address,
                        asn=peer.conf.peer_asn or peer.state.peer_asn,
                        state=_STATES.get(peer.state.session_state, "unknown"),
                        admin_down=peer.state.admin_state != pb.PeerState.UP,
                        init=event.type == pb.WatchEventResponse.PeerEvent.INIT)
    elif kind == "table":
        routes = tuple(r for r in map(route_from_path, response.table.paths) if r is not None)
        if routes:
            yield RouteEvent(routes)


def _translate(exc: grpc.RpcError, target: str, rpc: str) -> GoBgpError:
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return GoBgpUnavailable(f"gobgpd at {target} unreachable ({rpc}: {code.name}: {exc.details()})")
    return GoBgpError(f"gobgpd at {target}: {rpc} failed: {exc.details()} ({code.name})")


class GoBgp:
    """A client of one gobgpd. Each call waits at most ``timeout_s`` (listing calls scale
    that with the answer's size)."""

    def __init__(self, target: str, timeout_s: float = 5.0):
        self.target = target
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.GobgpApiStub(self._channel)

    def _call(self, rpc: str, request, timeout_s: float | None = None):
        try:
            return getattr(self._stub, rpc)(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc, self.target, rpc) from None

    def _stream(self, rpc: str, request, timeout_s: float | None = None) -> list:
        try:
            return list(getattr(self._stub, rpc)(request, timeout=timeout_s or self.timeout_s))
        except grpc.RpcError as exc:
            raise _translate(exc, self.target, rpc) from None

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until the channel is connected (a restarted daemon); GoBgpUnavailable otherwise."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise GoBgpUnavailable(f"gobgpd at {self.target} unreachable for {timeout_s} s") from None

    # --- global ---------------------------------------------------------------------

    def global_config(self) -> tuple[int, str, int]:
        """``(asn, router_id, listen_port)``; asn 0 when BGP is not started."""
        glob = getattr(self._call("GetBgp", pb.GetBgpRequest()), "global")
        return glob.asn, glob.router_id, glob.listen_port

    def start(self, asn: int, router_id: str, listen_port: int = -1) -> None:
        """Start BGP (``listen_port`` -1: no listener). Idempotent for the same ASN and
        router id; a server started with others raises GoBgpError naming both."""
        _check_asn("asn", asn)
        router_id = _check_ipv4("router_id", router_id)
        if not -1 <= listen_port <= 65535:
            raise ValueError(f"listen_port: {listen_port} is not -1 or a port number")
        running_asn, running_id, _ = self.global_config()
        if running_asn:
            if (running_asn, running_id) != (asn, router_id):
                raise GoBgpError(f"gobgpd at {self.target} runs AS {running_asn} router-id {running_id}, "
                                 f"asked for AS {asn} router-id {router_id}")
            self.export_nothing()
            return
        glob = pb.Global(asn=asn, router_id=router_id, listen_port=listen_port)
        self._call("StartBgp", pb.StartBgpRequest(**{"global": glob}))
        self.export_nothing()

    def export_nothing(self) -> None:
        """Advertise no route to any neighbour. GoBGP's default is to pass every best
        path on to every eBGP peer: it would offer the transit's routes to the peers (a
        route leak making us their transit), and a neighbour that echoes them back trips
        its own max-prefix limit (seen in the lab before this was set)."""
        self._call("SetPolicyAssignment", pb.SetPolicyAssignmentRequest(assignment=pb.PolicyAssignment(
            name="global", direction=pb.PolicyDirection.EXPORT, default_action=pb.RouteAction.REJECT)))

    # --- peers ----------------------------------------------------------------------

    def _peers(self, address: str = "") -> list[pb.Peer]:
        return [r.peer for r in self._stream("ListPeer", pb.ListPeerRequest(address=address))]

    def peers(self) -> list[PeerState]:
        now_s = time.time()
        return sorted((_peer_state(p, now_s) for p in self._peers()), key=lambda s: s.address)

    def peer(self, address: str) -> PeerState | None:
        now_s = time.time()
        return next((_peer_state(p, now_s) for p in self._peers()
                     if p.conf.neighbor_address == address), None)

    def add_peer(self, spec: PeerSpec) -> bool:
        """Configure a neighbour; True when something changed. The same spec again is a
        no-op; a different one for the same address replaces it (session restarts)."""
        existing = [p for p in self._peers() if p.conf.neighbor_address == spec.address]
        if existing:
            if _spec_from_peer(existing[0]) == spec:
                return False
            log.info("peer %s changed, re-adding: %s", spec.address, spec)
            self._call("DeletePeer", pb.DeletePeerRequest(address=spec.address))
        self._call("AddPeer", pb.AddPeerRequest(peer=_peer_from_spec(spec)))
        return True

    def delete_peer(self, address: str) -> bool:
        """Remove a neighbour (its routes go with it); True if it existed."""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"address: {address!r} is not an IP address") from None
        if not any(p.conf.neighbor_address == address for p in self._peers()):
            return False
        self._call("DeletePeer", pb.DeletePeerRequest(address=address))
        return True

    # --- routes ---------------------------------------------------------------------

    def routes(self, neighbour: str | None = None, timeout_s: float = 60.0) -> list[Route]:
        """IPv4 unicast paths: the adj-rib-in of ``neighbour`` (before import policy), or
        every peer's paths in the global RIB (best or not)."""
        if neighbour is None:
            request = pb.ListPathRequest(table_type=pb.GLOBAL, family=IPV4_UNICAST)
        else:
            request = pb.ListPathRequest(table_type=pb.ADJ_IN, name=neighbour, family=IPV4_UNICAST)
        routes = []
        for response in self._stream("ListPath", request, timeout_s):
            for path in response.destination.paths:
                route = route_from_path(path)
                if route is not None and route.neighbour:
                    routes.append(route)
        return routes

    # --- events ---------------------------------------------------------------------

    def watch(self, init: bool = True) -> Watch:
        """Peer state changes and received paths (adj-rib-in, withdrawals included).
        With ``init`` the stream starts with the current peers (``PeerEvent.init``),
        an :class:`EndOfInit`, and every path already received."""
        table_filter = pb.WatchEventRequest.Table.Filter(type=pb.WatchEventRequest.Table.Filter.ADJIN,
                                                         init=init)
        request = pb.WatchEventRequest(peer=pb.WatchEventRequest.Peer(),
                                       table=pb.WatchEventRequest.Table(filters=[table_filter]))
        try:
            call = self._stub.WatchEvent(request)
        except grpc.RpcError as exc:
            raise _translate(exc, self.target, "WatchEvent") from None
        return Watch(call, self.target)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GoBgp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
