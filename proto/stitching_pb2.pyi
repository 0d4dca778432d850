from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StitchKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STITCH_KIND_UNSPECIFIED: _ClassVar[StitchKind]
    DIRECT: _ClassVar[StitchKind]
    SEGMENT: _ClassVar[StitchKind]
    BANDWIDTH: _ClassVar[StitchKind]

class StitchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STITCH_STATE_UNSPECIFIED: _ClassVar[StitchState]
    STATE_ESTABLISHING: _ClassVar[StitchState]
    STATE_ESTABLISHED: _ClassVar[StitchState]
    STATE_DEGRADED: _ClassVar[StitchState]

class StitchEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STITCH_EVENT_KIND_UNSPECIFIED: _ClassVar[StitchEventKind]
    SNAPSHOT: _ClassVar[StitchEventKind]
    WATCHING: _ClassVar[StitchEventKind]
    CREATED: _ClassVar[StitchEventKind]
    ESTABLISHED: _ClassVar[StitchEventKind]
    ADJUSTED: _ClassVar[StitchEventKind]
    DEGRADED: _ClassVar[StitchEventKind]
    DELETED: _ClassVar[StitchEventKind]
    SITE_UP: _ClassVar[StitchEventKind]
    SITE_DOWN: _ClassVar[StitchEventKind]
STITCH_KIND_UNSPECIFIED: StitchKind
DIRECT: StitchKind
SEGMENT: StitchKind
BANDWIDTH: StitchKind
STITCH_STATE_UNSPECIFIED: StitchState
STATE_ESTABLISHING: StitchState
STATE_ESTABLISHED: StitchState
STATE_DEGRADED: StitchState
STITCH_EVENT_KIND_UNSPECIFIED: StitchEventKind
SNAPSHOT: StitchEventKind
WATCHING: StitchEventKind
CREATED: StitchEventKind
ESTABLISHED: StitchEventKind
ADJUSTED: StitchEventKind
DEGRADED: StitchEventKind
DELETED: StitchEventKind
SITE_UP: StitchEventKind
SITE_DOWN: StitchEventKind

class Requirements(_message.Message):
    __slots__ = ("min_mbps", "max_rtt_ms")
    MIN_MBPS_FIELD_NUMBER: _ClassVar[int]
    MAX_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    min_mbps: float
    max_rtt_ms: float
    def __init__(self, min_mbps: _Optional[float] = ..., max_rtt_ms: _Optional[float] = ...) -> None: ...

class QueryStitchAvailabilityRequest(_message.Message):
    __slots__ = ("tenant", "src_vnid", "dst_vnid", "requirements", "src_site", "dst_site", "bandwidth_mbps")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SRC_VNID_FIELD_NUMBER: _ClassVar[int]
    DST_VNID_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    SRC_SITE_FIELD_NUMBER: _ClassVar[int]
    DST_SITE_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    src_vnid: int
    dst_vnid: int
    requirements: Requirements
    src_site: str
    dst_site: str
    bandwidth_mbps: float
    def __init__(self, tenant: _Optional[str] = ..., src_vnid: _Optional[int] = ..., dst_vnid: _Optional[int] = ..., requirements: _Optional[_Union[Requirements, _Mapping]] = ..., src_site: _Optional[str] = ..., dst_site: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ...) -> None: ...

class CandidatePath(_message.Message):
    __slots__ = ("plane", "available_mbps", "rtt_ms", "rtt_known", "cost")
    PLANE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MBPS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_KNOWN_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    plane: int
    available_mbps: float
    rtt_ms: float
    rtt_known: bool
    cost: float
    def __init__(self, plane: _Optional[int] = ..., available_mbps: _Optional[float] = ..., rtt_ms: _Optional[float] = ..., rtt_known: _Optional[bool] = ..., cost: _Optional[float] = ...) -> None: ...

class StitchAvailability(_message.Message):
    __slots__ = ("src_site", "dst_site", "paths")
    SRC_SITE_FIELD_NUMBER: _ClassVar[int]
    DST_SITE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    src_site: str
    dst_site: str
    paths: _containers.RepeatedCompositeFieldContainer[CandidatePath]
    def __init__(self, src_site: _Optional[str] = ..., dst_site: _Optional[str] = ..., paths: _Optional[_Iterable[_Union[CandidatePath, _Mapping]]] = ...) -> None: ...

class CreateStitchRequest(_message.Message):
    __slots__ = ("id", "tenant", "kind", "src_vnid", "dst_vnid", "src_site", "dst_site", "src_host", "dst_host", "bandwidth_mbps", "requirements", "enforce_timeout_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SRC_VNID_FIELD_NUMBER: _ClassVar[int]
    DST_VNID_FIELD_NUMBER: _ClassVar[int]
    SRC_SITE_FIELD_NUMBER: _ClassVar[int]
    DST_SITE_FIELD_NUMBER: _ClassVar[int]
    SRC_HOST_FIELD_NUMBER: _ClassVar[int]
    DST_HOST_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    kind: StitchKind
    src_vnid: int
    dst_vnid: int
    src_site: str
    dst_site: str
    src_host: str
    dst_host: str
    bandwidth_mbps: float
    requirements: Requirements
    enforce_timeout_s: float
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., kind: _Optional[_Union[StitchKind, str]] = ..., src_vnid: _Optional[int] = ..., dst_vnid: _Optional[int] = ..., src_site: _Optional[str] = ..., dst_site: _Optional[str] = ..., src_host: _Optional[str] = ..., dst_host: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ..., requirements: _Optional[_Union[Requirements, _Mapping]] = ..., enforce_timeout_s: _Optional[float] = ...) -> None: ...

class Stitch(_message.Message):
    __slots__ = ("id", "tenant", "kind", "src_site", "src_vnid", "dst_site", "dst_vnid", "src_host", "dst_host", "bandwidth_mbps", "requirements", "encrypted", "rule", "vni", "plane", "state", "detail", "created_at", "changed_at", "history", "enforced_s", "rates", "rtt_ms", "probe_loss")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SRC_SITE_FIELD_NUMBER: _ClassVar[int]
    SRC_VNID_FIELD_NUMBER: _ClassVar[int]
    DST_SITE_FIELD_NUMBER: _ClassVar[int]
    DST_VNID_FIELD_NUMBER: _ClassVar[int]
    SRC_HOST_FIELD_NUMBER: _ClassVar[int]
    DST_HOST_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_S_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PROBE_LOSS_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    kind: StitchKind
    src_site: str
    src_vnid: int
    dst_site: str
    dst_vnid: int
    src_host: str
    dst_host: str
    bandwidth_mbps: float
    requirements: Requirements
    encrypted: bool
    rule: str
    vni: int
    plane: int
    state: StitchState
    detail: str
    created_at: float
    changed_at: float
    history: _containers.RepeatedScalarFieldContainer[str]
    enforced_s: float
    rates: _containers.RepeatedCompositeFieldContainer[EndRates]
    rtt_ms: float
    probe_loss: float
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., kind: _Optional[_Union[StitchKind, str]] = ..., src_site: _Optional[str] = ..., src_vnid: _Optional[int] = ..., dst_site: _Optional[str] = ..., dst_vnid: _Optional[int] = ..., src_host: _Optional[str] = ..., dst_host: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ..., requirements: _Optional[_Union[Requirements, _Mapping]] = ..., encrypted: _Optional[bool] = ..., rule: _Optional[str] = ..., vni: _Optional[int] = ..., plane: _Optional[int] = ..., state: _Optional[_Union[StitchState, str]] = ..., detail: _Optional[str] = ..., created_at: _Optional[float] = ..., changed_at: _Optional[float] = ..., history: _Optional[_Iterable[str]] = ..., enforced_s: _Optional[float] = ..., rates: _Optional[_Iterable[_Union[EndRates, _Mapping]]] = ..., rtt_ms: _Optional[float] = ..., probe_loss: _Optional[float] = ...) -> None: ...

class EndRates(_message.Message):
    __slots__ = ("site", "offered_mbps", "delivered_mbps", "time")
    SITE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_MBPS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_MBPS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    site: str
    offered_mbps: float
    delivered_mbps: float
    time: float
    def __init__(self, site: _Optional[str] = ..., offered_mbps: _Optional[float] = ..., delivered_mbps: _Optional[float] = ..., time: _Optional[float] = ...) -> None: ...

class GetStitchRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AdjustStitchRequest(_message.Message):
    __slots__ = ("id", "bandwidth_mbps", "enforce_timeout_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    bandwidth_mbps: float
    enforce_timeout_s: float
    def __init__(self, id: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ..., enforce_timeout_s: _Optional[float] = ...) -> None: ...

class ListStitchesRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListStitchesResponse(_message.Message):
    __slots__ = ("stitches",)
    STITCHES_FIELD_NUMBER: _ClassVar[int]
    stitches: _containers.RepeatedCompositeFieldContainer[Stitch]
    def __init__(self, stitches: _Optional[_Iterable[_Union[Stitch, _Mapping]]] = ...) -> None: ...

class WatchStitchesRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteStitchRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteStitchResponse(_message.Message):
    __slots__ = ("stitch",)
    STITCH_FIELD_NUMBER: _ClassVar[int]
    stitch: Stitch
    def __init__(self, stitch: _Optional[_Union[Stitch, _Mapping]] = ...) -> None: ...

class StitchEvent(_message.Message):
    __slots__ = ("kind", "time", "stitch_id", "detail", "stitch")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STITCH_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    STITCH_FIELD_NUMBER: _ClassVar[int]
    kind: StitchEventKind
    time: float
    stitch_id: str
    detail: str
    stitch: Stitch
    def __init__(self, kind: _Optional[_Union[StitchEventKind, str]] = ..., time: _Optional[float] = ..., stitch_id: _Optional[str] = ..., detail: _Optional[str] = ..., stitch: _Optional[_Union[Stitch, _Mapping]] = ...) -> None: ...

class AdvertisedHost(_message.Message):
    __slots__ = ("name", "mac", "ip", "vnid", "tenant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    VNID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    ip: str
    vnid: int
    tenant: str
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ..., vnid: _Optional[int] = ..., tenant: _Optional[str] = ...) -> None: ...

class PlaneStatus(_message.Message):
    __slots__ = ("plane", "address", "up", "available_mbps", "cost", "rtt_ms", "loss")
    class RttMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LossEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PLANE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MBPS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    plane: int
    address: str
    up: bool
    available_mbps: float
    cost: float
    rtt_ms: _containers.ScalarMap[str, float]
    loss: _containers.ScalarMap[str, float]
    def __init__(self, plane: _Optional[int] = ..., address: _Optional[str] = ..., up: _Optional[bool] = ..., available_mbps: _Optional[float] = ..., cost: _Optional[float] = ..., rtt_ms: _Optional[_Mapping[str, float]] = ..., loss: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TunnelPort(_message.Message):
    __slots__ = ("stitch_id", "port")
    STITCH_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    stitch_id: str
    port: str
    def __init__(self, stitch_id: _Optional[str] = ..., port: _Optional[str] = ...) -> None: ...

class Advertisement(_message.Message):
    __slots__ = ("site", "dp_id", "hosts", "planes", "wg_public_key", "tunnels", "tunnel_errors")
    SITE_FIELD_NUMBER: _ClassVar[int]
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    PLANES_FIELD_NUMBER: _ClassVar[int]
    WG_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    TUNNELS_FIELD_NUMBER: _ClassVar[int]
    TUNNEL_ERRORS_FIELD_NUMBER: _ClassVar[int]
    site: str
    dp_id: int
    hosts: _containers.RepeatedCompositeFieldContainer[AdvertisedHost]
    planes: _containers.RepeatedCompositeFieldContainer[PlaneStatus]
    wg_public_key: str
    tunnels: _containers.RepeatedCompositeFieldContainer[TunnelPort]
    tunnel_errors: _containers.RepeatedCompositeFieldContainer[TunnelError]
    def __init__(self, site: _Optional[str] = ..., dp_id: _Optional[int] = ..., hosts: _Optional[_Iterable[_Union[AdvertisedHost, _Mapping]]] = ..., planes: _Optional[_Iterable[_Union[PlaneStatus, _Mapping]]] = ..., wg_public_key: _Optional[str] = ..., tunnels: _Optional[_Iterable[_Union[TunnelPort, _Mapping]]] = ..., tunnel_errors: _Optional[_Iterable[_Union[TunnelError, _Mapping]]] = ...) -> None: ...

class EncryptedTunnel(_message.Message):
    __slots__ = ("stitch_id", "vni", "peer_site", "peer_public_key", "peer_endpoint", "inner_address", "peer_inner_address", "interface", "listen_port", "port", "mode", "psk", "local_endpoint")
    STITCH_ID_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    PEER_SITE_FIELD_NUMBER: _ClassVar[int]
    PEER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PEER_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    INNER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PEER_INNER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    LISTEN_PORT_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PSK_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    stitch_id: str
    vni: int
    peer_site: str
    peer_public_key: str
    peer_endpoint: str
    inner_address: str
    peer_inner_address: str
    interface: str
    listen_port: int
    port: str
    mode: str
    psk: str
    local_endpoint: str
    def __init__(self, stitch_id: _Optional[str] = ..., vni: _Optional[int] = ..., peer_site: _Optional[str] = ..., peer_public_key: _Optional[str] = ..., peer_endpoint: _Optional[str] = ..., inner_address: _Optional[str] = ..., peer_inner_address: _Optional[str] = ..., interface: _Optional[str] = ..., listen_port: _Optional[int] = ..., port: _Optional[str] = ..., mode: _Optional[str] = ..., psk: _Optional[str] = ..., local_endpoint: _Optional[str] = ...) -> None: ...

class TunnelError(_message.Message):
    __slots__ = ("stitch_id", "reason")
    STITCH_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stitch_id: str
    reason: str
    def __init__(self, stitch_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PeerAddress(_message.Message):
    __slots__ = ("site", "plane", "address")
    SITE_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    site: str
    plane: int
    address: str
    def __init__(self, site: _Optional[str] = ..., plane: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class SiteInstructions(_message.Message):
    __slots__ = ("ttl_s", "tunnels", "peers")
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    TUNNELS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    ttl_s: float
    tunnels: _containers.RepeatedCompositeFieldContainer[EncryptedTunnel]
    peers: _containers.RepeatedCompositeFieldContainer[PeerAddress]
    def __init__(self, ttl_s: _Optional[float] = ..., tunnels: _Optional[_Iterable[_Union[EncryptedTunnel, _Mapping]]] = ..., peers: _Optional[_Iterable[_Union[PeerAddress, _Mapping]]] = ...) -> None: ...

class SiteInfo(_message.Message):
    __slots__ = ("advertisement", "last_seen")
    ADVERTISEMENT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    advertisement: Advertisement
    last_seen: float
    def __init__(self, advertisement: _Optional[_Union[Advertisement, _Mapping]] = ..., last_seen: _Optional[float] = ...) -> None: ...

class ListSitesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSitesResponse(_message.Message):
    __slots__ = ("sites",)
    SITES_FIELD_NUMBER: _ClassVar[int]
    sites: _containers.RepeatedCompositeFieldContainer[SiteInfo]
    def __init__(self, sites: _Optional[_Iterable[_Union[SiteInfo, _Mapping]]] = ...) -> None: ...
