from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    GOLD: _ClassVar[Priority]
    SILVER: _ClassVar[Priority]
    BRONZE: _ClassVar[Priority]

class ScalingAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCALING_ACTION_UNSPECIFIED: _ClassVar[ScalingAction]
    SCALE_UP: _ClassVar[ScalingAction]
    SCALE_DOWN: _ClassVar[ScalingAction]
    HOLD: _ClassVar[ScalingAction]
    DISSOLVE: _ClassVar[ScalingAction]

class DemandBasis(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEMAND_BASIS_UNSPECIFIED: _ClassVar[DemandBasis]
    FORECAST: _ClassVar[DemandBasis]
    MEASURED: _ClassVar[DemandBasis]

class SliceEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLICE_EVENT_KIND_UNSPECIFIED: _ClassVar[SliceEventKind]
    CREATED: _ClassVar[SliceEventKind]
    SCALED: _ClassVar[SliceEventKind]
    DRAINED: _ClassVar[SliceEventKind]
    DELETED: _ClassVar[SliceEventKind]
    DISSOLVED: _ClassVar[SliceEventKind]
    DECISION: _ClassVar[SliceEventKind]
    MEMBER_REGISTERED: _ClassVar[SliceEventKind]
    MEMBER_UNREGISTERED: _ClassVar[SliceEventKind]
    SNAPSHOT: _ClassVar[SliceEventKind]
    WATCHING: _ClassVar[SliceEventKind]
    RESIZED: _ClassVar[SliceEventKind]
PRIORITY_UNSPECIFIED: Priority
GOLD: Priority
SILVER: Priority
BRONZE: Priority
SCALING_ACTION_UNSPECIFIED: ScalingAction
SCALE_UP: ScalingAction
SCALE_DOWN: ScalingAction
HOLD: ScalingAction
DISSOLVE: ScalingAction
DEMAND_BASIS_UNSPECIFIED: DemandBasis
FORECAST: DemandBasis
MEASURED: DemandBasis
SLICE_EVENT_KIND_UNSPECIFIED: SliceEventKind
CREATED: SliceEventKind
SCALED: SliceEventKind
DRAINED: SliceEventKind
DELETED: SliceEventKind
DISSOLVED: SliceEventKind
DECISION: SliceEventKind
MEMBER_REGISTERED: SliceEventKind
MEMBER_UNREGISTERED: SliceEventKind
SNAPSHOT: SliceEventKind
WATCHING: SliceEventKind
RESIZED: SliceEventKind

class CreateSliceRequest(_message.Message):
    __slots__ = ("name", "client", "vip_cidr", "bandwidth_mbps", "per_member_mbps", "priority", "pool", "min_members", "max_members", "sla_quantile", "dissolve_after_s", "members", "enforce_timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    VIP_CIDR_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_MBPS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SLA_QUANTILE_FIELD_NUMBER: _ClassVar[int]
    DISSOLVE_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    client: str
    vip_cidr: str
    bandwidth_mbps: float
    per_member_mbps: float
    priority: Priority
    pool: str
    min_members: int
    max_members: int
    sla_quantile: float
    dissolve_after_s: float
    members: int
    enforce_timeout_s: float
    def __init__(self, name: _Optional[str] = ..., client: _Optional[str] = ..., vip_cidr: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ..., per_member_mbps: _Optional[float] = ..., priority: _Optional[_Union[Priority, str]] = ..., pool: _Optional[str] = ..., min_members: _Optional[int] = ..., max_members: _Optional[int] = ..., sla_quantile: _Optional[float] = ..., dissolve_after_s: _Optional[float] = ..., members: _Optional[int] = ..., enforce_timeout_s: _Optional[float] = ...) -> None: ...

class ScaleSliceRequest(_message.Message):
    __slots__ = ("name", "members", "enforce_timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    members: int
    enforce_timeout_s: float
    def __init__(self, name: _Optional[str] = ..., members: _Optional[int] = ..., enforce_timeout_s: _Optional[float] = ...) -> None: ...

class DeleteSliceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSliceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSliceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSlicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSlicesResponse(_message.Message):
    __slots__ = ("slices",)
    SLICES_FIELD_NUMBER: _ClassVar[int]
    slices: _containers.RepeatedCompositeFieldContainer[Slice]
    def __init__(self, slices: _Optional[_Iterable[_Union[Slice, _Mapping]]] = ...) -> None: ...

class SliceMember(_message.Message):
    __slots__ = ("host_id", "ipv4", "vip", "draining_until_s", "placed", "mac", "dp_id", "port_no")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    VIP_FIELD_NUMBER: _ClassVar[int]
    DRAINING_UNTIL_S_FIELD_NUMBER: _ClassVar[int]
    PLACED_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    DP_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_NO_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    ipv4: str
    vip: str
    draining_until_s: float
    placed: bool
    mac: str
    dp_id: int
    port_no: int
    def __init__(self, host_id: _Optional[str] = ..., ipv4: _Optional[str] = ..., vip: _Optional[str] = ..., draining_until_s: _Optional[float] = ..., placed: _Optional[bool] = ..., mac: _Optional[str] = ..., dp_id: _Optional[int] = ..., port_no: _Optional[int] = ...) -> None: ...

class SliceRates(_message.Message):
    __slots__ = ("offered_in_mbps", "delivered_in_mbps", "offered_out_mbps", "delivered_out_mbps", "time", "bytes_in", "dropped_bytes_in", "bytes_out", "dropped_bytes_out")
    OFFERED_IN_MBPS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_IN_MBPS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_OUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_OUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    offered_in_mbps: float
    delivered_in_mbps: float
    offered_out_mbps: float
    delivered_out_mbps: float
    time: float
    bytes_in: int
    dropped_bytes_in: int
    bytes_out: int
    dropped_bytes_out: int
    def __init__(self, offered_in_mbps: _Optional[float] = ..., delivered_in_mbps: _Optional[float] = ..., offered_out_mbps: _Optional[float] = ..., delivered_out_mbps: _Optional[float] = ..., time: _Optional[float] = ..., bytes_in: _Optional[int] = ..., dropped_bytes_in: _Optional[int] = ..., bytes_out: _Optional[int] = ..., dropped_bytes_out: _Optional[int] = ...) -> None: ...

class ScalingDecision(_message.Message):
    __slots__ = ("action", "basis", "current_members", "target_members", "demand_mbps", "lead_time_s", "reason", "decided_at_s", "measured_mbps", "forecast_mbps", "forecast_horizon_s")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DEMAND_MBPS_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_S_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_S_FIELD_NUMBER: _ClassVar[int]
    MEASURED_MBPS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MBPS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_HORIZON_S_FIELD_NUMBER: _ClassVar[int]
    action: ScalingAction
    basis: DemandBasis
    current_members: int
    target_members: int
    demand_mbps: float
    lead_time_s: float
    reason: str
    decided_at_s: float
    measured_mbps: float
    forecast_mbps: float
    forecast_horizon_s: float
    def __init__(self, action: _Optional[_Union[ScalingAction, str]] = ..., basis: _Optional[_Union[DemandBasis, str]] = ..., current_members: _Optional[int] = ..., target_members: _Optional[int] = ..., demand_mbps: _Optional[float] = ..., lead_time_s: _Optional[float] = ..., reason: _Optional[str] = ..., decided_at_s: _Optional[float] = ..., measured_mbps: _Optional[float] = ..., forecast_mbps: _Optional[float] = ..., forecast_horizon_s: _Optional[float] = ...) -> None: ...

class Slice(_message.Message):
    __slots__ = ("name", "client", "vip_cidr", "bandwidth_mbps", "per_member_mbps", "priority", "pool", "min_members", "max_members", "sla_quantile", "dissolve_after_s", "service_vip", "virtual_mac", "index", "members", "active_members", "rates", "last_decision", "enforced_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    VIP_CIDR_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MBPS_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_MBPS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SLA_QUANTILE_FIELD_NUMBER: _ClassVar[int]
    DISSOLVE_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VIP_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_MAC_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    LAST_DECISION_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    client: str
    vip_cidr: str
    bandwidth_mbps: float
    per_member_mbps: float
    priority: Priority
    pool: str
    min_members: int
    max_members: int
    sla_quantile: float
    dissolve_after_s: float
    service_vip: str
    virtual_mac: str
    index: int
    members: _containers.RepeatedCompositeFieldContainer[SliceMember]
    active_members: int
    rates: SliceRates
    last_decision: ScalingDecision
    enforced_s: float
    def __init__(self, name: _Optional[str] = ..., client: _Optional[str] = ..., vip_cidr: _Optional[str] = ..., bandwidth_mbps: _Optional[float] = ..., per_member_mbps: _Optional[float] = ..., priority: _Optional[_Union[Priority, str]] = ..., pool: _Optional[str] = ..., min_members: _Optional[int] = ..., max_members: _Optional[int] = ..., sla_quantile: _Optional[float] = ..., dissolve_after_s: _Optional[float] = ..., service_vip: _Optional[str] = ..., virtual_mac: _Optional[str] = ..., index: _Optional[int] = ..., members: _Optional[_Iterable[_Union[SliceMember, _Mapping]]] = ..., active_members: _Optional[int] = ..., rates: _Optional[_Union[SliceRates, _Mapping]] = ..., last_decision: _Optional[_Union[ScalingDecision, _Mapping]] = ..., enforced_s: _Optional[float] = ...) -> None: ...

class WatchSliceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SliceEvent(_message.Message):
    __slots__ = ("kind", "time", "slice_name", "detail", "slice", "decision")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SLICE_NAME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    kind: SliceEventKind
    time: float
    slice_name: str
    detail: str
    slice: Slice
    decision: ScalingDecision
    def __init__(self, kind: _Optional[_Union[SliceEventKind, str]] = ..., time: _Optional[float] = ..., slice_name: _Optional[str] = ..., detail: _Optional[str] = ..., slice: _Optional[_Union[Slice, _Mapping]] = ..., decision: _Optional[_Union[ScalingDecision, _Mapping]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("host_id", "pool", "ipv4", "labels", "slice_name")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SLICE_NAME_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    pool: str
    ipv4: str
    labels: _containers.ScalarMap[str, str]
    slice_name: str
    def __init__(self, host_id: _Optional[str] = ..., pool: _Optional[str] = ..., ipv4: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., slice_name: _Optional[str] = ...) -> None: ...

class UnregisterMemberRequest(_message.Message):
    __slots__ = ("host_id",)
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    def __init__(self, host_id: _Optional[str] = ...) -> None: ...

class UnregisterMemberResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: str
    def __init__(self, pool: _Optional[str] = ...) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...
