from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    CANDIDATE: _ClassVar[SessionState]
    REQUESTED: _ClassVar[SessionState]
    CONNECTING: _ClassVar[SessionState]
    ESTABLISHED: _ClassVar[SessionState]
    WITHDRAWING: _ClassVar[SessionState]
    DOWN: _ClassVar[SessionState]
    TORN_DOWN: _ClassVar[SessionState]

class Override(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERRIDE_NONE: _ClassVar[Override]
    FORCE_UP: _ClassVar[Override]
    FORCE_DOWN: _ClassVar[Override]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    SNAPSHOT: _ClassVar[EventKind]
    WATCHING: _ClassVar[EventKind]
    SESSION: _ClassVar[EventKind]
    DECISION: _ClassVar[EventKind]
    FAILOVER: _ClassVar[EventKind]
SESSION_STATE_UNSPECIFIED: SessionState
CANDIDATE: SessionState
REQUESTED: SessionState
CONNECTING: SessionState
ESTABLISHED: SessionState
WITHDRAWING: SessionState
DOWN: SessionState
TORN_DOWN: SessionState
OVERRIDE_NONE: Override
FORCE_UP: Override
FORCE_DOWN: Override
EVENT_KIND_UNSPECIFIED: EventKind
SNAPSHOT: EventKind
WATCHING: EventKind
SESSION: EventKind
DECISION: EventKind
FAILOVER: EventKind

class Sla(_message.Message):
    __slots__ = ("committed_mbps", "max_latency_ms", "requested_at")
    COMMITTED_MBPS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    committed_mbps: float
    max_latency_ms: float
    requested_at: float
    def __init__(self, committed_mbps: _Optional[float] = ..., max_latency_ms: _Optional[float] = ..., requested_at: _Optional[float] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("name", "asn", "address", "kind", "state", "detail", "override", "since", "prefixes", "capacity_mbps", "rate_mbps", "utilisation", "slice_mbps", "slice_priority", "sla", "groups", "lead_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_MBPS_FIELD_NUMBER: _ClassVar[int]
    RATE_MBPS_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    SLICE_MBPS_FIELD_NUMBER: _ClassVar[int]
    SLICE_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SLA_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    LEAD_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    asn: int
    address: str
    kind: str
    state: SessionState
    detail: str
    override: Override
    since: float
    prefixes: int
    capacity_mbps: float
    rate_mbps: float
    utilisation: float
    slice_mbps: float
    slice_priority: str
    sla: Sla
    groups: int
    lead_s: float
    def __init__(self, name: _Optional[str] = ..., asn: _Optional[int] = ..., address: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., detail: _Optional[str] = ..., override: _Optional[_Union[Override, str]] = ..., since: _Optional[float] = ..., prefixes: _Optional[int] = ..., capacity_mbps: _Optional[float] = ..., rate_mbps: _Optional[float] = ..., utilisation: _Optional[float] = ..., slice_mbps: _Optional[float] = ..., slice_priority: _Optional[str] = ..., sla: _Optional[_Union[Sla, _Mapping]] = ..., groups: _Optional[int] = ..., lead_s: _Optional[float] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("name", "kind", "groups", "prefixes", "reachable_mbps", "carried_mbps", "capacity_mbps", "cost_per_hour", "saving_per_hour", "net_per_hour", "latency_gain_ms", "overload_risk", "verdict", "why")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_MBPS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_MBPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_MBPS_FIELD_NUMBER: _ClassVar[int]
    COST_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    SAVING_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    NET_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_GAIN_MS_FIELD_NUMBER: _ClassVar[int]
    OVERLOAD_RISK_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    groups: int
    prefixes: int
    reachable_mbps: float
    carried_mbps: float
    capacity_mbps: float
    cost_per_hour: float
    saving_per_hour: float
    net_per_hour: float
    latency_gain_ms: float
    overload_risk: float
    verdict: str
    why: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., groups: _Optional[int] = ..., prefixes: _Optional[int] = ..., reachable_mbps: _Optional[float] = ..., carried_mbps: _Optional[float] = ..., capacity_mbps: _Optional[float] = ..., cost_per_hour: _Optional[float] = ..., saving_per_hour: _Optional[float] = ..., net_per_hour: _Optional[float] = ..., latency_gain_ms: _Optional[float] = ..., overload_risk: _Optional[float] = ..., verdict: _Optional[str] = ..., why: _Optional[str] = ...) -> None: ...

class GroupPlan(_message.Message):
    __slots__ = ("group", "prefixes", "exit", "backups", "measured_mbps", "forecast_mbps", "moved_at")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    BACKUPS_FIELD_NUMBER: _ClassVar[int]
    MEASURED_MBPS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MBPS_FIELD_NUMBER: _ClassVar[int]
    MOVED_AT_FIELD_NUMBER: _ClassVar[int]
    group: str
    prefixes: int
    exit: str
    backups: _containers.RepeatedScalarFieldContainer[str]
    measured_mbps: float
    forecast_mbps: float
    moved_at: float
    def __init__(self, group: _Optional[str] = ..., prefixes: _Optional[int] = ..., exit: _Optional[str] = ..., backups: _Optional[_Iterable[str]] = ..., measured_mbps: _Optional[float] = ..., forecast_mbps: _Optional[float] = ..., moved_at: _Optional[float] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("time", "kind", "target", "detail", "numbers")
    class NumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    time: float
    kind: str
    target: str
    detail: str
    numbers: _containers.ScalarMap[str, float]
    def __init__(self, time: _Optional[float] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ..., numbers: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("scheme", "basis", "time", "groups", "decisions", "transit_p95_mbps", "degraded", "degraded_reason")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    TRANSIT_P95_MBPS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    basis: str
    time: float
    groups: _containers.RepeatedCompositeFieldContainer[GroupPlan]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    transit_p95_mbps: float
    degraded: bool
    degraded_reason: str
    def __init__(self, scheme: _Optional[str] = ..., basis: _Optional[str] = ..., time: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[GroupPlan, _Mapping]]] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., transit_p95_mbps: _Optional[float] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ...) -> None: ...

class ListCandidatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCandidatesResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: int
    def __init__(self, decisions: _Optional[int] = ...) -> None: ...

class EstablishRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WithdrawRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListPeeringsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPeeringsResponse(_message.Message):
    __slots__ = ("peerings",)
    PEERINGS_FIELD_NUMBER: _ClassVar[int]
    peerings: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, peerings: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class WatchPeeringRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PeeringEvent(_message.Message):
    __slots__ = ("kind", "time", "name", "detail", "peering", "decision")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PEERING_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    time: float
    name: str
    detail: str
    peering: Session
    decision: Decision
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., time: _Optional[float] = ..., name: _Optional[str] = ..., detail: _Optional[str] = ..., peering: _Optional[_Union[Session, _Mapping]] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...
