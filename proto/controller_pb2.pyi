from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    SWITCH_ENTER: _ClassVar[EventKind]
    SWITCH_LEAVE: _ClassVar[EventKind]
    PORT_UP: _ClassVar[EventKind]
    PORT_DOWN: _ClassVar[EventKind]
    LINK_ADD: _ClassVar[EventKind]
    LINK_DELETE: _ClassVar[EventKind]
    HOST_ADD: _ClassVar[EventKind]
    HOST_MOVE: _ClassVar[EventKind]
    PATH_CHANGE: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
SWITCH_ENTER: EventKind
SWITCH_LEAVE: EventKind
PORT_UP: EventKind
PORT_DOWN: EventKind
LINK_ADD: EventKind
LINK_DELETE: EventKind
HOST_ADD: EventKind
HOST_MOVE: EventKind
PATH_CHANGE: EventKind

class GetTopologyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Port(_message.Message):
    __slots__ = ("port_no", "name", "hw_addr", "up", "speed_mbps", "is_edge", "tx_rate_mbps", "rx_rate_mbps")
    PORT_NO_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HW_ADDR_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    SPEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    IS_EDGE_FIELD_NUMBER: _ClassVar[int]
    TX_RATE_MBPS_FIELD_NUMBER: _ClassVar[int]
    RX_RATE_MBPS_FIELD_NUMBER: _ClassVar[int]
    port_no: int
    name: str
    hw_addr: str
    up: bool
    speed_mbps: float
    is_edge: bool
    tx_rate_mbps: float
    rx_rate_mbps: float
    def __init__(self, port_no: _Optional[int] = ..., name: _Optional[str] = ..., hw_addr: _Optional[str] = ..., up: _Optional[bool] = ..., speed_mbps: _Optional[float] = ..., is_edge: _Optional[bool] = ..., tx_rate_mbps: _Optional[float] = ..., rx_rate_mbps: _Optional[float] = ...) -> None: ...

class Switch(_message.Message):
    __slots__ = ("dp_id", "name", "ports", "connected_since", "connected")
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    dp_id: int
    name: str
    ports: _containers.RepeatedCompositeFieldContainer[Port]
    connected_since: float
    connected: bool
    def __init__(self, dp_id: _Optional[int] = ..., name: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[Port, _Mapping]]] = ..., connected_since: _Optional[float] = ..., connected: _Optional[bool] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("src_dp_id", "src_port", "dst_dp_id", "dst_port", "capacity_mbps", "capacity_source", "rate_mbps", "utilisation", "name")
    SRC_DP_ID_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_DP_ID_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_MBPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    RATE_MBPS_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    src_dp_id: int
    src_port: int
    dst_dp_id: int
    dst_port: int
    capacity_mbps: float
    capacity_source: str
    rate_mbps: float
    utilisation: float
    name: str
    def __init__(self, src_dp_id: _Optional[int] = ..., src_port: _Optional[int] = ..., dst_dp_id: _Optional[int] = ..., dst_port: _Optional[int] = ..., capacity_mbps: _Optional[float] = ..., capacity_source: _Optional[str] = ..., rate_mbps: _Optional[float] = ..., utilisation: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class Topology(_message.Message):
    __slots__ = ("switches", "links", "time")
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    switches: _containers.RepeatedCompositeFieldContainer[Switch]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    time: float
    def __init__(self, switches: _Optional[_Iterable[_Union[Switch, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., time: _Optional[float] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ("dp_id",)
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    dp_id: int
    def __init__(self, dp_id: _Optional[int] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("mac", "ipv4", "dp_id", "port_no", "last_seen")
    MAC_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_NO_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    mac: str
    ipv4: _containers.RepeatedScalarFieldContainer[str]
    dp_id: int
    port_no: int
    last_seen: float
    def __init__(self, mac: _Optional[str] = ..., ipv4: _Optional[_Iterable[str]] = ..., dp_id: _Optional[int] = ..., port_no: _Optional[int] = ..., last_seen: _Optional[float] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ...) -> None: ...

class GetPathRequest(_message.Message):
    __slots__ = ("src", "dst")
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    src: str
    dst: str
    def __init__(self, src: _Optional[str] = ..., dst: _Optional[str] = ...) -> None: ...

class Hop(_message.Message):
    __slots__ = ("dp_id", "name", "in_port", "out_port")
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IN_PORT_FIELD_NUMBER: _ClassVar[int]
    OUT_PORT_FIELD_NUMBER: _ClassVar[int]
    dp_id: int
    name: str
    in_port: int
    out_port: int
    def __init__(self, dp_id: _Optional[int] = ..., name: _Optional[str] = ..., in_port: _Optional[int] = ..., out_port: _Optional[int] = ...) -> None: ...

class Path(_message.Message):
    __slots__ = ("src", "dst", "hops", "cost", "installed")
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_FIELD_NUMBER: _ClassVar[int]
    src: str
    dst: str
    hops: _containers.RepeatedCompositeFieldContainer[Hop]
    cost: float
    installed: bool
    def __init__(self, src: _Optional[str] = ..., dst: _Optional[str] = ..., hops: _Optional[_Iterable[_Union[Hop, _Mapping]]] = ..., cost: _Optional[float] = ..., installed: _Optional[bool] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ...) -> None: ...

class TopologyEvent(_message.Message):
    __slots__ = ("kind", "time", "dp_id", "port_no", "link", "host_mac", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_NO_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    HOST_MAC_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    time: float
    dp_id: int
    port_no: int
    link: Link
    host_mac: str
    detail: str
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., time: _Optional[float] = ..., dp_id: _Optional[int] = ..., port_no: _Optional[int] = ..., link: _Optional[_Union[Link, _Mapping]] = ..., host_mac: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Status(_message.Message):
    __slots__ = ("uptime_s", "mode", "switches", "links", "hosts", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    uptime_s: float
    mode: str
    switches: int
    links: int
    hosts: int
    counters: _containers.ScalarMap[str, int]
    def __init__(self, uptime_s: _Optional[float] = ..., mode: _Optional[str] = ..., switches: _Optional[int] = ..., links: _Optional[int] = ..., hosts: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...
